/* fuzz_frame: the client frame scanner (gateway/frame.c), which decides
 * when a connection's wslay context may be freed.
 *
 * The first input byte picks a chunk size; the rest is a client's byte
 * stream, fed once whole and once in chunks. Checks: the scanner ends in the
 * same state however the stream was split (TCP may split it anywhere), and
 * never holds more header bytes than a header can have. */
#include <string.h>

#include "gateway/frame.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gw_frame_scan whole, split;
    size_t chunk, off;

    if (size < 1)
        return 0;
    chunk = (size_t)data[0] % 17 + 1;
    data++;
    size--;

    memset(&whole, 0, sizeof(whole));
    memset(&split, 0, sizeof(split));
    gw_frame_scan_feed(&whole, data, size);
    for (off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        gw_frame_scan_feed(&split, data + off, n);
        FUZZ_ASSERT(split.hdr_len < GW_FRAME_HEADER_MAX + 4);
    }
    FUZZ_ASSERT(whole.remaining == split.remaining);
    FUZZ_ASSERT(whole.hdr_len == split.hdr_len);
    FUZZ_ASSERT(memcmp(whole.hdr, split.hdr, whole.hdr_len) == 0);
    FUZZ_ASSERT(whole.in_message == split.in_message);
    FUZZ_ASSERT(gw_frame_scan_idle(&whole) == gw_frame_scan_idle(&split));
    return 0;
}
