/* wsclient.h: a small blocking WebSocket (RFC 6455) and HTTP/1.1 client for
 * the integration tests, on raw loopback sockets.
 *
 * Every call that waits takes a timeout in milliseconds and waits with
 * poll(2) against a monotonic deadline: nothing here blocks without bound.
 * Frames the client sends are masked, as RFC 6455 requires of clients (the
 * raw senders can break that on purpose). Server pings are answered with a
 * pong while receiving, unless ws->auto_pong is cleared.
 *
 * JSON view: ws_recv_json() returns every server message as a jansson value
 * whatever the session's subprotocol (MessagePack frames are converted), and
 * ws_send_json() encodes a request in the session's format, so one scenario
 * can run over both encodings. Messages a wait does not want are kept in a
 * per-connection backlog that later waits search first; nothing is dropped.
 *
 * Errors: functions returning int give 0 (or a positive count) on success and
 * -1 on failure with a reason in ws->err; functions returning pointers give
 * NULL. Nothing calls exit() or asserts: the tests decide. */
#ifndef CHATMI_IT_WSCLIENT_H
#define CHATMI_IT_WSCLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define IT_SUBPROTO_JSON "chatmi.v1.json"
#define IT_SUBPROTO_MSGPACK "chatmi.v1.msgpack"

enum ws_opcode {
    WS_OP_CONT = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA
};

/* Close code recorded when the TCP connection ended without a close frame. */
#define WS_CLOSE_ABNORMAL 1006
/* Close code recorded for a close frame without a status code. */
#define WS_CLOSE_NO_STATUS 1005

/* ---- HTTP ----------------------------------------------------------------- */

struct it_http_resp {
    int status;          /* 0 when no status line arrived */
    char *head;          /* status line and headers, NUL terminated (malloc'ed) */
    char *body;          /* NUL terminated (malloc'ed); may hold bytes past the head */
    size_t body_len;
    int closed;          /* the server closed the connection (EOF seen) */
};

/* Sends req[0..len) on a new connection to 127.0.0.1:port and reads one
 * response: the head, then Content-Length bytes of body (or everything up to
 * EOF when there is no Content-Length). When wait_close is set, it then
 * waits for the server to close the connection and sets resp->closed.
 * Returns 0 when a complete head arrived within timeout_ms, else -1 (resp
 * still holds what arrived). Call it_http_resp_free() in every case. */
int it_http_raw(int port, const void *req, size_t len, int timeout_ms, int wait_close, struct it_http_resp *resp);
/* The same on a connection the caller opened (it_tcp_connect); closes fd. */
int it_http_raw_fd(int fd, const void *req, size_t len, int timeout_ms, int wait_close, struct it_http_resp *resp);

/* GET path with "Connection: close". Returns as it_http_raw(). */
int it_http_get(int port, const char *path, int timeout_ms, struct it_http_resp *resp);

/* Copies the first header called name (case-insensitive) of a response head
 * into out (blanks trimmed). Returns out, or NULL when absent. */
const char *it_http_header(const char *head, const char *name, char *out, size_t outlen);

void it_http_resp_free(struct it_http_resp *resp);

/* Connects a TCP socket to 127.0.0.1:port (blocking, close-on-exec).
 * Returns the fd or -1. */
int it_tcp_connect(int port, int timeout_ms);
/* The same with SO_RCVBUF set before connect() when rcvbuf > 0, so the
 * window scale is negotiated for the small buffer. */
int it_tcp_connect_rcvbuf(int port, int timeout_ms, int rcvbuf);

/* Waits until fd reaches EOF (or a reset), discarding what arrives.
 * Returns 1 on EOF, 0 on timeout. */
int it_wait_eof(int fd, int timeout_ms);

/* ---- WebSocket ------------------------------------------------------------ */

struct ws_connect_opts {
    const char *path;       /* request target, e.g. "/ws?user=alice"; NULL: "/ws" */
    const char *protocols;  /* Sec-WebSocket-Protocol value; NULL: none offered */
    const char *headers;    /* extra header lines, each ending in "\r\n"; may be NULL */
    const char *name;       /* label for diagnostics ("alice#1"); NULL: derived */
    int timeout_ms;         /* handshake deadline; 0: the default */
    int rcvbuf;             /* SO_RCVBUF set before connecting (a slow reader); 0: the kernel's */
};

struct ws_frame {
    int opcode;
    int fin;
    int rsv;                /* the three RSV bits */
    int masked;             /* the server masked it (a protocol violation) */
    unsigned char *data;    /* malloc'ed, NUL terminated for convenience */
    size_t len;
};

struct ws {
    int fd;
    int port;
    char name[64];
    int msgpack;            /* the session speaks chatmi.v1.msgpack */
    int auto_pong;          /* answer server pings (default 1) */
    int pings;              /* server pings seen */
    int pongs;              /* pongs received */
    unsigned char last_pong[126];
    size_t last_pong_len;
    int close_code;         /* 0 while open; the peer's code, 1005 or 1006 once closed */
    char close_reason[128];
    int close_sent;
    unsigned char *rbuf;    /* bytes received but not consumed yet */
    size_t rlen, rcap;
    json_t *backlog;        /* array of messages received but not wanted yet */
    json_t *hello;          /* the hello message, once read by ws_open_*() */
    int last_rc;            /* ws_recv_msg()'s result in the last ws_recv_json() */
    char err[256];
};

/* Opens a TCP connection and performs the opening handshake. On a 101 with
 * a correct Sec-WebSocket-Accept, returns the connection; the selected
 * subprotocol decides the JSON/MessagePack view. On any other answer, or a
 * wrong accept value, returns NULL; *resp (when not NULL) receives the HTTP
 * response (the caller frees it) and errbuf (when not NULL) a reason. */
