/* handshake.c: RFC 6455 section 4.2 checks and chatmi authentication for
 * GET /ws. Each check fails with the status handshake.h documents, in that
 * order, so a client always learns about the first thing it got wrong. */
#include "gateway/handshake.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "common/base64.h"
#include "common/jwt.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static void fail(struct gw_handshake_result *res, int status, const char *reason)
{
    res->status = status;
    res->reason = reason;
}

static int header_has_token(const struct gw_http_request *req, const char *name, const char *token)
{
    const struct gw_http_header *h = NULL;

    while ((h = gw_http_header_next(req, name, h)) != NULL)
        if (gw_http_value_has_token(h->value, h->value_len, token))
            return 1;
    return 0;
}

static size_t header_count(const struct gw_http_request *req, const char *name)
{
    const struct gw_http_header *h = NULL;
    size_t n = 0;

    while ((h = gw_http_header_next(req, name, h)) != NULL)
        n++;
    return n;
}

static int is_blank(char c) { return c == ' ' || c == '\t'; }

static int b64_std_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* 16 bytes encode to 22 significant characters and "==". The spare low bits
 * of the last character are not required to be zero: decoders ignore them,
 * and refusing them would only break sloppy but harmless clients. */
static int ws_key_valid(const char *k, size_t len)
{
    size_t i;

    if (len != 24 || k[22] != '=' || k[23] != '=')
        return 0;
    for (i = 0; i < 22; i++)
        if (!b64_std_char(k[i]))
            return 0;
    return 1;
}

void gw_ws_accept(const char *key, size_t len, char *out)
{
    unsigned char md[SHA_DIGEST_LENGTH];
    char buf[256];
    size_t glen = sizeof(WS_GUID) - 1;

    if (len <= sizeof(buf) - glen) {
        memcpy(buf, key, len);
        memcpy(buf + len, WS_GUID, glen);
        SHA1((const unsigned char *)buf, len + glen, md);
    } else {
        /* Only a caller that skipped the key check gets here; still answer correctly. */
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        unsigned int mdlen = 0;

        if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) || !EVP_DigestUpdate(ctx, key, len) ||
            !EVP_DigestUpdate(ctx, WS_GUID, glen) || !EVP_DigestFinal_ex(ctx, md, &mdlen))
            memset(md, 0, sizeof(md));
        EVP_MD_CTX_free(ctx);
    }
    cm_base64_encode(md, sizeof(md), out);
}

static int origin_allowed(const struct gw_http_request *req, const struct gw_handshake_config *cfg)
{
    const struct gw_http_header *h;
    size_t i;

    if (!cfg->allowed_origins)
        return 1;
    h = gw_http_header_get(req, "Origin");
    if (!h)
        return 1; /* not a browser: the allowlist guards against cross-site pages only */
    if (gw_http_header_next(req, "Origin", h))
        return 0;
    /* Scheme and host are case-insensitive (RFC 6454 section 4); browsers
     * send them lowercased, operators may not type them so. */
    for (i = 0; i < cfg->norigins; i++) {
        const char *o = cfg->allowed_origins[i];
        if (o && strlen(o) == h->value_len && strncasecmp(o, h->value, h->value_len) == 0)
            return 1;
    }
    return 0;
}

/* Walks every offered subprotocol, across all Sec-WebSocket-Protocol
 * headers, in the client's order. Returns 1 with the choice, 0 when nothing
 * was offered, -1 when offers exist but chatmi speaks none of them. */
static int pick_subprotocol(const struct gw_http_request *req, struct gw_handshake_result *res)
{
    const struct gw_http_header *h = NULL;
    int offered = 0;

    while ((h = gw_http_header_next(req, "Sec-WebSocket-Protocol", h)) != NULL) {
        size_t i = 0;

        while (i < h->value_len) {
            size_t start, end;

            while (i < h->value_len && (h->value[i] == ',' || is_blank(h->value[i])))
                i++;
            start = i;
            while (i < h->value_len && h->value[i] != ',')
                i++;
            end = i;
            while (end > start && is_blank(h->value[end - 1]))
                end--;
            if (end == start)
                continue;
            offered = 1;
            /* Subprotocol names are case-sensitive (RFC 6455 section 11.5). */
            if (end - start == sizeof(GW_SUBPROTO_JSON) - 1 &&
                memcmp(h->value + start, GW_SUBPROTO_JSON, end - start) == 0) {
                res->subprotocol = GW_SUBPROTO_JSON;
                res->enc = CM_ENC_JSON;
                return 1;
            }
            if (end - start == sizeof(GW_SUBPROTO_MSGPACK) - 1 &&
                memcmp(h->value + start, GW_SUBPROTO_MSGPACK, end - start) == 0) {
                res->subprotocol = GW_SUBPROTO_MSGPACK;
                res->enc = CM_ENC_MSGPACK;
                return 1;
            }
        }
    }
    return offered ? -1 : 0;
}

/* Finds the bearer token. Returns its length with *tok set (pointing into
 * the request or into qbuf), 0 when there is none, -1 when it is unusable. */
