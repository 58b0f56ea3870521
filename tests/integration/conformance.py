#!/usr/bin/env python3
"""chatmi contract conformance check (sections 2-6), independent of the C
test client: python3-websockets (10.x asyncio API) and python3-msgpack.

Against a running deployment (auth none, so ?user= names the user):
    conformance.py --url ws://127.0.0.1:8080 [--max-message-bytes 65536]
Or start a private stack (redis-server, chatmi-gateway, chatmi-worker) on
free loopback ports and check it:
    conformance.py --spawn      (programs from CHATMI_GATEWAY_BIN,
                                 CHATMI_WORKER_BIN, REDIS_SERVER)

Every check runs with bounded waits; the last line is "N passed, N failed"
and the exit status is 1 when anything failed.
"""

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import string
import sys
import tempfile
import time
import traceback

import websockets
import websockets.exceptions

try:
    import msgpack
except ImportError:  # the msgpack checks are skipped (and said so)
    msgpack = None

WAIT = 5.0 * float(os.environ.get("CHATMI_IT_TIMEOUT_SCALE", "1") or 1)
JSON_PROTO = "chatmi.v1.json"
MP_PROTO = "chatmi.v1.msgpack"


class CheckFailed(Exception):
    pass


def expect(cond, msg):
    if not cond:
        raise CheckFailed(msg)


# ---- a session -------------------------------------------------------------------


class Session:
    """One WebSocket session; keeps messages not yet wanted in a backlog."""

    def __init__(self, ws, msgpack_mode, name):
        self.ws = ws
        self.mp = msgpack_mode
        self.name = name
        self.backlog = []
        self.hello = None
        self.frames = []  # "text"/"binary" of every message received

    def decode(self, raw):
        if isinstance(raw, bytes):
            self.frames.append("binary")
            expect(msgpack is not None, "binary frame but no msgpack module")
            return msgpack.unpackb(raw, raw=False)
        self.frames.append("text")
        return json.loads(raw)

    async def send(self, req):
        if self.mp:
            await self.ws.send(msgpack.packb(req, use_bin_type=True))
        else:
            await self.ws.send(json.dumps(req))

    async def recv(self, timeout=WAIT):
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        return self.decode(raw)

    async def wait(self, pred, timeout=WAIT, what="a message"):
        for i, m in enumerate(self.backlog):
            if pred(m):
                return self.backlog.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CheckFailed(f"{self.name}: no {what} within {timeout:.1f} s; backlog {self.backlog[-5:]}")
            try:
                m = await self.recv(left)
            except asyncio.TimeoutError:
                continue
            if pred(m):
                return m
            self.backlog.append(m)

    async def reply(self, id_, timeout=WAIT):
        return await self.wait(lambda m: m.get("id") == id_, timeout, f"reply to id {id_!r}")

    async def request(self, req, timeout=WAIT):
        await self.send(req)
        return await self.reply(req["id"], timeout)

    async def ok(self, req, op):
        r = await self.request(req)
        expect(r.get("op") == op, f"{self.name}: {req} -> expected op {op!r}, got {r}")
        return r

    async def err(self, req, code):
        r = await self.request(req)
        expect(r.get("op") == "error" and r.get("code") == code, f"{self.name}: {req} -> expected error {code}, got {r}")
        expect(isinstance(r.get("message"), str), f"error without a message: {r}")
        return r

    async def delivery(self, conv, seq, timeout=WAIT):
        return await self.wait(lambda m: m.get("op") == "message" and m.get("conv") == conv and m.get("seq") == seq,
                               timeout, f"delivery {conv} #{seq}")

    def count(self, pred):
        return sum(1 for m in self.backlog if pred(m))

    async def close(self):
        try:
            await asyncio.wait_for(self.ws.close(), WAIT)
        except Exception:
            pass


