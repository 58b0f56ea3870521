/* test_frame.c: server frame headers, close frames, and the client frame
 * boundary scanner fed every possible split of its input. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/frame.h"

/* A hang is a failure too: the gateway must never stall on input. */
TestSuite(header, .timeout = 20);
TestSuite(close, .timeout = 20);
TestSuite(scan, .timeout = 20);

/* A growable byte string of client frames for the scanner tests. */
struct stream {
    unsigned char *p;
    size_t len, cap;
    /* idle_after[i]: whether the scanner must be idle after the first i bytes */
    unsigned char *idle_at;
};

static void put(struct stream *s, const void *d, size_t n)
{
    if (s->len + n > s->cap) {
        s->cap = (s->len + n) * 2 + 64;
        s->p = realloc(s->p, s->cap);
        s->idle_at = realloc(s->idle_at, s->cap + 1);
        cr_assert_not_null(s->p);
        cr_assert_not_null(s->idle_at);
    }
    memcpy(s->p + s->len, d, n);
    memset(s->idle_at + s->len + 1, 0, n);
    s->len += n;
}

/* Appends one masked client frame; `idle_after` says whether the stream is
 * idle once the frame is complete. lenform forces the 7/16/64-bit form. */
static void client_frame(struct stream *s, int fin, int op, size_t plen, int lenform, int masked, int idle_after)
{
    unsigned char h[14];
    size_t n = 2, i;
    unsigned char *pl;

    h[0] = (unsigned char)((fin ? 0x80 : 0) | op);
    if (lenform == 7) {
        h[1] = (unsigned char)plen;
    } else if (lenform == 16) {
        h[1] = 126;
        h[2] = (unsigned char)(plen >> 8);
        h[3] = (unsigned char)plen;
        n = 4;
    } else {
        h[1] = 127;
        for (i = 0; i < 8; i++)
            h[2 + i] = (unsigned char)((uint64_t)plen >> (56 - 8 * i));
        n = 10;
    }
    if (masked) {
        h[1] |= 0x80;
        memcpy(h + n, "\x81\x7e\x7f\x00", 4); /* mask bytes that look like headers */
        n += 4;
    }
    if (s->len == 0) {
        s->idle_at = realloc(s->idle_at, 1);
        s->idle_at[0] = 1;
    }
    put(s, h, n);
    pl = malloc(plen + 1);
    cr_assert_not_null(pl);
    for (i = 0; i < plen; i++)
        pl[i] = (unsigned char)"\x81\xfe\x88\x00\x7f"[i % 5]; /* payload that looks like headers */
    put(s, pl, plen);
    free(pl);
    s->idle_at[s->len] = (unsigned char)idle_after;
}

static void stream_free(struct stream *s)
{
    free(s->p);
    free(s->idle_at);
}

/* Feeds the stream in two parts split at every position, and as single
 * bytes, checking idleness after every feed. */
static void check_all_splits(const struct stream *s)
{
    size_t cut, i;

    for (cut = 0; cut <= s->len; cut++) {
        struct gw_frame_scan sc;

        memset(&sc, 0, sizeof(sc));
        gw_frame_scan_feed(&sc, s->p, cut);
        cr_assert_eq(gw_frame_scan_idle(&sc), s->idle_at[cut], "after %zu of %zu bytes", cut, s->len);
        gw_frame_scan_feed(&sc, s->p + cut, s->len - cut);
        cr_assert_eq(gw_frame_scan_idle(&sc), s->idle_at[s->len], "split at %zu", cut);
    }
    {
        struct gw_frame_scan sc;

        memset(&sc, 0, sizeof(sc));
        for (i = 0; i < s->len; i++) {
            gw_frame_scan_feed(&sc, s->p + i, 1);
            cr_assert_eq(gw_frame_scan_idle(&sc), s->idle_at[i + 1], "byte by byte, after %zu", i + 1);
        }
    }
}