struct ws *ws_connect(int port, const struct ws_connect_opts *o, struct it_http_resp *resp, char *errbuf,
                      size_t errlen);

/* ws_connect() then reads the first message, which must be a hello
 * ({"op":"hello",...}); it is kept in ws->hello. NULL on any failure (errbuf
 * says why). */
struct ws *ws_open(int port, const struct ws_connect_opts *o, char *errbuf, size_t errlen);

/* Shorthands for ws_open(): --auth none with ?user=<user>, and --auth jwt
 * with a bearer token; proto NULL offers no subprotocol. */
struct ws *ws_open_user(int port, const char *user, const char *proto);
struct ws *ws_open_token(int port, const char *token, const char *proto);

/* The session id from the hello ("" when none). */
const char *ws_session(const struct ws *ws);

/* Closes the socket (no close handshake) and frees everything. NULL is fine. */
void ws_free(struct ws *ws);

/* Sends one frame, masked unless unmasked is set. The *_raw variant writes
 * bytes as given. All return 0 or -1. */
int ws_send_frame_ex(struct ws *ws, int opcode, int fin, int rsv, int unmasked, const void *data, size_t len);
int ws_send_frame(struct ws *ws, int opcode, int fin, const void *data, size_t len);
int ws_send_raw(struct ws *ws, const void *data, size_t len);
int ws_send_text(struct ws *ws, const char *text);
int ws_send_textn(struct ws *ws, const void *text, size_t len);
int ws_send_binary(struct ws *ws, const void *data, size_t len);
int ws_send_ping(struct ws *ws, const void *data, size_t len);
int ws_send_close(struct ws *ws, int code, const char *reason);

/* Reads the next frame as it is, with no automatic handling of pings or
 * close. Returns 1 with a frame (free f->data), 0 on EOF, -1 on timeout
 * (ws->err "timeout") or error. */
int ws_recv_frame(struct ws *ws, struct ws_frame *f, int timeout_ms);

/* Reads the next data message (text or binary), reassembling fragments,
 * answering pings (when auto_pong) and recording pongs. On a close frame it
 * records ws->close_code/close_reason and answers with a close.
 * Returns 1 with the opcode, data and len set (free the data), 0 when the connection
 * is closed (ws->close_code says how), -1 on timeout or a protocol error. */
int ws_recv_msg(struct ws *ws, int *opcode, unsigned char **data, size_t *len, int timeout_ms);

/* Next server message as JSON (text frame parsed, or a binary frame in a
 * MessagePack session converted). Skips the backlog. NULL on timeout, close
 * or undecodable data (ws->err says which). New reference. */
json_t *ws_recv_json(struct ws *ws, int timeout_ms);

/* Sends a request in the session's encoding. Steals the reference (so
 * ws_send_json(ws, json_pack(...)) is fine); a NULL req fails. */
int ws_send_json(struct ws *ws, json_t *req);

/* Predicate for ws_wait(): nonzero when msg is the one wanted. */
typedef int (*ws_match_fn)(json_t *msg, const void *arg);

/* Returns the first message matching, from the backlog first, then from the
 * connection until timeout_ms; others are appended to the backlog. New
 * reference, or NULL on timeout/close (ws->err says which). */
json_t *ws_wait(struct ws *ws, ws_match_fn match, const void *arg, int timeout_ms);

/* Replies ("id" equal to id: ack, error, joined, history, ...). */
json_t *ws_wait_reply(struct ws *ws, const char *id, int timeout_ms);
/* The first message with this "op". */
json_t *ws_wait_op(struct ws *ws, const char *op, int timeout_ms);
/* A delivery {"op":"message"} of conv (NULL: any) with this seq (<= 0: any). */
json_t *ws_wait_message(struct ws *ws, const char *conv, int64_t seq, int timeout_ms);
/* A delivery with this "msg" id. */
json_t *ws_wait_msg_id(struct ws *ws, const char *msg_id, int timeout_ms);

/* Sends req (stolen) and waits for the reply carrying req's "id". */
json_t *ws_request(struct ws *ws, json_t *req, int timeout_ms);

/* How many backlog messages match (without removing them). */
size_t ws_backlog_count(struct ws *ws, ws_match_fn match, const void *arg);
/* Removes and returns (new reference) every backlog message matching, as an array. */
json_t *ws_backlog_take(struct ws *ws, ws_match_fn match, const void *arg);

/* Reads until the connection closes, answering pings when auto_pong, keeping
 * data messages in the backlog. Returns the close code (1006 for EOF without
 * a close frame), or -1 on timeout. */
int ws_wait_close(struct ws *ws, int timeout_ms);

/* Matchers usable with ws_wait()/ws_backlog_count(). arg: const char *. */
int ws_match_id(json_t *msg, const void *id);
int ws_match_op(json_t *msg, const void *op);
int ws_match_msg_id(json_t *msg, const void *msg_id);

/* JSON field shorthands: "" / -1 when absent or of another type. */
const char *js(json_t *obj, const char *key);
int64_t ji(json_t *obj, const char *key);

/* One-line rendering of a JSON value for failure messages (static buffer,
 * truncated; valid until the next call). */
const char *jdump(json_t *v);

/* MessagePack <-> jansson conversions (maps with string keys, arrays,
 * strings, integers, floats, booleans, nil). ws_msgpack_to_json() returns
 * NULL for data that is not exactly one such value; bin values become
 * strings when they hold valid UTF-8. */
json_t *ws_msgpack_to_json(const void *data, size_t len);
int ws_json_to_msgpack(json_t *v, unsigned char **out, size_t *outlen);

#endif
