/* fuzz_msgpack_json: cm_msgpack_to_json (common/proto.c), which the gateway
 * runs on every delivery to a JSON session, on arbitrary MessagePack.
 *
 * Checks: on success the appended text is one JSON value that jansson
 * parses back, of the same kind as the packed value (a map becomes an
 * object, ...), and what was in the buffer before is untouched; on failure
 * the buffer is exactly as it was. */
#include <jansson.h>
#include <string.h>

#include "common/envelope.h"
#include "common/proto.h"
#include "tests/fuzz/fuzz.h"

static const char prefix[] = "[\"before\",";

static int same_kind(const msgpack_object *o, const json_t *j)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return json_is_null(j);
    case MSGPACK_OBJECT_BOOLEAN: return json_is_boolean(j);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_is_integer(j);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return json_is_number(j);
    case MSGPACK_OBJECT_STR: return json_is_string(j) && json_string_length(j) == o->via.str.size;
    case MSGPACK_OBJECT_ARRAY: return json_is_array(j) && json_array_size(j) == o->via.array.size;
    /* Repeated keys collapse into one: at most as many members as pairs. */
    case MSGPACK_OBJECT_MAP: return json_is_object(j) && json_object_size(j) <= o->via.map.size;
    default: return 0;
    }
}

static int has_escaped_nul(const char *s, size_t n)
{
    for (size_t i = 0; i + 6 <= n; i++)
        if (memcmp(s + i, "\\u0000", 6) == 0)
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    msgpack_sbuffer out;
    msgpack_unpacked u;
    char err[128];
    int rc;

    msgpack_sbuffer_init(&out);
    FUZZ_ASSERT(msgpack_sbuffer_write(&out, prefix, sizeof(prefix) - 1) == 0);
    rc = cm_msgpack_to_json((const char *)data, size, &out);
    FUZZ_ASSERT(out.size >= sizeof(prefix) - 1 && memcmp(out.data, prefix, sizeof(prefix) - 1) == 0);
    if (rc != 0) {
        FUZZ_ASSERT(rc == -1 && out.size == sizeof(prefix) - 1);
        msgpack_sbuffer_destroy(&out);
        return 0;
    }
    FUZZ_ASSERT(out.size > sizeof(prefix) - 1);

    json_error_t jerr;
    json_t *j = json_loadb(out.data + sizeof(prefix) - 1, out.size - (sizeof(prefix) - 1), JSON_DECODE_ANY | JSON_ALLOW_NUL,
                         &jerr);
    /* jansson cannot load a key holding U+0000, which is valid JSON
     * (RFC 8259 section 7) that browsers parse: not a fault of the output. */
    if (j == NULL && strstr(jerr.text, "NUL byte in object key") != NULL &&
        has_escaped_nul(out.data, out.size)) {
        msgpack_sbuffer_destroy(&out);
        return 0;
    }
    if (j == NULL) {
        fprintf(stderr, "output does not parse back: %s: %.*s\n", jerr.text,
                (int)(out.size - (sizeof(prefix) - 1)), out.data + sizeof(prefix) - 1);
        FUZZ_ASSERT(!"cm_msgpack_to_json wrote invalid JSON");
    }
    msgpack_unpacked_init(&u);
    FUZZ_ASSERT(cm_msgpack_unpack_one((const char *)data, size, &u, err, sizeof(err)) == 0);
    FUZZ_ASSERT(same_kind(&u.data, j));
    msgpack_unpacked_destroy(&u);
    json_decref(j);
    msgpack_sbuffer_destroy(&out);
    return 0;
}
