/* Client frames out (masked), server frames in, cut anywhere. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "bench/wsframe.h"

static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};

/* A server frame (unmasked), as the gateway writes them. */
static size_t server_frame(uint8_t *out, int fin, int op, const uint8_t *p, size_t len)
{
    size_t h = 2;
    out[0] = (uint8_t)((fin ? 0x80 : 0) | op);
    if (len < 126) {
        out[1] = (uint8_t)len;
    } else if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        h = 4;
    } else {
        out[1] = 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
        h = 10;
    }
    if (len > 0)
        memcpy(out + h, p, len);
    return h + len;
}

Test(wsframe, client_frames_are_masked_with_the_right_length)
{
    static uint8_t payload[70000], out[70000 + BN_WS_HEADER_MAX];
    const size_t sizes[] = {0, 5, 125, 126, 65535, 65536, 70000};
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 31);
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        size_t len = sizes[s];
        size_t n = bn_ws_frame(out, BN_WS_TEXT, payload, len, mask);
        size_t h = len < 126 ? 2 : len <= 0xffff ? 4 : 10;
        cr_assert_eq(n, h + 4 + len, "frame of %zu", len);
        cr_assert_eq(out[0], 0x81);
        cr_assert(out[1] & 0x80, "mask bit");
        uint64_t got = out[1] & 0x7f;
        if (h == 4) {
            got = (uint64_t)out[2] << 8 | out[3];
        } else if (h == 10) {
            got = 0;
            for (int k = 0; k < 8; k++)
                got = got << 8 | out[2 + k];
        }
        cr_assert_eq(got, len);
        cr_assert_eq(memcmp(out + h, mask, 4), 0);
        for (size_t k = 0; k < len; k++)
            cr_assert_eq(out[h + 4 + k] ^ mask[k & 3], payload[k], "byte %zu of %zu", k, len);
    }
}

Test(wsframe, close_frame_carries_the_code)
{
    uint8_t out[BN_WS_HEADER_MAX + 2];
    size_t n = bn_ws_close_frame(out, 1000, mask);
    cr_assert_eq(n, 8);
    cr_assert_eq(out[0], 0x88);
    cr_assert_eq(out[1], 0x82);
    cr_assert_eq(out[6] ^ mask[0], 0x03);
    cr_assert_eq(out[7] ^ mask[1], 0xe8);
    cr_assert_eq(bn_ws_close_frame(out, 0, mask), 6);
}

struct seen {
    int n;
    int op[16], fin[16];
    size_t len[16];
    uint8_t first[16], last[16];
};

/* Feeds stream[0..len) in pieces the way a client does: whatever is left
 * of a cut frame is kept and the next piece appended to it. */
static void feed(const uint8_t *stream, size_t len, const size_t *cuts, size_t ncuts, struct seen *s)
{
    uint8_t *carry = malloc(len + 1);
    size_t have = 0, pos = 0;
    memset(s, 0, sizeof(*s));
    for (size_t c = 0; c <= ncuts; c++) {
        size_t end = c < ncuts ? cuts[c] : len;
        memcpy(carry + have, stream + pos, end - pos);
        have += end - pos;
        pos = end;
        size_t off = 0;
        for (;;) {
            struct bn_ws_frame f;
            long r = bn_ws_parse(carry + off, have - off, 1 << 20, &f);
            cr_assert_neq(r, BN_WS_ERROR, "valid stream cut at %zu", end);
            if (r == BN_WS_NEED_MORE)
                break;
            cr_assert_lt(s->n, 16);
            s->op[s->n] = f.opcode;
            s->fin[s->n] = f.fin;
            s->len[s->n] = (size_t)f.len;
            s->first[s->n] = f.len ? f.payload[0] : 0;
            s->last[s->n] = f.len ? f.payload[f.len - 1] : 0;
            s->n++;
            off += (size_t)r;
        }
        memmove(carry, carry + off, have - off);
        have -= off;
    }
    cr_assert_eq(have, 0, "nothing left over");
    free(carry);
}

