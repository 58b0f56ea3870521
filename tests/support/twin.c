/* twin.c: the MessagePack twin of a JSON value (twin.h). */
#include "tests/support/twin.h"

#include <string.h>

static void pack_value(msgpack_packer *pk, const json_t *j)
{
    const char *k;
    json_t *v;
    size_t i;

    switch (json_typeof(j)) {
    case JSON_OBJECT:
        msgpack_pack_map(pk, json_object_size(j));
        json_object_foreach((json_t *)j, k, v) {
            msgpack_pack_str_with_body(pk, k, strlen(k));
            pack_value(pk, v);
        }
        break;
    case JSON_ARRAY:
        msgpack_pack_array(pk, json_array_size(j));
        json_array_foreach(j, i, v) pack_value(pk, v);
        break;
    case JSON_STRING: msgpack_pack_str_with_body(pk, json_string_value(j), json_string_length(j)); break;
    case JSON_INTEGER: msgpack_pack_int64(pk, json_integer_value(j)); break;
    case JSON_REAL: msgpack_pack_double(pk, json_real_value(j)); break;
    case JSON_TRUE: msgpack_pack_true(pk); break;
    case JSON_FALSE: msgpack_pack_false(pk); break;
    case JSON_NULL: msgpack_pack_nil(pk); break;
    }
}

void twin_pack_json(msgpack_sbuffer *sb, const json_t *j)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    pack_value(&pk, j);
}
