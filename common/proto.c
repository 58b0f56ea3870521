/* proto.c: decoding and validating client requests (JSON or MessagePack),
 * packing server messages, and MessagePack -> JSON for JSON sessions.
 *
 * Both encodings are read through one small accessor (struct src) so the
 * validation rules exist once. Decoded strings point into the JSON tree kept
 * in req->json_root, or, for MessagePack, into the caller's data (msgpack-c
 * references str objects in place), which must outlive req. */
#include "common/proto.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "common/ids.h"

const char *cm_err_code(enum cm_err e)
{
    switch (e) {
    case CM_ERR_NONE: return "none";
    case CM_ERR_BAD_REQUEST: return "bad_request";
    case CM_ERR_FORBIDDEN: return "forbidden";
    case CM_ERR_NOT_FOUND: return "not_found";
    case CM_ERR_TOO_LARGE: return "too_large";
    case CM_ERR_RATE_LIMITED: return "rate_limited";
    case CM_ERR_UNAVAILABLE: return "unavailable";
    case CM_ERR_INTERNAL: return "internal";
    }
    return "internal";
}

/* ---- one view of a field, whatever the encoding ------------------------ */

enum fkind { F_ABSENT, F_STR, F_INT, F_ARRAY, F_BIN, F_OTHER, F_DUP };

struct fval {
    enum fkind kind;
    const char *p;  /* F_STR, F_BIN */
    size_t len;     /* F_STR, F_BIN; F_ARRAY: element count */
    int64_t i;      /* F_INT */
    int int_ok;     /* F_INT: fits int64 */
    const void *arr;
};

struct src {
    enum cm_encoding enc;
    const json_t *obj;         /* CM_ENC_JSON */
    const msgpack_object *map; /* CM_ENC_MSGPACK */
};

static void from_json(const json_t *j, struct fval *v)
{
    memset(v, 0, sizeof(*v));
    if (j == NULL || json_is_null(j)) {
        v->kind = F_ABSENT;
    } else if (json_is_string(j)) {
        v->kind = F_STR, v->p = json_string_value(j), v->len = json_string_length(j);
    } else if (json_is_integer(j)) {
        v->kind = F_INT, v->i = json_integer_value(j), v->int_ok = 1;
    } else if (json_is_array(j)) {
        v->kind = F_ARRAY, v->arr = j, v->len = json_array_size(j);
    } else {
        v->kind = F_OTHER;
    }
}

static void from_mp(const msgpack_object *o, struct fval *v)
{
    memset(v, 0, sizeof(*v));
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: v->kind = F_ABSENT; break;
    case MSGPACK_OBJECT_STR: v->kind = F_STR, v->p = o->via.str.ptr, v->len = o->via.str.size; break;
    case MSGPACK_OBJECT_BIN: v->kind = F_BIN, v->p = o->via.bin.ptr, v->len = o->via.bin.size; break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        v->kind = F_INT, v->int_ok = o->via.u64 <= INT64_MAX, v->i = v->int_ok ? (int64_t)o->via.u64 : 0;
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: v->kind = F_INT, v->i = o->via.i64, v->int_ok = 1; break;
    case MSGPACK_OBJECT_ARRAY: v->kind = F_ARRAY, v->arr = o, v->len = o->via.array.size; break;
    default: v->kind = F_OTHER; break;
    }
}

/* A MessagePack map may repeat a key; JSON input is rejected for that by
 * jansson, so the same rule is applied here, per key looked up (a full
 * pairwise check would be quadratic in hostile input). */
static void src_get(const struct src *s, const char *key, struct fval *v)
{
    if (s->enc == CM_ENC_JSON) {
        from_json(json_object_get(s->obj, key), v);
        return;
    }
    size_t klen = strlen(key);
    const msgpack_object *found = NULL;
    for (uint32_t i = 0; i < s->map->via.map.size; i++) {
        const msgpack_object *k = &s->map->via.map.ptr[i].key;
        if (k->via.str.size == klen && memcmp(k->via.str.ptr, key, klen) == 0) {
            if (found != NULL) {
                memset(v, 0, sizeof(*v));
                v->kind = F_DUP;
                return;
            }
            found = &s->map->via.map.ptr[i].val;
        }
    }
    if (found == NULL) {
        memset(v, 0, sizeof(*v));
        v->kind = F_ABSENT;
    } else {
        from_mp(found, v);
    }
}

static void src_elem(const struct src *s, const struct fval *arr, size_t i, struct fval *v)
{
    if (s->enc == CM_ENC_JSON)
        from_json(json_array_get(arr->arr, i), v);
    else
        from_mp(&((const msgpack_object *)arr->arr)->via.array.ptr[i], v);
}

/* ---- request decoding --------------------------------------------------- */