class Checker:
    def __init__(self, url, max_message_bytes):
        self.url = url.rstrip("/")
        host_port = self.url.split("://", 1)[1]
        self.host, port = host_port.rsplit(":", 1)
        self.port = int(port)
        self.max_message_bytes = max_message_bytes
        self.tag = "".join(random.choice(string.ascii_lowercase) for _ in range(6))
        self.passed = 0
        self.failed = 0
        self.sessions = []
        self.check_no = 0

    def user(self, name):
        """A user id private to this run and this check."""
        return f"{name}-{self.tag}{self.check_no}"

    async def open(self, user, proto=None, expect_hello=True):
        kw = {"ping_interval": None, "open_timeout": WAIT, "close_timeout": 2, "max_size": 16 * 1024 * 1024}
        if proto is not None:
            kw["subprotocols"] = [proto]
        ws = await websockets.connect(f"{self.url}/ws?user={user}", **kw)
        s = Session(ws, ws.subprotocol == MP_PROTO, f"{user}/{proto or 'default'}")
        self.sessions.append(s)
        if expect_hello:
            h = await s.recv()
            expect(h.get("op") == "hello", f"first message is not a hello: {h}")
            s.hello = h
        return s

    async def handshake_status(self, path, headers=None, protos=None):
        """HTTP status of a WebSocket handshake attempt (101 when it opened)."""
        try:
            ws = await websockets.connect(f"{self.url}{path}", extra_headers=headers or {}, subprotocols=protos,
                                          open_timeout=WAIT, ping_interval=None)
        except websockets.exceptions.InvalidStatusCode as e:
            return e.status_code
        await ws.close()
        return 101

    async def http(self, raw, wait_close=False):
        """Sends raw request bytes; returns (status, headers, body, closed):
        closed when the server closed the connection (waited for, up to the
        deadline, when wait_close is set)."""
        reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), WAIT)
        try:
            writer.write(raw)
            await writer.drain()
            data = b""
            deadline = time.monotonic() + WAIT
            while b"\r\n\r\n" not in data and time.monotonic() < deadline:
                chunk = await asyncio.wait_for(reader.read(65536), max(0.01, deadline - time.monotonic()))
                if not chunk:
                    break
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1]) if lines and lines[0].startswith("HTTP/1.") else 0
            hdrs = {}
            for l in lines[1:]:
                k, _, v = l.partition(":")
                hdrs[k.strip().lower()] = v.strip()
            want = int(hdrs.get("content-length", "-1"))
            closed = False
            while want < 0 or len(body) < want:
                try:
                    chunk = await asyncio.wait_for(reader.read(65536), max(0.01, deadline - time.monotonic()))
                except asyncio.TimeoutError:
                    break
                if not chunk:
                    closed = True
                    break
                body += chunk
            while wait_close and not closed and time.monotonic() < deadline:
                try:
                    chunk = await asyncio.wait_for(reader.read(65536), max(0.01, deadline - time.monotonic()))
                except asyncio.TimeoutError:
                    break
                closed = not chunk
            return status, hdrs, body, closed
        finally:
            writer.close()

    async def run(self, name, fn):
        self.check_no += 1
        try:
            await asyncio.wait_for(fn(), 60)
            self.passed += 1
            print(f"PASS {name}", flush=True)
        except CheckFailed as e:
            self.failed += 1
            print(f"FAIL {name}: {e}", flush=True)
        except asyncio.TimeoutError:
            self.failed += 1
            print(f"FAIL {name}: timed out", flush=True)
        except Exception as e:  # a crash of the check is a failure too
            self.failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
            traceback.print_exc(limit=3)
        finally:
            for s in self.sessions:
                await s.close()
            self.sessions = []

    # ---- section 2 ---------------------------------------------------------------

    async def check_http(self):
        for path, want in (("/healthz", 200), ("/readyz", 200), ("/metrics", 200), ("/", 200), ("/nope", 404)):
            st, hdrs, body, _ = await self.http(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            expect(st == want, f"GET {path}: {st}, expected {want}")
            if path == "/metrics":
                expect(hdrs.get("content-type", "").startswith("text/plain"), f"/metrics content type {hdrs}")
                samples = [l for l in body.decode().splitlines() if l and not l.startswith("#")]
                expect(samples and all(len(l.rsplit(" ", 1)) == 2 for l in samples), "/metrics is not Prometheus text")
        st, _, _, closed = await self.http(b"NONSENSE\r\n\r\n", wait_close=True)
        expect(st == 400, f"malformed request: {st}, expected 400")
        expect(closed, "malformed request: the connection was not closed")

    # ---- section 3 ---------------------------------------------------------------

    async def check_hello(self):
        a = await self.open(self.user("alice"))
        h = a.hello
        expect(h.get("user") == self.user("alice"), f"hello user: {h}")
        expect(isinstance(h.get("session"), str) and h["session"], f"hello session: {h}")
        expect(isinstance(h.get("node"), str) and h["node"], f"hello node: {h}")
        expect(isinstance(h.get("heartbeat"), (int, float)) and h["heartbeat"] > 0, f"hello heartbeat: {h}")
        expect(a.ws.subprotocol is None, f"no subprotocol offered, yet {a.ws.subprotocol} selected")
        expect(a.frames == ["text"], "JSON is the default and travels in text frames")
        a2 = await self.open(self.user("alice"))
        expect(a2.hello["session"] != h["session"], "two sessions share a session id")

    async def check_handshake(self):
        st = await self.handshake_status("/ws?user=bad%20user")
        expect(st == 400, f"invalid user id: {st}, expected 400")
        st = await self.handshake_status("/ws?user=" + "u" * 65)
        expect(st == 400, f"65-character user id: {st}, expected 400")
        st = await self.handshake_status("/ws")
        expect(st == 400, f"no user: {st}, expected 400")
        st = await self.handshake_status(f"/ws?user={self.user('a')}", protos=["x.unknown"])
        expect(st == 400, f"unknown subprotocol only: {st}, expected 400")
        s = await self.open(self.user("a"), JSON_PROTO)
        expect(s.ws.subprotocol == JSON_PROTO, f"json subprotocol not echoed: {s.ws.subprotocol}")

    async def check_msgpack(self):
        expect(msgpack is not None, "python3-msgpack is not installed (apt-get install python3-msgpack)")
        a = await self.open(self.user("alice"), MP_PROTO)
        expect(a.ws.subprotocol == MP_PROTO, f"msgpack not selected: {a.ws.subprotocol}")
        expect(a.frames == ["binary"], "msgpack hello must be a binary frame")
        b = await self.open(self.user("bob"))
        ack = await a.ok({"op": "send", "id": "m1", "to": self.user("bob"), "text": "über msgpack"}, "ack")
        m = await b.delivery(ack["conv"], ack["seq"])
        expect(m["text"] == "über msgpack" and m["msg"] == ack["msg"], f"{m} vs {ack}")
        expect(b.frames[-1] == "text", "the JSON session got a binary frame")
        await b.ok({"op": "send", "id": "m2", "to": self.user("alice"), "text": "back"}, "ack")
        m = await a.delivery(ack["conv"], ack["seq"] + 1)
        expect(m["from"] == self.user("bob"), f"{m}")
        expect(set(a.frames) == {"binary"}, "the msgpack session got a text frame")
        await a.err({"op": "nope", "id": "m3"}, "bad_request")
        await a.ws.send(b"\xc1\xc1")
        e = await a.wait(lambda x: x.get("op") == "error", what="error for undecodable MessagePack")
        expect(e["code"] == "bad_request", f"{e}")

    # ---- sections 4 and 5 -------------------------------------------------------------

    def dm(self, x, y):
        lo, hi = sorted([x, y], key=lambda s: s.encode())
        return f"dm:{lo}:{hi}"

    async def check_dm(self):
        alice, bob = self.user("alice"), self.user("Bob")  # 'B' < 'a': byte order, not case-insensitive
        a1 = await self.open(alice)
        a2 = await self.open(alice)
        b = await self.open(bob)
        conv = self.dm(alice, bob)
        expect(conv == f"dm:{bob}:{alice}", "test setup")
        ack = await a1.ok({"op": "send", "id": "1", "to": bob, "text": "hi"}, "ack")
        expect(ack.get("id") == "1" and ack.get("conv") == conv and ack.get("seq") == 1, f"ack: {ack}")
        expect(isinstance(ack.get("msg"), str) and ack["msg"], f"ack msg: {ack}")
        expect(isinstance(ack.get("ts"), int) and abs(ack["ts"] - time.time() * 1000) < 60000, f"ack ts: {ack}")
        for s in (b, a1, a2):
            m = await s.delivery(conv, 1)
            for k, v in (("from", alice), ("text", "hi"), ("msg", ack["msg"]), ("ts", ack["ts"])):
                expect(m.get(k) == v, f"{s.name}: delivery {k}: {m}")
        # acks go to the requesting session only
        await a2.ok({"op": "convs", "id": "sync"}, "convs")
        expect(a2.count(lambda m: m.get("id") == "1") == 0, "another session of the sender got the ack")

    async def check_rooms(self):
        room = f"r-{self.tag}{self.check_no}"
        conv = f"room:{room}"
        a = await self.open(self.user("alice"))
        b = await self.open(self.user("bob"))
        j = await a.ok({"op": "join", "id": "3", "room": room}, "joined")
        expect(j == {"op": "joined", "id": "3", "room": room, "conv": conv}, f"joined: {j}")
        await b.err({"op": "send", "id": "x", "room": room, "text": "no"}, "forbidden")
        await b.err({"op": "history", "id": "y", "conv": conv}, "forbidden")
        await a.err({"op": "history", "id": "z", "conv": f"room:nothing-{self.tag}"}, "not_found")
        await b.ok({"op": "join", "id": "4", "room": room}, "joined")
        ack = await a.ok({"op": "send", "id": "5", "room": room, "text": "hello room"}, "ack")
        expect(ack["conv"] == conv and ack["seq"] == 1, f"{ack}")
        for s in (a, b):
            m = await s.delivery(conv, 1)
            expect(m["from"] == self.user("alice") and m["text"] == "hello room", f"{m}")
        l = await b.ok({"op": "leave", "id": "6", "room": room}, "left")
        expect(l == {"op": "left", "id": "6", "room": room}, f"left: {l}")
        await b.err({"op": "send", "id": "7", "room": room, "text": "gone"}, "forbidden")

    async def send_many(self, s, to, n, prefix):
        """Sends n DMs, pipelined in windows, retrying rate_limited ones."""
        acks = {}
        pending = list(range(1, n + 1))
        for _ in range(50):
            if not pending:
                break
            retry = []
            for i in range(0, len(pending), 20):
                window = pending[i:i + 20]
                for k in window:
                    await s.send({"op": "send", "id": f"{prefix}{k}", "to": to, "text": f"t{k}"})
                for k in window:
                    r = await s.reply(f"{prefix}{k}")
                    if r.get("op") == "error" and r.get("code") == "rate_limited":
                        retry.append(k)
                    else:
                        expect(r.get("op") == "ack", f"send {k}: {r}")
                        acks[r["seq"]] = f"t{k}"
                s.backlog = [m for m in s.backlog if m.get("op") != "message"]
            pending = retry
            if retry:
                await asyncio.sleep(1.0)  # pacing after rate_limited (the server asked for it)
        expect(not pending, f"{len(pending)} sends still rate limited")
        return acks

    async def check_history(self):
        alice, bob = self.user("alice"), self.user("bob")
        a = await self.open(alice)
        conv = self.dm(alice, bob)
        texts = await self.send_many(a, bob, 210, "h")
        expect(sorted(texts) == list(range(1, 211)), "acked seqs are not 1..210")

        async def page(id_, **kw):
            r = await a.ok(dict({"op": "history", "id": id_, "conv": conv}, **kw), "history")
            expect(r.get("conv") == conv, f"{r}")
            return [m["seq"] for m in r["messages"]], r["messages"]

        seqs, msgs = await page("p1", after=0)
        expect(seqs == list(range(1, 51)), f"after 0, default limit 50: {seqs[:3]}..{seqs[-3:]} ({len(seqs)})")
        expect(all(m["text"] == texts[m["seq"]] and m["from"] == alice for m in msgs), "history content")
        seqs, _ = await page("p2", after=100, limit=10)
        expect(seqs == list(range(101, 111)), f"after 100 limit 10: {seqs}")
        seqs, _ = await page("p3", after=0, limit=1000)
        expect(seqs == list(range(1, 201)), f"limit capped at 200: got {len(seqs)}")
        seqs, _ = await page("p4", before=211, limit=5)
        expect(seqs == list(range(206, 211)), f"before 211 limit 5 (ascending): {seqs}")
        seqs, _ = await page("p5", after=210)
        expect(seqs == [], f"after the end: {seqs}")
        c = await self.open(self.user("carol"))
        await c.err({"op": "history", "id": "p6", "conv": conv}, "forbidden")

    async def check_convs(self):
        alice, bob = self.user("alice"), self.user("bob")
        a = await self.open(alice)
        b = await self.open(bob)
        room = f"c-{self.tag}{self.check_no}"
        await a.ok({"op": "send", "id": "1", "to": bob, "text": "x"}, "ack")
        await a.ok({"op": "send", "id": "2", "to": bob, "text": "y"}, "ack")
        await a.ok({"op": "join", "id": "3", "room": room}, "joined")
        await a.ok({"op": "send", "id": "4", "room": room, "text": "z"}, "ack")
        r = await a.ok({"op": "convs", "id": "5"}, "convs")
        got = {c["conv"]: c["last_seq"] for c in r["convs"]}
        expect(got.get(self.dm(alice, bob)) == 2 and got.get(f"room:{room}") == 1, f"alice convs: {got}")
        r = await b.ok({"op": "convs", "id": "6"}, "convs")
        got = {c["conv"]: c["last_seq"] for c in r["convs"]}
        expect(got.get(self.dm(alice, bob)) == 2, f"bob convs: {got}")

    async def check_presence(self):
        alice, bob, nobody = self.user("alice"), self.user("bob"), self.user("nobody")
        a = await self.open(alice)
        b = await self.open(bob)
        r = await a.ok({"op": "presence", "id": "1", "users": [bob, nobody]}, "presence")
        expect(r["users"] == {bob: "online", nobody: "offline"}, f"presence: {r}")
        await b.close()
        deadline = time.monotonic() + 10
        state = None
        i = 0
        while time.monotonic() < deadline:
            i += 1
            r = await a.ok({"op": "presence", "id": f"p{i}", "users": [bob]}, "presence")
            state = r["users"].get(bob)
            if state == "offline":
                break
            await asyncio.sleep(0.1)  # pacing a bounded poll for an eventually consistent state
        expect(state == "offline", f"bob still {state} 10 s after disconnecting")

    async def check_idempotency(self):
        alice, bob = self.user("alice"), self.user("bob")
        a = await self.open(alice)
        b = await self.open(bob)
        conv = self.dm(alice, bob)
        ack1 = await a.ok({"op": "send", "id": "dup", "to": bob, "text": "once"}, "ack")
        await b.delivery(conv, ack1["seq"])
        await a.close()
        a = await self.open(alice)  # a retry after a reconnect
        ack2 = await a.ok({"op": "send", "id": "dup", "to": bob, "text": "once"}, "ack")
        expect((ack2["seq"], ack2["msg"]) == (ack1["seq"], ack1["msg"]), f"retry: {ack1} vs {ack2}")
        ack3 = await a.ok({"op": "send", "id": "next", "to": bob, "text": "sentinel"}, "ack")
        expect(ack3["seq"] == ack1["seq"] + 1, f"the retry consumed a seq: {ack3}")
        await b.delivery(conv, ack3["seq"])
        expect(b.count(lambda m: m.get("msg") == ack1["msg"]) == 0, "the retried message was delivered twice")

    async def check_errors(self):
        a = await self.open(self.user("alice"))
        await a.ws.send("{not json")
        e = await a.wait(lambda m: m.get("op") == "error", what="error for malformed JSON")
        expect(e["code"] == "bad_request", f"{e}")
        await a.err({"op": "fly", "id": "e1"}, "bad_request")
        await a.err({"op": "join", "id": "e2", "room": "no spaces allowed"}, "bad_request")
        await a.err({"op": "send", "id": "e3", "to": self.user("bob")}, "bad_request")
        await a.err({"op": "send", "id": "e4", "to": self.user("bob"), "text": "x" * 4097}, "too_large")
        await a.ws.send(b"\x81\xa2op\xa5convs")
        e = await a.wait(lambda m: m.get("op") == "error", what="error for a binary frame on a JSON session")
        expect(e["code"] == "bad_request", f"{e}")
        await a.ok({"op": "convs", "id": "still-open"}, "convs")

    async def check_1009(self):
        a = await self.open(self.user("alice"))
        b = await self.open(self.user("bob"))
        await a.ws.send(json.dumps({"op": "convs", "id": "big", "pad": "p" * self.max_message_bytes}))
        try:
            while True:
                await asyncio.wait_for(a.ws.recv(), WAIT)
        except websockets.exceptions.ConnectionClosed as e:
            code = e.rcvd.code if e.rcvd is not None else 1006
            expect(code == 1009, f"oversize message: close {code}, expected 1009")
        await b.ok({"op": "convs", "id": "others-fine"}, "convs")

    async def check_1007(self):
        a = await self.open(self.user("alice"))
        # websockets only sends valid text; write the frame below its API
        await a.ws.write_frame(True, 0x1, b'{"op":"convs","id":"\xff\xfe"}')
        try:
            while True:
                await asyncio.wait_for(a.ws.recv(), WAIT)
        except websockets.exceptions.ConnectionClosed as e:
            code = e.rcvd.code if e.rcvd is not None else 1006
            expect(code == 1007, f"invalid UTF-8: close {code}, expected 1007")


CHECKS = ["http", "hello", "handshake", "dm", "rooms", "history", "convs", "presence", "idempotency", "errors",
          "1009", "1007", "msgpack"]


async def run_checks(url, max_message_bytes, only):
    c = Checker(url, max_message_bytes)
    for name in CHECKS:
        if only and name not in only:
            continue
        await c.run(name, getattr(c, f"check_{name}"))
    return c


# ---- a private stack -----------------------------------------------------------------


def free_port():
    for _ in range(200):
        p = random.randint(20000, 31999)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
            return p
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port")


def _die_with_parent():
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Stack:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="chatmi-conf.")
        self.procs = []
        self.drains = []

    async def start(self, name, argv, kind):
        """Starts argv, output into <dir>/<name>.log, and waits for its ready
        line: redis-server's "Ready to accept connections", or chatmi's JSON
        record with "event":"ready" from the process itself (the master)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHATMI_")}
        log = open(os.path.join(self.dir, name + ".log"), "wb")
        p = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                                                 stderr=asyncio.subprocess.STDOUT, env=env, start_new_session=True,
                                                 preexec_fn=_die_with_parent)
        self.procs.append((name, p))

        def ready(line):
            if kind == "redis":
                return b"Ready to accept connections" in line
            try:
                rec = json.loads(line)
            except ValueError:
                return False
            return isinstance(rec, dict) and rec.get("event") == "ready" and rec.get("pid", p.pid) == p.pid

        deadline = time.monotonic() + 2 * WAIT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"{name} not ready in time (log {log.name})")
            line = await asyncio.wait_for(p.stdout.readline(), left)
            if not line:
                raise RuntimeError(f"{name} exited before it was ready (log {log.name})")
            log.write(line)
            log.flush()
            if ready(line):
                break

        async def drain():  # keep reading so the program never blocks on a full pipe
            while True:
                chunk = await p.stdout.read(65536)
                if not chunk:
                    break
                log.write(chunk)
                log.flush()
            log.close()

        self.drains.append(asyncio.ensure_future(drain()))

    async def up(self, max_message_bytes):
        rport = free_port()
        redis = os.environ.get("REDIS_SERVER") or "redis-server"
        await self.start("redis", [redis, "--port", str(rport), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                                   "no", "--dir", self.dir, "--logfile", "", "--daemonize", "no"], "redis")
        url = f"redis://127.0.0.1:{rport}/0"
        gport = free_port()
        gw = os.environ.get("CHATMI_GATEWAY_BIN") or "chatmi-gateway"
        worker = os.environ.get("CHATMI_WORKER_BIN") or "chatmi-worker"
        argv = [gw, "--listen", f"127.0.0.1:{gport}", "--processes", "2", "--redis-url", url, "--auth", "none",
                "--log-format", "json", "--rate-limit", "0", "--user-rate-limit", "0", "--drain-seconds", "0",
                "--max-message-bytes", str(max_message_bytes)]
        if os.environ.get("CHATMI_WWW_DIR"):
            argv += ["--www-dir", os.environ["CHATMI_WWW_DIR"]]
        await self.start("gateway", argv, "json")
        await self.start("worker", [worker, "--redis-url", url, "--log-format", "json"], "json")
        return f"ws://127.0.0.1:{gport}"

    async def down(self):
        for name, p in reversed(self.procs):
            if p.returncode is None:
                try:
                    p.send_signal(signal.SIGTERM)
                    await asyncio.wait_for(p.wait(), 5)
                except (asyncio.TimeoutError, ProcessLookupError):
                    pass
            try:
                os.killpg(p.pid, signal.SIGKILL)  # its group: a gateway's children too
            except (ProcessLookupError, PermissionError):
                pass
            try:
                await asyncio.wait_for(p.wait(), 5)
            except asyncio.TimeoutError:
                pass
        for d in self.drains:
            try:
                await asyncio.wait_for(d, 5)
            except (asyncio.TimeoutError, Exception):
                pass

    def dump_logs(self):
        for name in ("gateway", "worker", "redis"):
            path = os.path.join(self.dir, name + ".log")
            if os.path.exists(path):
                with open(path, "rb") as f:
                    lines = f.read().decode("utf-8", "replace").splitlines()[-40:]
                print(f"---- {name} (last {len(lines)} lines) ----")
                for l in lines:
                    print(f"[{name}] {l}")
        sys.stdout.flush()


async def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="ws://host:port of a running gateway with --auth none")
    ap.add_argument("--spawn", action="store_true", help="start redis-server, chatmi-gateway and chatmi-worker")
    ap.add_argument("--max-message-bytes", type=int, default=None,
                    help="the gateway's --max-message-bytes (default 65536; 16384 with --spawn)")
    ap.add_argument("--only", action="append", choices=CHECKS, help="run only these checks")
    args = ap.parse_args()
    if bool(args.url) == bool(args.spawn):
        ap.error("give exactly one of --url and --spawn")
    stack = None
    try:
        if args.spawn:
            mmb = args.max_message_bytes or 16384
            stack = Stack()
            url = await stack.up(mmb)
        else:
            mmb = args.max_message_bytes or 65536
            url = args.url
        c = await run_checks(url, mmb, args.only)
        passed, failed = c.passed, c.failed
    except Exception as e:
        print(f"FAIL setup: {type(e).__name__}: {e}", flush=True)
        passed, failed = 0, 1
    finally:
        if stack is not None:
            await stack.down()
    if stack is not None:
        if failed:
            stack.dump_logs()
        if not os.environ.get("CHATMI_IT_KEEP"):
            shutil.rmtree(stack.dir, ignore_errors=True)
        else:
            print(f"logs kept in {stack.dir}", file=sys.stderr)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
