/* http.c: the request head, parsed by nodejs http-parser in one pass over a
 * complete head, and the small responses the gateway writes.
 *
 * The parser is only ever fed a whole head (gw_http_head_end found its end),
 * so every data callback arrives exactly once per element and its pointer is
 * contiguous in the caller's buffer: the request can simply point into it. A
 * second value callback in a row can only mean an obsolete line fold, which
 * RFC 7230 section 3.2.4 lets a server refuse with 400. */
#include "gateway/http.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>

enum cb_last { CB_NONE, CB_FIELD, CB_VALUE };

struct parse_ctx {
    struct gw_http_request *req;
    int status;            /* set by a callback that refuses the request */
    enum cb_last last;
    int url_seen;
    int headers_done;
    const char *head; size_t head_len;
    const char *url; size_t url_len;
};

static int is_blank(char c) { return c == ' ' || c == '\t'; }

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct parse_ctx *c = p->data;

    if (c->url_seen || at < c->head) {
        c->status = 400;
        return 1;
    }
    c->url_seen = 1;
    c->url = at;
    c->url_len = len;
    return 0;
}

/* RFC 7230 tchar. http-parser lets "Name :" through; section 3.2.4 says a
 * server must refuse it, as proxies disagree on what it means. */
static int is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct parse_ctx *c = p->data;
    struct gw_http_request *r = c->req;
    size_t i;

    for (i = 0; i < len; i++)
        if (!is_tchar((unsigned char)at[i]))
            break;
    if (len == 0 || i < len) {
        c->status = 400;
        return 1;
    }
    if (r->nheaders >= GW_HTTP_HEADERS_MAX) {
        c->status = 431;
        return 1;
    }
    r->headers[r->nheaders].name = at;
    r->headers[r->nheaders].name_len = len;
    r->headers[r->nheaders].value = at + len; /* an empty value still points into the buffer */
    r->headers[r->nheaders].value_len = 0;
    r->nheaders++;
    c->last = CB_FIELD;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct parse_ctx *c = p->data;
    struct gw_http_header *h;
    size_t i;

    if (c->last != CB_FIELD) {
        c->status = 400; /* obs-fold, or a value without a name */
        return 1;
    }
    /* http-parser lets bytes >= 0x80 through; a control byte (NUL, DEL, ...)
     * in a value is a smuggling attempt, not a header. */
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)at[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            c->status = 400;
            return 1;
        }
    }
    while (len > 0 && is_blank(at[0])) {
        at++;
        len--;
    }
    while (len > 0 && is_blank(at[len - 1]))
        len--;
    h = &c->req->headers[c->req->nheaders - 1];
    h->value = at;
    h->value_len = len;
    c->last = CB_VALUE;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct parse_ctx *c = p->data;
    struct gw_http_request *r = c->req;

    c->headers_done = 1;
    r->method = (int)p->method;
    r->http_major = p->http_major;
    r->http_minor = p->http_minor;
    r->has_body = (p->flags & F_CHUNKED) || p->uses_transfer_encoding ||
                  ((p->flags & F_CONTENTLENGTH) && p->content_length > 0);
    /* The body, if any, is not ours to read: the gateway refuses it. */
    return 1;
}

/* Origin-form ("/ws?x") is split by hand so a path keeps exactly the bytes
 * the client sent; absolute-form ("http://h/ws") goes through http-parser's
 * URL parser, which RFC 7230 section 5.3.2 requires a server to accept. */
static int split_target(struct parse_ctx *c)
{
    struct gw_http_request *r = c->req;
    const char *u = c->url;
    size_t n = c->url_len, i;

    if (n == 0)
        return 400;
    if (u[0] == '/') {
        size_t end = n;
        const char *hash = memchr(u, '#', n);
        const char *q;

        if (hash)
            end = (size_t)(hash - u);
        q = memchr(u, '?', end);
        if (q) {
            r->path = u;
            r->path_len = (size_t)(q - u);
            r->query = q + 1;
            r->query_len = end - r->path_len - 1;
        } else {
            r->path = u;
            r->path_len = end;
        }
    } else {
        struct http_parser_url pu;

        http_parser_url_init(&pu);
        if (n > UINT16_MAX || http_parser_parse_url(u, n, 0, &pu) != 0 ||
            !(pu.field_set & (1u << UF_SCHEMA)) || !(pu.field_set & (1u << UF_HOST)))
            return 400;
        if (pu.field_set & (1u << UF_PATH)) {
            r->path = u + pu.field_data[UF_PATH].off;
            r->path_len = pu.field_data[UF_PATH].len;
        } else {
            r->path = "/";
            r->path_len = 1;
        }
        if (pu.field_set & (1u << UF_QUERY)) {
            r->query = u + pu.field_data[UF_QUERY].off;
            r->query_len = pu.field_data[UF_QUERY].len;
        }
    }
    for (i = 0; i < r->path_len; i++) {
        unsigned char ch = (unsigned char)r->path[i];
        if (ch <= 0x20 || ch >= 0x7f)
            return 400;
    }
    return 0;
}

/* http-parser tolerates runs of blanks in the request line; a request line
 * is exactly "METHOD SP target SP HTTP/" (RFC 7230 section 3.1.1). */
static int request_line_strict(const struct parse_ctx *c, enum http_method m)
{
    size_t mlen = strlen(http_method_str(m));
    const char *end = c->url + c->url_len;

    return (size_t)(c->url - c->head) == mlen + 1 && (size_t)(c->head + c->head_len - end) > 6 &&
           memcmp(end, " HTTP/", 6) == 0;
}

size_t gw_http_line_len(const char *line, size_t upto_lf)
{
    return upto_lf > 0 && line[upto_lf - 1] == '\r' ? upto_lf - 1 : upto_lf;
}