#define BAD(...)                                 \
    do {                                         \
        snprintf(msg, msglen, __VA_ARGS__);      \
        return CM_ERR_BAD_REQUEST;               \
    } while (0)

#define NAME_RULE "1-64 characters of A-Z a-z 0-9 _ . -"

static int dup_field(const struct fval *v)
{
    return v->kind == F_DUP;
}

/* A required user id or room name. */
static enum cm_err get_name(const struct src *s, const char *key, int room, struct cm_str *out, char *msg,
                            size_t msglen)
{
    struct fval v;
    src_get(s, key, &v);
    if (dup_field(&v))
        BAD("duplicate field \"%s\"", key);
    if (v.kind == F_ABSENT)
        BAD("%s is required", key);
    if (v.kind != F_STR || !(room ? cm_valid_room(v.p, v.len) : cm_valid_user(v.p, v.len)))
        BAD("%s must be " NAME_RULE, key);
    out->p = v.p, out->len = v.len;
    return CM_ERR_NONE;
}

/* An optional non-negative integer. */
static enum cm_err get_count(const struct src *s, const char *key, int *has, int64_t *out, char *msg,
                             size_t msglen)
{
    struct fval v;
    src_get(s, key, &v);
    if (dup_field(&v))
        BAD("duplicate field \"%s\"", key);
    if (v.kind == F_ABSENT)
        return CM_ERR_NONE;
    if (v.kind != F_INT || !v.int_ok || v.i < 0)
        BAD("%s must be a non-negative integer", key);
    *has = 1;
    *out = v.i;
    return CM_ERR_NONE;
}

static enum cm_err decode_send(const struct src *s, size_t max_text, struct cm_request *req, char *msg,
                               size_t msglen)
{
    struct fval to, room, text;
    enum cm_err e;
    src_get(s, "to", &to);
    src_get(s, "room", &room);
    if (dup_field(&to) || dup_field(&room))
        BAD("duplicate field \"%s\"", dup_field(&to) ? "to" : "room");
    if ((to.kind == F_ABSENT) == (room.kind == F_ABSENT))
        BAD("send needs exactly one of to (a user) or room");
    if (to.kind != F_ABSENT && (e = get_name(s, "to", 0, &req->to, msg, msglen)) != CM_ERR_NONE)
        return e;
    if (room.kind != F_ABSENT && (e = get_name(s, "room", 1, &req->room, msg, msglen)) != CM_ERR_NONE)
        return e;

    src_get(s, "text", &text);
    if (dup_field(&text))
        BAD("duplicate field \"text\"");
    if (text.kind == F_ABSENT)
        BAD("text is required");
    if (text.kind != F_STR)
        BAD("text must be a string");
    if (text.len == 0)
        BAD("text must not be empty");
    if (text.len > max_text) {
        snprintf(msg, msglen, "text is %zu bytes; the limit is %zu", text.len, max_text);
        return CM_ERR_TOO_LARGE;
    }
    if (!cm_utf8_valid((const unsigned char *)text.p, text.len))
        BAD("text must be valid UTF-8");
    req->text.p = text.p, req->text.len = text.len;
    return CM_ERR_NONE;
}

static enum cm_err decode_history(const struct src *s, struct cm_request *req, char *msg, size_t msglen)
{
    struct fval conv, limit;
    char a[CM_USER_MAX + 1], b[CM_USER_MAX + 1];
    enum cm_err e;

    src_get(s, "conv", &conv);
    if (dup_field(&conv))
        BAD("duplicate field \"conv\"");
    if (conv.kind == F_ABSENT)
        BAD("conv is required");
    if (conv.kind != F_STR || cm_conv_parse(conv.p, conv.len, a, b) == CM_CONV_INVALID)
        BAD("conv must be room:<room> or dm:<user>:<user> (the two users in byte order)");
    req->conv.p = conv.p, req->conv.len = conv.len;

    if ((e = get_count(s, "after", &req->has_after, &req->after, msg, msglen)) != CM_ERR_NONE ||
        (e = get_count(s, "before", &req->has_before, &req->before, msg, msglen)) != CM_ERR_NONE)
        return e;
    if (req->has_after && req->has_before)
        BAD("give after or before, not both");

    req->limit = CM_HISTORY_LIMIT_DEFAULT;
    src_get(s, "limit", &limit);
    if (dup_field(&limit))
        BAD("duplicate field \"limit\"");
    if (limit.kind != F_ABSENT) {
        if (limit.kind != F_INT || (limit.int_ok && limit.i < 1))
            BAD("limit must be an integer from 1 to %d", CM_HISTORY_LIMIT_MAX);
        /* Larger values (even beyond int64) are capped rather than refused. */
        req->limit = !limit.int_ok || limit.i > CM_HISTORY_LIMIT_MAX ? CM_HISTORY_LIMIT_MAX : limit.i;
    }
    return CM_ERR_NONE;
}