Test(header, sizes)
{
    unsigned char h[GW_FRAME_HEADER_MAX + 4];
    static const unsigned char h126[] = {0x82, 126, 0x00, 0x7e};
    static const unsigned char h65535[] = {0x81, 126, 0xff, 0xff};
    static const unsigned char h65536[] = {0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0};
    static const unsigned char hbig[] = {0x82, 127, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};

    memset(h, 0xee, sizeof(h));
    cr_assert_eq(gw_frame_header(h, GW_OP_TEXT, 0), 2);
    cr_assert_eq(h[0], 0x81);
    cr_assert_eq(h[1], 0x00);
    cr_assert_eq(h[2], 0xee, "wrote past the header");
    cr_assert_eq(gw_frame_header(h, GW_OP_BINARY, 125), 2);
    cr_assert_eq(h[0], 0x82);
    cr_assert_eq(h[1], 125);
    cr_assert_eq(gw_frame_header(h, GW_OP_BINARY, 126), 4);
    cr_assert_eq(memcmp(h, h126, 4), 0);
    cr_assert_eq(gw_frame_header(h, GW_OP_TEXT, 65535), 4);
    cr_assert_eq(memcmp(h, h65535, 4), 0);
    cr_assert_eq(gw_frame_header(h, GW_OP_BINARY, 65536), 10);
    cr_assert_eq(memcmp(h, h65536, 10), 0);
    cr_assert_eq(h[10], 0xee, "wrote past the header");
    cr_assert_eq(gw_frame_header(h, GW_OP_BINARY, 0x0123456789abcdefULL), 10);
    cr_assert_eq(memcmp(h, hbig, 10), 0);
    cr_assert_eq(gw_frame_header(h, GW_OP_PING, 0), 2);
    cr_assert_eq(h[0], 0x89);
    cr_assert_eq(gw_frame_header(h, GW_OP_PONG, 5), 2);
    cr_assert_eq(h[0], 0x8a);
    cr_assert_eq(h[1], 5, "server frames are never masked");
}

Test(close, short_reason)
{
    unsigned char out[2 + 125 + 8];
    size_t n = gw_frame_close(out, 1001, "going away");

    cr_assert_eq(n, 2 + 2 + 10);
    cr_assert_eq(out[0], 0x88);
    cr_assert_eq(out[1], 12);
    cr_assert_eq(out[2], 0x03);
    cr_assert_eq(out[3], 0xe9);
    cr_assert_eq(memcmp(out + 4, "going away", 10), 0);
}

Test(close, no_reason)
{
    unsigned char out[2 + 125];

    cr_assert_eq(gw_frame_close(out, 1009, NULL), 4);
    cr_assert_eq(out[1], 2);
    cr_assert_eq(out[2], 0x03);
    cr_assert_eq(out[3], 0xf1);
    cr_assert_eq(gw_frame_close(out, 1013, ""), 4);
    cr_assert_eq(out[3], 0xf5);
}

Test(close, long_reason_truncated)
{
    unsigned char out[2 + 125 + 16];
    char reason[300];
    size_t n;

    memset(reason, 'r', sizeof(reason) - 1);
    reason[sizeof(reason) - 1] = '\0';
    memset(out, 0xee, sizeof(out));
    n = gw_frame_close(out, 1000, reason);
    cr_assert_eq(n, 2 + 125);
    cr_assert_eq(out[1], 125, "a control frame payload is at most 125 bytes");
    cr_assert_eq(out[2], 0x03);
    cr_assert_eq(out[3], 0xe8);
    cr_assert_eq(out[126], 'r');
    cr_assert_eq(out[127], 0xee, "wrote past 2 + 125 bytes");
    /* exactly 123 bytes fit untouched */
    reason[123] = '\0';
    cr_assert_eq(gw_frame_close(out, 1000, reason), 127);
    reason[122] = '\0';
    cr_assert_eq(gw_frame_close(out, 1000, reason), 126);
}