size_t gw_http_head_end(const char *buf, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (buf[i] != '\n' || i == 0)
            continue;
        if (buf[i - 1] == '\n')
            return i + 1;
        if (buf[i - 1] == '\r' && i >= 2 && buf[i - 2] == '\n')
            return i + 1;
    }
    return 0;
}

int gw_http_parse(const char *head, size_t len, struct gw_http_request *req)
{
    static const http_parser_settings settings = {
        .on_url = on_url,
        .on_header_field = on_header_field,
        .on_header_value = on_header_value,
        .on_headers_complete = on_headers_complete,
    };
    http_parser p;
    struct parse_ctx c;
    size_t i, nhost = 0;
    int rc;

    memset(req, 0, sizeof(*req));
    if (len > GW_HTTP_HEAD_MAX)
        return 431;
    if (len == 0 || gw_http_head_end(head, len) != len)
        return 400;
    {
        const char *eol = memchr(head, '\n', len);
        if (eol != NULL && gw_http_line_len(head, (size_t)(eol - head)) > GW_HTTP_REQUEST_LINE_MAX)
            return 414;
    }

    memset(&c, 0, sizeof(c));
    c.req = req;
    c.head = head;
    c.head_len = len;
    http_parser_init(&p, HTTP_REQUEST);
    p.data = &c;
    (void)http_parser_execute(&p, &settings, head, len);
    if (c.status)
        return c.status;
    /* on_headers_complete returning 1 means "skip the body", which http-parser
     * reports as no error; anything else it flags is a malformed head. */
    if (HTTP_PARSER_ERRNO(&p) != HPE_OK || !c.headers_done || !c.url_seen)
        return 400;
    if (req->http_major != 1)
        return 400;
    if (!request_line_strict(&c, (enum http_method)p.method))
        return 400;
    if ((rc = split_target(&c)) != 0)
        return rc;
    for (i = 0; i < req->nheaders; i++)
        if (req->headers[i].name_len == 4 && strncasecmp(req->headers[i].name, "host", 4) == 0)
            nhost++;
    /* RFC 7230 section 5.4: exactly one Host in 1.1, at most one in 1.0. */
    if (nhost > 1 || (nhost == 0 && req->http_minor >= 1))
        return 400;
    return 0;
}

static int name_is(const struct gw_http_header *h, const char *name, size_t nlen)
{
    return h->name_len == nlen && strncasecmp(h->name, name, nlen) == 0;
}

const struct gw_http_header *gw_http_header_next(const struct gw_http_request *req, const char *name,
                                                 const struct gw_http_header *prev)
{
    size_t nlen = strlen(name), i = 0;

    if (prev) {
        if (prev < req->headers || prev >= req->headers + req->nheaders)
            return NULL;
        i = (size_t)(prev - req->headers) + 1;
    }
    for (; i < req->nheaders; i++)
        if (name_is(&req->headers[i], name, nlen))
            return &req->headers[i];
    return NULL;
}

const struct gw_http_header *gw_http_header_get(const struct gw_http_request *req, const char *name)
{
    return gw_http_header_next(req, name, NULL);
}

int gw_http_value_has_token(const char *value, size_t len, const char *token)
{
    size_t tlen = strlen(token), i = 0;

    while (i < len) {
        size_t start, end;

        while (i < len && (is_blank(value[i]) || value[i] == ','))
            i++;
        start = i;
        while (i < len && value[i] != ',')
            i++;
        end = i;
        while (end > start && is_blank(value[end - 1]))
            end--;
        if (end - start == tlen && tlen > 0 && strncasecmp(value + start, token, tlen) == 0)
            return 1;
    }
    return 0;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static long decode_component(const char *s, size_t len, char *out, size_t outlen)
{
    size_t i, o = 0;

    if (outlen == 0)
        return -2;
    for (i = 0; i < len; i++) {
        char ch = s[i];

        if (ch == '+') {
            ch = ' ';
        } else if (ch == '%') {
            int hi, lo;

            if (i + 2 >= len)
                return -2;
            hi = hexval(s[i + 1]);
            lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -2;
            ch = (char)(hi << 4 | lo);
            i += 2;
        }
        if (ch == '\0' || o + 1 >= outlen)
            return -2;
        out[o++] = ch;
    }
    out[o] = '\0';
    return (long)o;
}

long gw_http_query_param(const char *query, size_t len, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name), i = 0;

    if (!query)
        return -1;
    while (i < len) {
        size_t start = i, end, eq;

        while (i < len && query[i] != '&')
            i++;
        end = i;
        i++; /* past '&' */
        eq = start;
        while (eq < end && query[eq] != '=')
            eq++;
        if (eq - start != nlen || memcmp(query + start, name, nlen) != 0)
            continue;
        if (eq == end)
            return decode_component("", 0, out, outlen);
        return decode_component(query + eq + 1, end - eq - 1, out, outlen);
    }
    return -1;
}

size_t gw_http_response(char *out, size_t outlen, int status, const char *content_type,
                        const char *body, size_t body_len, const char *extra, int close)
{
    int n;

    if (!body)
        body_len = 0;
    n = snprintf(out, outlen, "HTTP/1.1 %d %s\r\n%s%s%sContent-Length: %zu\r\n%s%s\r\n", status,
                 gw_http_reason(status), content_type && body_len ? "Content-Type: " : "",
                 content_type && body_len ? content_type : "", content_type && body_len ? "\r\n" : "",
                 body_len, extra ? extra : "", close ? "Connection: close\r\n" : "");
    if (n < 0 || (size_t)n >= outlen || outlen - (size_t)n < body_len)
        return 0;
    if (body_len)
        memcpy(out + n, body, body_len);
    return (size_t)n + body_len;
}

const char *gw_http_reason(int status)
{
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}