static enum cm_err decode_presence(const struct src *s, struct cm_request *req, char *msg, size_t msglen)
{
    struct fval users;
    src_get(s, "users", &users);
    if (dup_field(&users))
        BAD("duplicate field \"users\"");
    if (users.kind == F_ABSENT)
        BAD("users is required");
    if (users.kind != F_ARRAY || users.len < 1 || users.len > CM_PRESENCE_USERS_MAX)
        BAD("users must be a list of 1 to %d user ids", CM_PRESENCE_USERS_MAX);
    for (size_t i = 0; i < users.len; i++) {
        struct fval u;
        src_elem(s, &users, i, &u);
        if (u.kind != F_STR || !cm_valid_user(u.p, u.len))
            BAD("users[%zu] must be " NAME_RULE, i);
        req->users[i].p = u.p, req->users[i].len = u.len;
    }
    req->nusers = users.len;
    return CM_ERR_NONE;
}

static enum cm_op op_from(const char *p, size_t len)
{
    static const struct {
        const char *name;
        enum cm_op op;
    } ops[] = {
        {"send", CM_OP_SEND},       {"join", CM_OP_JOIN},   {"leave", CM_OP_LEAVE},
        {"history", CM_OP_HISTORY}, {"convs", CM_OP_CONVS}, {"presence", CM_OP_PRESENCE},
    };
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (strlen(ops[i].name) == len && memcmp(ops[i].name, p, len) == 0)
            return ops[i].op;
    return CM_OP_UNKNOWN;
}

static int valid_id(const struct fval *v)
{
    return v->kind == F_STR && v->len >= 1 && v->len <= CM_REQ_ID_MAX &&
           cm_utf8_valid((const unsigned char *)v->p, v->len);
}

static enum cm_err decode_fields(const struct src *s, size_t max_text, struct cm_request *req, char *msg,
                                 size_t msglen)
{
    struct fval id, op;
    enum cm_err e;

    src_get(s, "id", &id);
    if (dup_field(&id))
        BAD("duplicate field \"id\"");
    if (id.kind != F_ABSENT) {
        if (!valid_id(&id))
            BAD("id must be a string of 1 to %d bytes", CM_REQ_ID_MAX);
        req->id.p = id.p, req->id.len = id.len;
    }

    src_get(s, "op", &op);
    if (dup_field(&op))
        BAD("duplicate field \"op\"");
    if (op.kind == F_ABSENT)
        BAD("op is required");
    if (op.kind != F_STR || (req->op = op_from(op.p, op.len)) == CM_OP_UNKNOWN)
        BAD("unknown op; expected send, join, leave, history, convs or presence");

    switch (req->op) {
    case CM_OP_SEND: return decode_send(s, max_text, req, msg, msglen);
    case CM_OP_JOIN:
    case CM_OP_LEAVE:
        if ((e = get_name(s, "room", 1, &req->room, msg, msglen)) != CM_ERR_NONE)
            return e;
        return CM_ERR_NONE;
    case CM_OP_HISTORY: return decode_history(s, req, msg, msglen);
    case CM_OP_CONVS: return CM_ERR_NONE;
    case CM_OP_PRESENCE: return decode_presence(s, req, msg, msglen);
    case CM_OP_UNKNOWN: break;
    }
    BAD("unknown op");
}

enum cm_err cm_request_decode(enum cm_encoding enc, const char *data, size_t len, size_t max_text_bytes,
                              struct cm_request *req, char *msg, size_t msglen)
{
    struct src s = {enc, NULL, NULL};
    memset(req, 0, sizeof(*req));
    if (msglen > 0)
        msg[0] = '\0';

    if (enc == CM_ENC_JSON) {
        json_error_t jerr;
        json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
        if (root == NULL)
            BAD("malformed JSON: %s", jerr.text);
        req->json_root = root;
        if (!json_is_object(root))
            BAD("a request must be a JSON object");
        s.obj = root;
    } else if (enc == CM_ENC_MSGPACK) {
        char why[128];
        msgpack_unpacked_init(&req->mp);
        req->mp_used = 1;
        if (cm_msgpack_unpack_one(data, len, &req->mp, why, sizeof(why)) < 0)
            BAD("malformed MessagePack: %s", why);
        if (req->mp.data.type != MSGPACK_OBJECT_MAP)
            BAD("a request must be a MessagePack map");
        for (uint32_t i = 0; i < req->mp.data.via.map.size; i++)
            if (req->mp.data.via.map.ptr[i].key.type != MSGPACK_OBJECT_STR)
                BAD("map keys must be strings");
        s.map = &req->mp.data;
    } else {
        BAD("unknown encoding");
    }
    return decode_fields(&s, max_text_bytes, req, msg, msglen);
}

