/* twin.h: the MessagePack twin of a JSON request, as a client of the
 * MessagePack subprotocol would send it. Test code only: test_proto.c
 * (unit) and fuzz_request.c (fuzz) decode a JSON request and its twin and
 * check that both encodings get the same verdict. */
#ifndef CHATMI_TESTS_SUPPORT_TWIN_H
#define CHATMI_TESTS_SUPPORT_TWIN_H

#include <jansson.h>
#include <msgpack.h>

/* Initialises sb and packs the twin of j into it: objects as maps, arrays,
 * strings as str (never bin), integers, reals, booleans and null as nil.
 * Strings decoded from sb point into it; the caller destroys it
 * (msgpack_sbuffer_destroy). */
void twin_pack_json(msgpack_sbuffer *sb, const json_t *j);

#endif