Test(close, truncation_keeps_utf8_whole)
{
    unsigned char out[2 + 125 + 16];
    char reason[200];
    size_t n, i;

    /* 122 ASCII bytes then a 3-byte character straddling the 123-byte cut */
    memset(reason, 'a', 122);
    memcpy(reason + 122, "\xe2\x82\xac" "tail", 8);
    n = gw_frame_close(out, 1000, reason);
    cr_assert_eq(n, 2 + 2 + 122);
    cr_assert_eq(out[1], 124);
    for (i = 4; i < n; i++)
        cr_assert_eq(out[i], 'a');
    /* a character ending exactly at the cut is kept */
    memset(reason, 'a', 120);
    memcpy(reason + 120, "\xe2\x82\xac" "tail", 8);
    n = gw_frame_close(out, 1000, reason);
    cr_assert_eq(n, 2 + 2 + 123);
    cr_assert_eq(memcmp(out + 124, "\xe2\x82\xac", 3), 0);
}

Test(scan, starts_idle)
{
    struct gw_frame_scan sc;

    memset(&sc, 0, sizeof(sc));
    cr_assert(gw_frame_scan_idle(&sc));
    gw_frame_scan_feed(&sc, NULL, 0);
    cr_assert(gw_frame_scan_idle(&sc));
}

Test(scan, single_frames)
{
    struct gw_frame_scan sc;
    static const unsigned char empty_text[] = {0x81, 0x80, 1, 2, 3, 4};
    static const unsigned char one[] = {0x81, 0x81, 1, 2, 3, 4, 'x'};

    memset(&sc, 0, sizeof(sc));
    gw_frame_scan_feed(&sc, empty_text, 5);
    cr_assert_not(gw_frame_scan_idle(&sc), "mask key incomplete");
    gw_frame_scan_feed(&sc, empty_text + 5, 1);
    cr_assert(gw_frame_scan_idle(&sc), "an empty frame ends with its header");
    gw_frame_scan_feed(&sc, one, 6);
    cr_assert_not(gw_frame_scan_idle(&sc));
    cr_assert_eq(sc.remaining, 1);
    gw_frame_scan_feed(&sc, one + 6, 1);
    cr_assert(gw_frame_scan_idle(&sc));
}

Test(scan, multi_frame_stream_every_split)
{
    struct stream s = {0};

    client_frame(&s, 1, GW_OP_TEXT, 0, 7, 1, 1);
    client_frame(&s, 1, GW_OP_TEXT, 5, 7, 1, 1);
    client_frame(&s, 1, GW_OP_BINARY, 125, 7, 1, 1);
    client_frame(&s, 1, GW_OP_BINARY, 126, 16, 1, 1);
    client_frame(&s, 1, GW_OP_PING, 3, 7, 1, 1);
    client_frame(&s, 1, GW_OP_TEXT, 300, 16, 1, 1);
    client_frame(&s, 1, GW_OP_PONG, 0, 7, 1, 1);
    client_frame(&s, 1, GW_OP_BINARY, 1000, 64, 1, 1);
    client_frame(&s, 1, GW_OP_CLOSE, 2, 7, 1, 1);
    check_all_splits(&s);
    stream_free(&s);
}

Test(scan, fragmented_with_interleaved_pings)
{
    struct stream s = {0};

    client_frame(&s, 0, GW_OP_TEXT, 10, 7, 1, 0);   /* opens the message */
    client_frame(&s, 1, GW_OP_PING, 4, 7, 1, 0);    /* control: still inside */
    client_frame(&s, 0, GW_OP_CONT, 200, 16, 1, 0);
    client_frame(&s, 1, GW_OP_PONG, 0, 7, 1, 0);
    client_frame(&s, 1, GW_OP_PING, 125, 7, 1, 0);
    client_frame(&s, 0, GW_OP_CONT, 0, 7, 1, 0);
    client_frame(&s, 1, GW_OP_CONT, 3, 64, 1, 1);   /* closes it */
    client_frame(&s, 1, GW_OP_PING, 0, 7, 1, 1);    /* control outside a message */
    client_frame(&s, 0, GW_OP_BINARY, 0, 7, 1, 0);  /* an empty first fragment still opens */
    client_frame(&s, 1, GW_OP_CONT, 1, 7, 1, 1);
    check_all_splits(&s);
    stream_free(&s);
}