void cm_request_free(struct cm_request *req)
{
    if (req->json_root != NULL) {
        json_decref(req->json_root);
        req->json_root = NULL;
    }
    if (req->mp_used) {
        msgpack_unpacked_destroy(&req->mp);
        req->mp_used = 0;
    }
}

size_t cm_request_peek_id(enum cm_encoding enc, const char *data, size_t len, char *out)
{
    struct fval id;
    size_t n = 0;

    out[0] = '\0';
    if (enc == CM_ENC_JSON) {
        json_t *root = json_loadb(data, len, 0, NULL);
        if (root == NULL)
            return 0;
        from_json(json_is_object(root) ? json_object_get(root, "id") : NULL, &id);
        if (valid_id(&id)) {
            memcpy(out, id.p, id.len);
            n = id.len;
        }
        json_decref(root);
    } else {
        msgpack_unpacked u;
        char why[128];
        msgpack_unpacked_init(&u);
        if (cm_msgpack_unpack_one(data, len, &u, why, sizeof(why)) == 0 && u.data.type == MSGPACK_OBJECT_MAP) {
            for (uint32_t i = 0; i < u.data.via.map.size; i++) {
                const msgpack_object *k = &u.data.via.map.ptr[i].key;
                if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == 2 && memcmp(k->via.str.ptr, "id", 2) == 0) {
                    from_mp(&u.data.via.map.ptr[i].val, &id);
                    if (valid_id(&id)) {
                        memcpy(out, id.p, id.len);
                        n = id.len;
                    }
                    break;
                }
            }
        }
        msgpack_unpacked_destroy(&u);
    }
    out[n] = '\0';
    return n;
}

/* ---- server messages ----------------------------------------------------- */

void cm_pack_strn(msgpack_packer *pk, const char *s, size_t len)
{
    msgpack_pack_str_with_body(pk, s, len);
}

void cm_pack_str(msgpack_packer *pk, const char *s)
{
    cm_pack_strn(pk, s, strlen(s));
}

void cm_pack_error(msgpack_packer *pk, const char *id, size_t idlen, enum cm_err code, const char *message)
{
    msgpack_pack_map(pk, id != NULL ? 4 : 3);
    cm_pack_str(pk, "op");
    cm_pack_str(pk, "error");
    if (id != NULL) {
        cm_pack_str(pk, "id");
        cm_pack_strn(pk, id, idlen);
    }
    cm_pack_str(pk, "code");
    cm_pack_str(pk, cm_err_code(code));
    cm_pack_str(pk, "message");
    cm_pack_str(pk, message ? message : "");
}

/* NULL for anything JSON cannot carry (bin, ext, non-string keys, integers
 * beyond int64, invalid UTF-8, non-finite floats) or on out of memory.
 * Depth is bounded by msgpack-c's own nesting limit. */
static json_t *to_json(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return json_null();
    case MSGPACK_OBJECT_BOOLEAN: return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return o->via.u64 <= (uint64_t)INT64_MAX ? json_integer((json_int_t)o->via.u64) : NULL;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR: return json_stringn(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; a != NULL && i < o->via.array.size; i++) {
            json_t *v = to_json(&o->via.array.ptr[i]);
            if (v == NULL || json_array_append_new(a, v) < 0) {
                json_decref(a);
                a = NULL;
            }
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; m != NULL && i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            json_t *v = k->type == MSGPACK_OBJECT_STR ? to_json(&o->via.map.ptr[i].val) : NULL;
            /* json_object_setn_new checks the key is UTF-8 and consumes v even on failure. */
            if (v == NULL || json_object_setn_new(m, k->via.str.ptr, k->via.str.size, v) < 0) {
                json_decref(m);
                m = NULL;
            }
        }
        return m;
    }
    default: return NULL;
    }
}

static int append_sbuffer(const char *buffer, size_t size, void *data)
{
    return msgpack_sbuffer_write(data, buffer, size) == 0 ? 0 : -1;
}

int cm_msgpack_to_json(const char *data, size_t len, msgpack_sbuffer *out)
{
    msgpack_unpacked u;
    char why[128];
    size_t start = out->size;
    int rc = -1;

    msgpack_unpacked_init(&u);
    if (cm_msgpack_unpack_one(data, len, &u, why, sizeof(why)) == 0) {
        json_t *root = to_json(&u.data);
        /* Streamed straight into out: no intermediate copy of the text. */
        if (root != NULL && json_dump_callback(root, append_sbuffer, out, JSON_ENCODE_ANY | JSON_COMPACT) == 0)
            rc = 0;
        json_decref(root);
    }
    msgpack_unpacked_destroy(&u);
    if (rc < 0)
        out->size = start; /* nothing half-written is left behind */
    return rc;
}