Test(wsframe, parser_finds_every_frame_however_the_input_is_cut)
{
    static uint8_t stream[200000], big[70000];
    uint8_t mid[300];
    size_t len = 0;
    memset(big, 'b', sizeof(big));
    big[sizeof(big) - 1] = 'B';
    memset(mid, 'm', sizeof(mid));
    len += server_frame(stream + len, 1, BN_WS_TEXT, (const uint8_t *)"{\"op\":\"hello\"}", 14);
    len += server_frame(stream + len, 1, BN_WS_PING, NULL, 0);
    len += server_frame(stream + len, 1, BN_WS_TEXT, mid, sizeof(mid));
    len += server_frame(stream + len, 0, BN_WS_TEXT, (const uint8_t *)"ab", 2);
    len += server_frame(stream + len, 1, BN_WS_CONT, (const uint8_t *)"cd", 2);
    len += server_frame(stream + len, 1, BN_WS_BINARY, big, sizeof(big));
    len += server_frame(stream + len, 1, BN_WS_CLOSE, (const uint8_t *)"\x03\xe9", 2);
    const int want_op[] = {BN_WS_TEXT, BN_WS_PING, BN_WS_TEXT, BN_WS_TEXT, BN_WS_CONT, BN_WS_BINARY, BN_WS_CLOSE};
    const size_t want_len[] = {14, 0, 300, 2, 2, 70000, 2};

    struct seen whole;
    feed(stream, len, NULL, 0, &whole);
    cr_assert_eq(whole.n, 7);
    for (int i = 0; i < 7; i++) {
        cr_assert_eq(whole.op[i], want_op[i], "frame %d", i);
        cr_assert_eq(whole.len[i], want_len[i], "frame %d", i);
    }
    cr_assert_eq(whole.fin[3], 0);
    cr_assert_eq(whole.last[5], 'B');

    /* Every single cut point in the first 400 bytes and around the big frame. */
    for (size_t cut = 1; cut < len; cut++) {
        if (cut > 400 && cut < len - 80)
            cut = len - 80;
        struct seen s;
        feed(stream, len, &cut, 1, &s);
        cr_assert_eq(memcmp(&s, &whole, sizeof(s)), 0, "cut at %zu", cut);
    }
    /* One byte at a time, and in runs of 7. */
    size_t *cuts = malloc(sizeof(size_t) * len);
    size_t n = 0;
    for (size_t i = 1; i < len; i++)
        cuts[n++] = i;
    struct seen s;
    feed(stream, len, cuts, n, &s);
    cr_assert_eq(memcmp(&s, &whole, sizeof(s)), 0, "byte by byte");
    n = 0;
    for (size_t i = 7; i < len; i += 7)
        cuts[n++] = i;
    feed(stream, len, cuts, n, &s);
    cr_assert_eq(memcmp(&s, &whole, sizeof(s)), 0, "runs of 7");
    free(cuts);
}

Test(wsframe, parser_refuses_what_a_server_must_not_send)
{
    struct bn_ws_frame f;
    uint8_t masked[] = {0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2};
    cr_assert_eq(bn_ws_parse(masked, sizeof(masked), 1024, &f), BN_WS_ERROR, "masked");
    uint8_t rsv[] = {0xc1, 0x01, 'x'};
    cr_assert_eq(bn_ws_parse(rsv, sizeof(rsv), 1024, &f), BN_WS_ERROR, "RSV1");
    uint8_t op3[] = {0x83, 0x00};
    cr_assert_eq(bn_ws_parse(op3, sizeof(op3), 1024, &f), BN_WS_ERROR, "reserved opcode");
    uint8_t long_ping[] = {0x89, 126, 0, 126};
    cr_assert_eq(bn_ws_parse(long_ping, sizeof(long_ping), 1024, &f), BN_WS_ERROR, "control over 125");
    uint8_t frag_close[] = {0x08, 0x00};
    cr_assert_eq(bn_ws_parse(frag_close, sizeof(frag_close), 1024, &f), BN_WS_ERROR, "fragmented control");
    uint8_t huge[] = {0x82, 127, 0, 0, 0, 0, 0, 0x10, 0, 0};
    cr_assert_eq(bn_ws_parse(huge, sizeof(huge), 1024, &f), BN_WS_ERROR, "over max payload");
    uint8_t short_hdr[] = {0x81, 126, 0};
    cr_assert_eq(bn_ws_parse(short_hdr, sizeof(short_hdr), 1024, &f), BN_WS_NEED_MORE);
    cr_assert_eq(bn_ws_parse(short_hdr, 1, 1024, &f), BN_WS_NEED_MORE);
}