Test(scan, close_inside_message_does_not_end_it)
{
    struct stream s = {0};

    client_frame(&s, 0, GW_OP_BINARY, 3, 7, 1, 0);
    client_frame(&s, 1, GW_OP_CLOSE, 2, 7, 1, 0);
    check_all_splits(&s);
    stream_free(&s);
}

Test(scan, sixty_four_bit_lengths)
{
    struct gw_frame_scan sc;
    unsigned char h[14] = {0x82, 0xff, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x05, 1, 2, 3, 4};
    unsigned char chunk[4096];
    uint64_t left = 0x100000005ULL;
    size_t i;

    memset(&sc, 0, sizeof(sc));
    for (i = 0; i < sizeof(h); i++) {
        gw_frame_scan_feed(&sc, h + i, 1);
        cr_assert_not(gw_frame_scan_idle(&sc));
    }
    cr_assert_eq(sc.remaining, left, "a length above 32 bits survives");
    cr_assert_eq(sc.hdr_len, 0);
    /* advance without feeding 4 GiB: the arithmetic is what matters */
    sc.remaining = sizeof(chunk) + 7;
    memset(chunk, 0x81, sizeof(chunk));
    gw_frame_scan_feed(&sc, chunk, sizeof(chunk));
    cr_assert_eq(sc.remaining, 7);
    gw_frame_scan_feed(&sc, chunk, 7);
    cr_assert(gw_frame_scan_idle(&sc));

    /* the largest length a header can claim never wraps */
    {
        unsigned char hmax[10] = {0x82, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

        memset(&sc, 0, sizeof(sc));
        gw_frame_scan_feed(&sc, hmax, sizeof(hmax));
        cr_assert_eq(sc.remaining, UINT64_MAX);
        gw_frame_scan_feed(&sc, chunk, sizeof(chunk));
        cr_assert_eq(sc.remaining, UINT64_MAX - sizeof(chunk));
        cr_assert_not(gw_frame_scan_idle(&sc));
    }
}

Test(scan, sixty_four_bit_frames_every_split)
{
    struct stream s = {0};

    client_frame(&s, 1, GW_OP_BINARY, 0, 64, 1, 1);
    client_frame(&s, 0, GW_OP_TEXT, 70000, 64, 1, 0);
    client_frame(&s, 1, GW_OP_CONT, 2, 16, 1, 1);
    check_all_splits(&s);
    stream_free(&s);
}

Test(scan, unmasked_frames_are_followed_too)
{
    struct stream s = {0};

    client_frame(&s, 1, GW_OP_TEXT, 4, 7, 0, 1);
    client_frame(&s, 0, GW_OP_TEXT, 130, 16, 0, 0);
    client_frame(&s, 1, GW_OP_CONT, 1, 7, 1, 1);
    check_all_splits(&s);
    stream_free(&s);
}

Test(scan, hostile_random_stream_never_overflows)
{
    unsigned char buf[8192];
    unsigned int seed = 777;
    struct gw_frame_scan sc;
    size_t i, off;

    for (i = 0; i < sizeof(buf); i++) {
        seed = seed * 1103515245u + 12345u;
        buf[i] = (unsigned char)(seed >> 16);
    }
    memset(&sc, 0, sizeof(sc));
    for (off = 0; off < sizeof(buf);) {
        size_t n = 1 + (buf[off] % 17);

        if (n > sizeof(buf) - off)
            n = sizeof(buf) - off;
        gw_frame_scan_feed(&sc, buf + off, n);
        cr_assert_lt(sc.hdr_len, 14, "a header never fills the buffer without completing");
        off += n;
    }
}
