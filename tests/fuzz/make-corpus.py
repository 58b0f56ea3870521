#!/usr/bin/python3
"""make-corpus.py: writes the seed corpora of tests/fuzz/corpus/<target>/.

The seeds are small real-looking inputs, valid ones and edge cases. They are
committed; this script is how they were made (the JWT seeds must be signed
with the targets' key, "fuzz-secret"). Re-run it after changing a seed:
    /usr/bin/python3 tests/fuzz/make-corpus.py
It only adds and overwrites its own files (seed-*), never the regression
inputs (crash-*) a finding added.
"""
import base64
import hashlib
import hmac
import json
import os

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = b"fuzz-secret"
EXP = 4102444800  # 2100-01-01: valid at the targets' fixed clock
NOW = 1800000000


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(payload, header=None, key=KEY):
    h = b64u(json.dumps(header or {"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    p = b64u(payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode())
    sig = hmac.new(key, (h + "." + p).encode(), hashlib.sha256).digest()
    return h + "." + p + "." + b64u(sig)


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def mp(obj):
    return msgpack.packb(obj, use_bin_type=True)


KEY_WS = "dGhlIHNhbXBsZSBub25jZQ=="
TOKEN = jwt({"sub": "alice", "exp": EXP})


def upgrade(target="/ws", extra="", host="chat.example.com"):
    return ("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n") % (target, host, KEY_WS, extra)


# ---- fuzz_http -------------------------------------------------------------
H = "fuzz_http"
write(H, "upgrade", upgrade())
write(H, "healthz", "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n")
write(H, "http10", "GET /metrics HTTP/1.0\r\n\r\n")
write(H, "lf-only", "GET /ws?user=alice HTTP/1.1\nHost: a\n\n")
write(H, "absolute-form", "GET http://chat.example.com:8080/ws?token=abc#frag HTTP/1.1\r\nHost: chat.example.com\r\n\r\n")
write(H, "query", "GET /ws?user=al%69ce&token=a+b%2Fc&x HTTP/1.1\r\nHost: h\r\n\r\n")
write(H, "post-body", "POST /ws HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello")
write(H, "chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
write(H, "two-hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
write(H, "obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-Long: one\r\n two\r\n\r\n")
write(H, "space-before-colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n")
write(H, "empty-value", "GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Blank:   \t \r\n\r\n")
write(H, "ctl-in-value", "GET / HTTP/1.1\r\nHost: a\x01b\r\n\r\n")
write(H, "many-headers", "GET / HTTP/1.1\r\nHost: a\r\n" + "".join("X-H%d: %d\r\n" % (i, i) for i in range(66)) + "\r\n")
write(H, "http2", "GET / HTTP/2.0\r\nHost: a\r\n\r\n")
write(H, "double-space", "GET  /ws HTTP/1.1\r\nHost: a\r\n\r\n")
write(H, "options-star", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")
write(H, "utf8-path", "GET /w\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n".encode("latin-1"))
write(H, "request-line-max", "GET /ws?token=%s HTTP/1.1\r\nHost: a\r\n\r\n" % ("t" * (6144 - 30)))
write(H, "request-line-414", "GET /ws?token=%s HTTP/1.1\r\nHost: a\r\n\r\n" % ("t" * 6144))
write(H, "incomplete", "GET /ws HTTP/1.1\r\nHost: a\r\n")

# ---- fuzz_handshake ----------------------------------------------------------
S = "fuzz_handshake"
write(S, "jwt-bearer", upgrade(extra="Authorization: Bearer %s\r\nSec-WebSocket-Protocol: chatmi.v1.json\r\n" % TOKEN))
write(S, "jwt-old-key", upgrade(extra="Authorization: Bearer %s\r\n" % jwt({"sub": "carol", "exp": EXP}, key=b"fuzz-secret-old")))
write(S, "long-request-line", upgrade("/ws?token=" + "x" * 6200))
write(S, "jwt-query", upgrade("/ws?token=" + TOKEN, "Origin: https://chat.example.com\r\n"))
write(S, "msgpack", upgrade("/ws?user=bob", "Sec-WebSocket-Protocol: foo, chatmi.v1.msgpack\r\n"))
write(S, "none-user", upgrade("/ws?user=alice"))
write(S, "bad-origin", upgrade("/ws?user=alice", "Origin: https://evil.example\r\n"))
write(S, "two-origins", upgrade("/ws?user=a", "Origin: https://chat.example.com\r\nOrigin: https://chat.example.com\r\n"))
write(S, "version-8", upgrade().replace("Version: 13", "Version: 8"))
write(S, "bad-key", upgrade().replace(KEY_WS, "short=="))
write(S, "unknown-subproto", upgrade("/ws?user=a", "Sec-WebSocket-Protocol: chat, superchat\r\n"))
write(S, "expired", upgrade(extra="Authorization: Bearer %s\r\n" % jwt({"sub": "alice", "exp": NOW - 100})))
write(S, "nbf-future", upgrade(extra="Authorization: Bearer %s\r\n" % jwt({"sub": "alice", "exp": EXP, "nbf": NOW + 1000})))
write(S, "bad-sub", upgrade(extra="Authorization: Bearer %s\r\n" % jwt({"sub": "a/b", "exp": EXP})))
write(S, "alg-none", upgrade(extra="Authorization: Bearer %s.\r\n" % ".".join(jwt({"sub": "alice", "exp": EXP}, {"alg": "none"}).split(".")[:2])))
write(S, "two-auth", upgrade(extra="Authorization: Bearer %s\r\nAuthorization: Bearer %s\r\n" % (TOKEN, TOKEN)))
write(S, "basic-auth", upgrade(extra="Authorization: Basic YWxpY2U6c2VjcmV0\r\n"))
write(S, "post", upgrade().replace("GET", "POST"))
write(S, "conn-list", upgrade("/ws?user=a").replace("Connection: Upgrade", "Connection: keep-alive, Upgrade"))

# ---- fuzz_frame (first byte: chunk size) ---------------------------------------
F = "fuzz_frame"
text = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"           # masked "Hello"
frag = b"\x01\x83\x00\x00\x00\x00abc" + b"\x89\x80\x00\x00\x00\x00" + b"\x80\x81\x00\x00\x00\x00d"
write(F, "text", b"\x00" + text)
write(F, "fragmented-with-ping", b"\x03" + frag)
write(F, "len126", b"\x05" + b"\x82\xfe\x00\x80\x01\x02\x03\x04" + b"x" * 128)
write(F, "len127", b"\x07" + b"\x82\xff" + (300).to_bytes(8, "big") + b"\x01\x02\x03\x04" + b"y" * 300)
write(F, "huge-len", b"\x01" + b"\x82\xff\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00")
write(F, "close", b"\x02" + b"\x88\x82\x00\x00\x00\x00\x03\xe8")
write(F, "split-header", b"\x00" + b"\x81")

# ---- fuzz_jwt -----------------------------------------------------------------------
J = "fuzz_jwt"
write(J, "valid", TOKEN)
write(J, "valid-nbf", jwt({"sub": "bob", "exp": EXP, "nbf": NOW - 10, "iat": NOW - 10}))
write(J, "float-exp", jwt({"sub": "bob", "exp": 4.1e9}))
write(J, "expired", jwt({"sub": "alice", "exp": 1}))
write(J, "no-exp", jwt({"sub": "alice"}))
write(J, "wrong-key", jwt({"sub": "alice", "exp": EXP}, key=b"other"))
write(J, "alg-none", jwt({"sub": "alice", "exp": EXP}, {"alg": "none", "typ": "JWT"}).rsplit(".", 1)[0] + ".")
write(J, "alg-hs512", jwt({"sub": "alice", "exp": EXP}, {"alg": "HS512"}))
write(J, "padded", TOKEN + "==")
write(J, "two-dots", "a.b")
write(J, "four-parts", TOKEN + ".x")
write(J, "dup-alg", b64u(b'{"alg":"HS256","alg":"none"}') + "." + TOKEN.split(".", 1)[1])

# ---- fuzz_jwt_payload (the claims, signed by the target) -------------------------------
P = "fuzz_jwt_payload"
write(P, "valid", '{"sub":"alice","exp":4102444800}')
write(P, "nbf", '{"sub":"alice","exp":4102444800,"nbf":1799999990}')
write(P, "nbf-future", '{"sub":"alice","exp":4102444800,"nbf":1900000000}')
write(P, "float", '{"sub":"a.b-c_d","exp":4.1e9,"nbf":1.5}')
write(P, "huge-exp", '{"sub":"alice","exp":1e300}')
write(P, "neg-exp", '{"sub":"alice","exp":-9223372036854775808}')
write(P, "sub-number", '{"sub":42,"exp":4102444800}')
write(P, "sub-long", '{"sub":"%s","exp":4102444800}' % ("x" * 65))
write(P, "sub-nul", '{"sub":"al\\u0000ice","exp":4102444800}')
write(P, "dup-sub", '{"sub":"alice","sub":"bob","exp":4102444800}')
write(P, "aud-string", '{"sub":"alice","exp":4102444800,"aud":"chatmi","iss":"https://auth.example.com"}')
write(P, "aud-wrong", '{"sub":"alice","exp":4102444800,"aud":["other"],"iss":"https://auth.example.com"}')
write(P, "array", '["sub","exp"]')
write(P, "aud-iss", '{"sub":"alice","exp":4102444800,"aud":["chatmi"],"iss":"https://auth.example.com","jti":"x1"}')

# ---- fuzz_request_json, fuzz_request_msgpack ---------------------------------------------
REQS = {
    "send-room": {"op": "send", "id": "c1", "room": "lobby", "text": "hello \u00e9\u4e16"},
    "send-dm": {"op": "send", "id": "c2", "to": "bob", "text": "hi"},
    "send-both": {"op": "send", "to": "bob", "room": "lobby", "text": "x"},
    "send-long": {"op": "send", "room": "r", "text": "x" * 101},
    "send-empty": {"op": "send", "room": "r", "text": ""},
    "join": {"op": "join", "id": "j", "room": "general"},
    "leave": {"op": "leave", "room": "general"},
    "history": {"op": "history", "id": "h1", "conv": "room:lobby", "before": 12, "limit": 20},
    "history-dm": {"op": "history", "conv": "dm:alice:bob", "after": 0, "limit": 9999},
    "history-dm-order": {"op": "history", "conv": "dm:bob:alice"},
    "history-both": {"op": "history", "conv": "room:x", "after": 1, "before": 2},
    "history-neg": {"op": "history", "conv": "room:x", "limit": -1},
    "convs": {"op": "convs", "id": "x"},
    "presence": {"op": "presence", "id": "p", "users": ["alice", "bob", "carol"]},
    "presence-bad": {"op": "presence", "users": ["alice", 3]},
    "unknown-op": {"op": "dance", "id": "d"},
    "id-long": {"op": "convs", "id": "i" * 65},
    "max": {"op": "send", "id": "i" * 64, "to": "u" * 64, "text": "t" * 100},
    "max-room": {"op": "join", "id": "\u00e9" * 32, "room": "r" * 64},
    "history-max": {"op": "history", "conv": "dm:%s:%s" % ("a" * 64, "b" * 64), "limit": 200},
    "presence-max": {"op": "presence", "users": ["u%d" % i for i in range(100)]},
    "extra-fields": {"op": "join", "room": "r", "v": 2, "meta": {"a": [1, 2.5, None, True]}},
}
for name, req in REQS.items():
    write("fuzz_request_json", name, json.dumps(req, ensure_ascii=False, separators=(",", ":")))
    write("fuzz_request_msgpack", name, mp(req))
write("fuzz_request_json", "dup-key", '{"op":"join","room":"a","room":"b"}')
write("fuzz_request_json", "not-object", '[1,2]')
write("fuzz_request_json", "deep", "[" * 300 + "]" * 300)
write("fuzz_request_json", "bad-utf8", b'{"op":"send","room":"r","text":"\xc3\x28"}')
write("fuzz_request_json", "big-int", '{"op":"history","conv":"room:r","limit":123456789012345678901234567890}')
write("fuzz_request_msgpack", "dup-key", b"\x83\xa2op\xa4join\xa4room\xa1a\xa4room\xa1b")
write("fuzz_request_msgpack", "int-key", b"\x82\xa2op\xa5convs\x01\x02")
write("fuzz_request_msgpack", "bin-text", b"\x83\xa2op\xa4send\xa4room\xa1r\xa4text\xc4\x02hi")
write("fuzz_request_msgpack", "u64-limit", b"\x83\xa2op\xa7history\xa4conv\xa6room:r\xa5limit\xcf\xff\xff\xff\xff\xff\xff\xff\xff")
write("fuzz_request_msgpack", "huge-array", b"\x82\xa2op\xa8presence\xa5users\xdd\xff\xff\xff\xff")
write("fuzz_request_msgpack", "trailing", mp({"op": "convs"}) + b"\xc0")
write("fuzz_request_msgpack", "deep", b"\x91" * 100 + b"\xc0")

# ---- fuzz_envelope ---------------------------------------------------------------------
E = "fuzz_envelope"
env = {"v": 1, "u": "alice", "s": "g0123456789ab.42", "n": "g0123456789ab", "t": 1732300000123,
       "e": "json", "p": b'{"op":"convs"}'}
write(E, "envelope", mp(env))
write(E, "envelope-msgpack", mp(dict(env, e="msgpack", p=mp({"op": "convs"}))))
write(E, "envelope-v2", mp(dict(env, v=2)))
write(E, "envelope-str-payload", mp(dict(env, p='{"op":"convs"}')))
write(E, "envelope-extra", mp(dict(env, x=[1, 2, 3])))
write(E, "envelope-missing", mp({k: v for k, v in env.items() if k != "u"}))
# At the limits (64-byte user, session and node): one byte more must fail.
write(E, "envelope-max", mp(dict(env, u="u" * 64, s="s" * 64, n="n" * 64)))
write(E, "envelope-session-65", mp(dict(env, s="s" * 65)))
write(E, "delivery-session-max", mp(["s" * 64, b"\x80"]))
write(E, "fanout-max", mp({"v": 1, "c": "dm:%s:%s" % ("a" * 64, "b" * 64), "r": ["a" * 64, "b" * 64], "m": b"\x80"}))
write(E, "delivery-joined", mp(["s1", mp({"op": "ack", "id": "j"}), ["+", "room:lobby", 41]]))
write(E, "delivery-left", mp([None, mp({"op": "ack"}), ["-", "room:lobby", 0]]))
write(E, "delivery-member-dm", mp([None, b"\x80", ["+", "dm:alice:bob", 1]]))
write(E, "fanout-ack", mp({"v": 1, "c": "room:lobby", "r": ["bob"], "m": b"\x80",
                           "a": ["alice", mp(["s1", mp({"op": "ack", "id": "c1", "seq": 9})])]}))
write(E, "delivery-session", mp(["g0123456789ab.42", mp({"op": "ack", "id": "c1", "seq": 7})]))
write(E, "delivery-all", mp([None, mp({"op": "message", "conv": "room:lobby", "from": "bob", "text": "hi", "seq": 8, "ts": 1732300000123})]))
write(E, "delivery-empty", mp([None, b""]))
write(E, "fanout", mp({"v": 1, "c": "room:lobby", "r": ["alice", "bob"], "m": mp({"op": "message", "text": "x"})}))
write(E, "fanout-dm", mp({"v": 1, "c": "dm:alice:bob", "r": ["alice", "bob"], "m": b"\x80"}))
write(E, "fanout-bad-recipient", mp({"v": 1, "c": "room:x", "r": ["alice", "b b"], "m": b"\x80"}))
write(E, "fanout-huge-count", b"\x84\xa1v\x01\xa1c\xa6room:x\xa1r\xdd\x00\x0f\xff\xff\xa1m\xc4\x01\x80")

# ---- fuzz_msgpack_json --------------------------------------------------------------------
M = "fuzz_msgpack_json"
write(M, "message", mp({"op": "message", "conv": "room:lobby", "from": "bob", "text": "h\u00e9llo \"q\" \\ \n\u2028", "seq": 8, "ts": 1732300000123}))
write(M, "ack", mp({"op": "ack", "id": "c1", "seq": 1}))
write(M, "history", mp({"op": "history", "id": "h", "messages": [{"seq": 1, "text": "a"}, {"seq": 2, "text": "b"}], "more": False}))
write(M, "scalars", mp([None, True, False, 0, -1, 2**63 - 1, -2**63, 1.5, -0.0, "", "\u0000"]))
write(M, "u64-max", mp(2**64 - 1))
write(M, "float32", b"\xca\x3f\xc0\x00\x00")
write(M, "nan", b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00")
write(M, "inf", b"\xcb\x7f\xf0\x00\x00\x00\x00\x00\x00")
write(M, "bin", mp({"b": b"\x00\x01"}))
write(M, "ext", b"\xd4\x01\x02")
write(M, "int-key", b"\x81\x01\x02")
write(M, "bad-utf8", b"\xa2\xc3\x28")
write(M, "dup-key", b"\x82\xa1a\x01\xa1a\x02")
write(M, "nul-key", b"\x81\xa3a\x00b\x01")
write(M, "deep", b"\x91" * 40 + b"\xc0")
write(M, "str8", b"\xd9\x03abc")
