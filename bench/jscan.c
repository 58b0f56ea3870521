/* jscan.c: allocation-free JSON walking (jscan.h). */
#include "bench/jscan.h"

#include <string.h>

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* p points at the opening quote. Returns the position after the closing one. */
static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\') {
            p++;
            continue;
        }
        if (*p == '"')
            return p + 1;
        if ((unsigned char)*p < 0x20)
            return NULL;
    }
    return NULL;
}

/* p points at '{' or '['. Returns the position after the matching bracket. */
static const char *skip_nested(const char *p, const char *end)
{
    char stack[64];
    int depth = 0;
    while (p < end) {
        char c = *p;
        if (c == '"') {
            p = skip_string(p, end);
            if (p == NULL)
                return NULL;
            continue;
        }
        if (c == '{' || c == '[') {
            if (depth == (int)sizeof(stack))
                return NULL;
            stack[depth++] = c == '{' ? '}' : ']';
        } else if (c == '}' || c == ']') {
            if (depth == 0 || stack[depth - 1] != c)
                return NULL;
            if (--depth == 0)
                return p + 1;
        }
        p++;
    }
    return NULL;
}

static const char *parse_value(const char *p, const char *end, struct bn_jval *v)
{
    p = skip_ws(p, end);
    if (p >= end)
        return NULL;
    const char *q;
    switch (*p) {
    case '"':
        q = skip_string(p, end);
        if (q == NULL)
            return NULL;
        v->type = BN_J_STRING;
        v->s = p + 1;
        v->len = (size_t)(q - p - 2);
        return q;
    case '{':
    case '[':
        q = skip_nested(p, end);
        if (q == NULL)
            return NULL;
        v->type = *p == '{' ? BN_J_OBJECT : BN_J_ARRAY;
        break;
    case 't':
    case 'f':
    case 'n': {
        static const struct {
            const char *lit;
            enum bn_jtype t;
        } lits[] = {{"true", BN_J_TRUE}, {"false", BN_J_FALSE}, {"null", BN_J_NULL}};
        for (size_t i = 0; i < 3; i++) {
            size_t n = strlen(lits[i].lit);
            if ((size_t)(end - p) >= n && memcmp(p, lits[i].lit, n) == 0) {
                v->type = lits[i].t;
                v->s = p;
                v->len = n;
                return p + n;
            }
        }
        return NULL;
    }
    default:
        q = p;
        while (q < end && (strchr("0123456789+-.eE", *q) != NULL && *q != '\0'))
            q++;
        if (q == p)
            return NULL;
        v->type = BN_J_NUMBER;
        break;
    }
    v->s = p;
    v->len = (size_t)(q - p);
    return q;
}

static int start(struct bn_jiter *it, const char *s, size_t len, char open, char close)
{
    const char *end = s + len;
    const char *p = skip_ws(s, end);
    if (p >= end || *p != open)
        return -1;
    it->p = p + 1;
    it->end = end;
    it->first = 1;
    it->close = close;
    return 0;
}

int bn_json_object(struct bn_jiter *it, const char *s, size_t len)
{
    return start(it, s, len, '{', '}');
}

int bn_json_array(struct bn_jiter *it, const char *s, size_t len)
{
    return start(it, s, len, '[', ']');
}

/* Moves past the separator before the next item: 1 when an item follows,
 * 0 at the closing bracket, -1 on malformed input. */
static int advance(struct bn_jiter *it)
{
    const char *p = skip_ws(it->p, it->end);
    if (p >= it->end)
        return -1;
    if (*p == it->close) {
        it->p = p + 1;
        return 0;
    }
    if (!it->first) {
        if (*p != ',')
            return -1;
        p = skip_ws(p + 1, it->end);
    }
    it->first = 0;
    it->p = p;
    return 1;
}

int bn_json_next_member(struct bn_jiter *it, struct bn_jval *key, struct bn_jval *val)
{
    if (it->p == NULL)
        return 0;
    int r = advance(it);
    if (r <= 0) {
        it->p = NULL;
        return r;
    }
    const char *p = it->p;
    if (p >= it->end || *p != '"' || (p = parse_value(p, it->end, key)) == NULL)
        return -1;
    p = skip_ws(p, it->end);
    if (p >= it->end || *p != ':')
        return -1;
    p = parse_value(p + 1, it->end, val);
    if (p == NULL)
        return -1;
    it->p = p;
    return 1;
}

int bn_json_next_elem(struct bn_jiter *it, struct bn_jval *val)
{
    if (it->p == NULL)
        return 0;
    int r = advance(it);
    if (r <= 0) {
        it->p = NULL;
        return r;
    }
    const char *p = parse_value(it->p, it->end, val);
    if (p == NULL)
        return -1;
    it->p = p;
    return 1;
}

int bn_jval_is(const struct bn_jval *v, const char *lit)
{
    size_t n = strlen(lit);
    return v->type == BN_J_STRING && v->len == n && memcmp(v->s, lit, n) == 0;
}

int bn_jval_int(const struct bn_jval *v, int64_t *out)
{
    if (v->type != BN_J_NUMBER || v->len == 0 || v->len > 19)
        return -1;
    const char *p = v->s, *end = v->s + v->len;
    int neg = 0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    if (p == end)
        return -1;
    int64_t n = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        n = n * 10 + (*p - '0');
    }
    *out = neg ? -n : n;
    return 0;
}
