/* jscan.h: a small, allocation-free JSON reader for the server messages
 * chatmi-bench receives. It walks the members of an object or the elements
 * of an array one by one and hands out each value's span in the input;
 * nested values are skipped as a whole unless the caller opens them.
 * Strings are returned raw (escapes not decoded): the fields the bench
 * compares (op, conv, ids, codes, its own message text) never contain any.
 * Values are checked only as far as skipping them needs. */
#ifndef CHATMI_BENCH_JSCAN_H
#define CHATMI_BENCH_JSCAN_H

#include <stddef.h>
#include <stdint.h>

enum bn_jtype { BN_J_STRING, BN_J_NUMBER, BN_J_OBJECT, BN_J_ARRAY, BN_J_TRUE, BN_J_FALSE, BN_J_NULL };

struct bn_jval {
    enum bn_jtype type;
    const char *s; /* strings: the content between the quotes; others: the whole value */
    size_t len;
};

struct bn_jiter {
    const char *p, *end;
    int first;
    char close; /* '}' or ']' */
};

/* Starts walking the object (or array) that s[0..len) holds. 0, or -1 when
 * it does not start with '{' ('['). */
int bn_json_object(struct bn_jiter *it, const char *s, size_t len);
int bn_json_array(struct bn_jiter *it, const char *s, size_t len);

/* The next member / element. 1 with key and val set, 0 at the end of the
 * object or array, -1 on malformed input. */
int bn_json_next_member(struct bn_jiter *it, struct bn_jval *key, struct bn_jval *val);
int bn_json_next_elem(struct bn_jiter *it, struct bn_jval *val);

/* 1 when v is a string equal to lit. */
int bn_jval_is(const struct bn_jval *v, const char *lit);

/* An integer number (no fraction or exponent) into *out. 0 or -1. */
int bn_jval_int(const struct bn_jval *v, int64_t *out);

#endif