static long find_token(const struct gw_http_request *req, char *qbuf, size_t qlen, const char **tok)
{
    const struct gw_http_header *h = gw_http_header_get(req, "Authorization");
    long n;

    if (h && h->value_len > 6 && strncasecmp(h->value, "Bearer", 6) == 0 &&
        (h->value[6] == ' ' || h->value[6] == '\t')) {
        size_t i = 6;

        if (gw_http_header_next(req, "Authorization", h))
            return -1; /* two credentials: refuse to guess which one counts */
        while (i < h->value_len && (h->value[i] == ' ' || h->value[i] == '\t'))
            i++;
        if (i == h->value_len || h->value_len - i > CM_JWT_MAX)
            return -1;
        *tok = h->value + i;
        return (long)(h->value_len - i);
    }
    n = gw_http_query_param(req->query, req->query_len, "token", qbuf, qlen);
    if (n == -1)
        return h ? -1 : 0; /* an Authorization of another scheme is a failed attempt, not "none" */
    if (n <= 0)
        return -1;
    *tok = qbuf;
    return n;
}

void gw_handshake_check(const struct gw_http_request *req, const struct gw_handshake_config *cfg,
                        int64_t now_s, struct gw_handshake_result *res)
{
    const struct gw_http_header *h;
    int sp;

    memset(res, 0, sizeof(*res));
    res->enc = CM_ENC_JSON;

    if (req->method != HTTP_GET ||
        req->http_major < 1 || (req->http_major == 1 && req->http_minor < 1)) {
        fail(res, 400, "websocket needs GET and HTTP/1.1");
        return;
    }
    if (!header_has_token(req, "Upgrade", "websocket") || !header_has_token(req, "Connection", "Upgrade")) {
        fail(res, 400, "not a websocket upgrade");
        return;
    }
    h = gw_http_header_get(req, "Sec-WebSocket-Version");
    if (!h || header_count(req, "Sec-WebSocket-Version") != 1 || h->value_len != 2 ||
        memcmp(h->value, "13", 2) != 0) {
        fail(res, 426, "unsupported websocket version");
        return;
    }
    h = gw_http_header_get(req, "Sec-WebSocket-Key");
    if (!h || header_count(req, "Sec-WebSocket-Key") != 1 || !ws_key_valid(h->value, h->value_len)) {
        fail(res, 400, "bad Sec-WebSocket-Key");
        return;
    }
    gw_ws_accept(h->value, h->value_len, res->accept);
    if (!origin_allowed(req, cfg)) {
        fail(res, 403, "origin not allowed");
        return;
    }
    sp = pick_subprotocol(req, res);
    if (sp < 0) {
        fail(res, 400, "no supported subprotocol");
        return;
    }

    if (cfg->auth == GW_AUTH_NONE) {
        long n = gw_http_query_param(req->query, req->query_len, "user", res->user, sizeof(res->user));

        if (n <= 0 || !cm_valid_user(res->user, (size_t)n)) {
            res->user[0] = '\0';
            fail(res, 400, "bad user id");
            return;
        }
    } else {
        char qbuf[CM_JWT_MAX + 1];
        const char *tok = NULL;
        long n;
        int64_t exp = 0;
        enum cm_jwt_result jr;

        if (!cfg->jwt_key || cfg->jwt_key_len == 0) {
            fail(res, 500, "no jwt key configured");
            return;
        }
        n = find_token(req, qbuf, sizeof(qbuf), &tok);
        if (n == 0) {
            fail(res, 401, "missing token");
            return;
        }
        if (n < 0) {
            fail(res, 401, "malformed token");
            return;
        }
        struct cm_jwt_rules rules = {
            .keys = {cfg->jwt_key, cfg->jwt_key2},
            .key_lens = {cfg->jwt_key_len, cfg->jwt_key2_len},
            .nkeys = cfg->jwt_key2 != NULL && cfg->jwt_key2_len > 0 ? 2 : 1,
            .leeway = cfg->jwt_leeway,
            .audience = cfg->jwt_audience,
            .issuer = cfg->jwt_issuer,
        };
        jr = cm_jwt_check(tok, (size_t)n, &rules, now_s, res->user, &exp);
        if (jr == CM_JWT_BAD_SUB) {
            res->user[0] = '\0';
            fail(res, 400, "bad user id");
            return;
        }
        if (jr != CM_JWT_OK) {
            res->user[0] = '\0';
            fail(res, 401, cm_jwt_result_str(jr));
            return;
        }
        /* Defence in depth: a valid verdict with an invalid sub must not become an identity. */
        if (!cm_valid_user(res->user, strnlen(res->user, sizeof(res->user)))) {
            res->user[0] = '\0';
            fail(res, 400, "bad user id");
            return;
        }
        res->exp = exp;
    }
    res->status = 101;
    res->reason = "switching protocols";
}

size_t gw_handshake_response(const struct gw_handshake_result *res, char *out, size_t outlen)
{
    int n;

    if (res->status != 101)
        return 0;
    n = snprintf(out, outlen,
                 "HTTP/1.1 101 Switching Protocols\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: %s\r\n"
                 "%s%s%s"
                 "\r\n",
                 res->accept, res->subprotocol ? "Sec-WebSocket-Protocol: " : "",
                 res->subprotocol ? res->subprotocol : "", res->subprotocol ? "\r\n" : "");
    if (n < 0 || (size_t)n >= outlen)
        return 0;
    return (size_t)n;
}
