/* fuzz_http: the HTTP request head parser (gateway/http.c).
 *
 * The input is what a client sends before the WebSocket upgrade. As the
 * gateway does, gw_http_head_end finds the head and gw_http_parse parses it;
 * then the helpers the handshake uses run over whatever was parsed. Checks:
 * the status is one of those http.h documents (a request line over the
 * limit is 414), every pointer of the request
 * points into the input, the counts are within the limits, and the query
 * decoder never writes past its buffer. */
#include <string.h>

#include "gateway/http.h"
#include "tests/fuzz/fuzz.h"

static void check_query(const struct gw_http_request *req, const char *name)
{
    char out[65];
    long n;

    memset(out, 'X', sizeof(out));
    n = gw_http_query_param(req->query, req->query_len, name, out, sizeof(out));
    FUZZ_ASSERT(n >= -2 && n < (long)sizeof(out));
    if (n >= 0)
        FUZZ_ASSERT(out[n] == '\0' && memchr(out, '\0', (size_t)n) == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct gw_http_request req;
    size_t end = gw_http_head_end(buf, size), i;
    int status;

    FUZZ_ASSERT(end <= size);
    /* The gateway also parses the whole buffer when it is full without an end. */
    status = gw_http_parse(buf, end ? end : size, &req);
    FUZZ_ASSERT(status == 0 || status == 400 || status == 414 || status == 431);
    if (status != 0)
        return 0;

    FUZZ_ASSERT(end > 0 && end <= GW_HTTP_HEAD_MAX);
    FUZZ_ASSERT(req.http_major == 1);
    FUZZ_ASSERT(req.nheaders <= GW_HTTP_HEADERS_MAX);
    FUZZ_ASSERT(req.path != NULL && req.path_len > 0);
    FUZZ_ASSERT(gw_http_line_len(buf, (size_t)((const char *)memchr(buf, '\n', end) - buf)) <=
                GW_HTTP_REQUEST_LINE_MAX);
    /* An absolute-form target without a path gets the static "/". */
    FUZZ_ASSERT(FUZZ_INSIDE(req.path, req.path_len, buf, end) || strcmp(req.path, "/") == 0);
    for (i = 0; i < req.path_len; i++)
        FUZZ_ASSERT((unsigned char)req.path[i] > 0x20 && (unsigned char)req.path[i] < 0x7f);
    if (req.query != NULL)
        FUZZ_ASSERT(FUZZ_INSIDE(req.query, req.query_len, buf, end));
    for (i = 0; i < req.nheaders; i++) {
        const struct gw_http_header *h = &req.headers[i];
        size_t k;

        FUZZ_ASSERT(h->name_len > 0 && FUZZ_INSIDE(h->name, h->name_len, buf, end));
        FUZZ_ASSERT(FUZZ_INSIDE(h->value, h->value_len, buf, end));
        for (k = 0; k < h->value_len; k++) {
            unsigned char ch = (unsigned char)h->value[k];
            FUZZ_ASSERT(ch >= 0x20 || ch == '\t');
            FUZZ_ASSERT(ch != 0x7f);
        }
        if (h->value_len > 0)
            FUZZ_ASSERT(h->value[0] != ' ' && h->value[h->value_len - 1] != ' ');
        (void)gw_http_value_has_token(h->value, h->value_len, "upgrade");
        (void)gw_http_value_has_token(h->value, h->value_len, "");
    }
    FUZZ_ASSERT(gw_http_header_get(&req, "Host") != NULL || req.http_minor == 0);
    {
        const struct gw_http_header *h = NULL;
        size_t n = 0;

        while ((h = gw_http_header_next(&req, "Connection", h)) != NULL)
            FUZZ_ASSERT(++n <= req.nheaders);
    }
    check_query(&req, "token");
    check_query(&req, "user");
    return 0;
}
