/* http.h: the HTTP/1.1 request head, parsed with nodejs http-parser, and
 * the few responses the gateway writes. Pure functions over a buffer the
 * caller owns: every pointer in a parsed request points into it. */
#ifndef CHATMI_GATEWAY_HTTP_H
#define CHATMI_GATEWAY_HTTP_H

#include <stddef.h>

#define GW_HTTP_HEAD_MAX 8192      /* request line + headers; more: 431 */
#define GW_HTTP_HEADERS_MAX 64     /* more: 431 */
/* "GET /ws?token=... HTTP/1.1" longer than this: 414. Room for a token of
 * CM_JWT_MAX (4096) bytes in the query string. */
#define GW_HTTP_REQUEST_LINE_MAX 6144

struct gw_http_header {
    const char *name;  size_t name_len;
    const char *value; size_t value_len; /* surrounding blanks trimmed */
};

struct gw_http_request {
    int method;                       /* http-parser's enum http_method (HTTP_GET, ...) */
    int http_major, http_minor;
    const char *path;  size_t path_len;   /* "/ws": without query or fragment */
    const char *query; size_t query_len;  /* after '?', NULL when absent */
    struct gw_http_header headers[GW_HTTP_HEADERS_MAX];
    size_t nheaders;
    int has_body;                     /* Content-Length > 0 or chunked: the gateway refuses those */
};

/* Length of the head in buf including the final CRLF CRLF (also accepts
 * LF LF), or 0 when the head is not complete yet. */
size_t gw_http_head_end(const char *buf, size_t len);

/* Length of a line without its CR, given its length up to the LF. */
size_t gw_http_line_len(const char *line, size_t upto_lf);

/* Parses one complete head (as delimited by gw_http_head_end).
 * Returns 0; or an HTTP status to answer with: 400 (malformed, bad version,
 * duplicate Host, ...), 414 (request line over GW_HTTP_REQUEST_LINE_MAX
 * bytes), 431 (too many headers or head too long). */
int gw_http_parse(const char *head, size_t len, struct gw_http_request *req);

/* Header lookup, case-insensitive on the name. gw_http_header_next returns
 * the next header with that name after `prev` (NULL: the first), or NULL. */
const struct gw_http_header *gw_http_header_get(const struct gw_http_request *req, const char *name);
const struct gw_http_header *gw_http_header_next(const struct gw_http_request *req, const char *name,
                                                 const struct gw_http_header *prev);

/* 1 when the comma-separated value contains token (case-insensitive, blanks
 * around items ignored), as in "Connection: keep-alive, Upgrade". */
int gw_http_value_has_token(const char *value, size_t len, const char *token);

/* Finds name=value in a query string and percent-decodes the value (and
 * '+' as a space) into out (NUL terminated). Returns the decoded length, -1
 * when absent, -2 when malformed (bad %-escape, NUL byte) or longer than
 * outlen - 1. */
long gw_http_query_param(const char *query, size_t len, const char *name, char *out, size_t outlen);

/* Writes a whole response: status line, Content-Type (when body), Content-Length,
 * `extra` header lines (each ending CRLF, may be NULL), "Connection: close"
 * when close is set, blank line, body. Returns the length, 0 when it does not fit. */
size_t gw_http_response(char *out, size_t outlen, int status, const char *content_type,
                        const char *body, size_t body_len, const char *extra, int close);

const char *gw_http_reason(int status); /* "OK", "Not Found", ... */

#endif
