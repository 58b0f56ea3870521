#!/usr/bin/env bash
# run-bench.sh: chatmi's benchmark suite, `make -C build/bench bench`.
#
# Starts a private redis-server on a free loopback port (data in a temp
# directory), then for each fixed scenario a fresh chatmi-gateway and
# chatmi-worker, drives them with chatmi-bench, and writes the results with
# the machine and the git commit into docs/benchmarks.md, between the
# "bench:results" markers (the rest of that page is left as it is).
#
#   run-bench.sh [--build-dir DIR] [--src-dir DIR] [--quick] [--only NAMES]
#                [--out FILE] [--no-write] [--keep] [--commit TEXT]
#
#   --build-dir   where gateway/, worker/ and bench/ were built (default: build)
#   --src-dir     the source tree (default: this script's parent)
#   --quick       the same scenarios at 1/25 of the size (a smoke test)
#   --only        comma list of the runs to do, by their names in the table
#                 (idle-1k, idle-10k, idle-50k, room-1k, room-1k-2bench, room-2k,
#                 dm-10k-pairs, dm-10k-pairs-0.2, storm-20k)
#   --out         the page to write (default: SRC/docs/benchmarks.md)
#   --no-write    print the table, leave the page alone
#   --keep        keep the temp directory (logs, JSON of every run)
#   --commit      what the table says was measured (default: the git commit of
#                 --src-dir, and whether it had uncommitted changes)
#
# Limits: the descriptor limit is raised to the hard limit here (and only
# here). net.ipv4.ip_local_port_range is not touched: chatmi-bench spreads
# its connections over several 127.x.y.z source addresses instead. The
# whole suite takes about four minutes on 2 cores.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD="$SRC/build"
QUICK=0
ONLY=''
OUT=''
WRITE=1
KEEP=0
COMMIT=''
while [ $# -gt 0 ]; do
    case "$1" in
        --build-dir) BUILD=$2; shift 2 ;;
        --src-dir) SRC=$2; shift 2 ;;
        --quick) QUICK=1; shift ;;
        --only) ONLY=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --no-write) WRITE=0; shift ;;
        --keep) KEEP=1; shift ;;
        --commit) COMMIT=$2; shift 2 ;;
        -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "run-bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
OUT=${OUT:-$SRC/docs/benchmarks.md}
GATEWAY="$BUILD/gateway/chatmi-gateway"
WORKER="$BUILD/worker/chatmi-worker"
BENCH="$BUILD/bench/chatmi-bench"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

say() { printf 'run-bench: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

for bin in "$GATEWAY" "$WORKER" "$BENCH"; do
    [ -x "$bin" ] || die "$bin is missing: build first (./scripts/build.sh)"
done
command -v redis-server >/dev/null || die "redis-server is not installed"
command -v redis-cli >/dev/null || die "redis-cli is not installed"

# ---- limits -------------------------------------------------------------------
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=1048576
ulimit -n "$hard" 2>/dev/null || true
NOFILE=$(ulimit -n)

# One gateway child holds at most NOFILE connections (minus its own few):
# enough children for the largest idle run, with 15 % for an uneven spread.
children_for() {
    local n=$1 c
    c=$(((n * 115 / 100 + NOFILE - 200) / (NOFILE - 200)))
    [ "$c" -lt 2 ] && c=2
    echo "$c"
}

# ---- processes ------------------------------------------------------------------
TMP=$(mktemp -d /tmp/chatmi-bench.XXXXXX)
REDIS_PID='' GATEWAY_PID='' WORKER_PID=''

stop_pid() {
    local pid=$1 limit=$(($2 * 10)) i=0
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$i" -ge "$limit" ]; then
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
        i=$((i + 1))
    done
    wait "$pid" 2>/dev/null || true
}

stop_stack() {
    stop_pid "$GATEWAY_PID" 15
    stop_pid "$WORKER_PID" 10
    GATEWAY_PID='' WORKER_PID=''
}

cleanup() {
    trap '' INT TERM
    stop_stack
    stop_pid "$REDIS_PID" 10
    REDIS_PID=''
    if [ "$KEEP" = 1 ]; then
        say "kept $TMP"
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port() {
    local p=$(($1 + RANDOM % 500))
    for _ in $(seq 1 200); do
        port_busy "$p" || { echo "$p"; return; }
        p=$((p + 1))
    done
    die "no free port near $1"
}

REDIS_PORT=$(free_port 16400)
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --dir "$TMP" \
    --logfile "$TMP/redis.log" --maxclients 10000 --daemonize no </dev/null &
REDIS_PID=$!
for _ in $(seq 1 50); do
    redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
done
redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG || die "redis-server did not start (see $TMP/redis.log)"
REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
say "redis-server on 127.0.0.1:$REDIS_PORT, work files in $TMP"

# start_stack NAME CHILDREN: a fresh gateway and worker on an empty Redis,
# so every run starts from the same memory and the same keys.
start_stack() {
    local name=$1 children=$2
    redis-cli -p "$REDIS_PORT" flushall >/dev/null
    redis-cli -p "$REDIS_PORT" config resetstat >/dev/null
    GW_PORT=$(free_port 18400)
    "$WORKER" --redis-url "$REDIS_URL" --log-level warn </dev/null >"$TMP/$name.worker.log" 2>&1 &
    WORKER_PID=$!
    "$GATEWAY" --listen "127.0.0.1:$GW_PORT" --processes "$children" --auth none --rate-limit 0 \
        --max-queued-bytes 16MiB --drain-seconds 1 --redis-url "$REDIS_URL" --www-dir "$SRC/gateway/www" \
        --log-level warn </dev/null >"$TMP/$name.gateway.log" 2>&1 &
    GATEWAY_PID=$!
    for _ in $(seq 1 100); do
        kill -0 "$GATEWAY_PID" 2>/dev/null || die "the gateway exited (see $TMP/$name.gateway.log)"
        if (exec 3<>"/dev/tcp/127.0.0.1/$GW_PORT" && printf 'GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n' >&3 &&
            head -c 12 <&3 | grep -q ' 200') 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    die "the gateway did not become ready (see $TMP/$name.gateway.log)"
}

# run NAME CHILDREN chatmi-bench-args...: one scenario; its JSON lands in
# $TMP/NAME.json and its table on stderr.
RUNS=()
FAILED=()
run() {
    local name=$1 children=$2
    shift 2
    if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$name,"* ]]; then
        return 0
    fi
    say "$name: $* (gateway: $children children)"
    start_stack "$name" "$children"
    local started=$SECONDS rc=0
    "$BENCH" --url "ws://127.0.0.1:$GW_PORT/ws" --auth none --gateway-pid "$GATEWAY_PID" \
        --worker-pid "$WORKER_PID" --redis-url "$REDIS_URL" --log-level warn --json "$@" \
        >"$TMP/$name.json" 2>"$TMP/$name.bench.log" || rc=$?
    stop_stack
    if [ "$rc" != 0 ] || ! "$PY" -c 'import json,sys; json.load(open(sys.argv[1]))' "$TMP/$name.json" 2>/dev/null; then
        say "$name: chatmi-bench failed (status $rc); see $TMP/$name.bench.log"
        cat "$TMP/$name.bench.log" >&2
        FAILED+=("$name")
        return 0
    fi
    say "$name: done in $((SECONDS - started)) s"
    RUNS+=("$name")
}

# ---- the suite ------------------------------------------------------------------
S=1
[ "$QUICK" = 1 ] && S=25
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
T0=$SECONDS
say "load average before: $LOAD_BEFORE"

# size N: "1k" for 1000, else the number (names in --quick runs stay honest).
size() {
    if [ $(($1 % 1000)) = 0 ]; then echo "$(($1 / 1000))k"; else echo "$1"; fi
}

IDLE_CHILDREN=$(children_for $((50000 / S)))
for n in 1000 10000 50000; do
    c=$((n / S))
    run "idle-$(size "$c")" "$IDLE_CHILDREN" --scenario idle --connections "$c" --ramp 10000 --max-pending 2000 \
        --duration 5
done
# Room fan-out: 1,000 members, 10 senders x 10 msg/s (100,000 deliveries/s),
# then 2,000 members with 50 msg/s in total from 10 senders.
run "room-$(size $((1000 / S)))" 2 --scenario room --connections $((1000 / S)) --senders 10 --rate 10 --warmup 3 \
    --duration 10
# The same 1,000-member room with the bench split over two processes: when
# the figures match the single-process run, the bench was not the limit.
run "room-$(size $((1000 / S)))-2bench" 2 --scenario room --connections $((1000 / S)) --senders 10 --rate 10 \
    --warmup 3 --duration 10 --bench-processes 2
run "room-$(size $((2000 / S)))" 2 --scenario room --connections $((2000 / S)) --senders 10 --rate 5 --warmup 3 \
    --duration 10
# DMs: 10,000 pairs at 1 msg/s each as the issue asks; then the same pairs
# at 0.2 msg/s, a load this machine sustains, for latency figures that are
# not queueing delay.
run "dm-$(size $((10000 / S)))-pairs" 2 --scenario dm --connections $((20000 / S)) --rate 1 --ramp 10000 \
    --max-pending 2000 --warmup 3 --duration 10
run "dm-$(size $((10000 / S)))-pairs-0.2" 2 --scenario dm --connections $((20000 / S)) --rate 0.2 --ramp 10000 \
    --max-pending 2000 --warmup 3 --duration 10
# Reconnect storm: 20,000 clients in rooms of 100 drop at once; 10 messages
# go to each room; all reconnect within 5 s and catch up (convs + history).
run "storm-$(size $((20000 / S)))" 2 --scenario storm --connections $((20000 / S)) --ramp 10000 --max-pending 4000 \
    --storm-window 5 --storm-missed 10 --storm-group 100
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
ELAPSED=$((SECONDS - T0))
say "suite done in $ELAPSED s; load average after: $LOAD_AFTER"

[ "${#RUNS[@]}" -gt 0 ] || die "no scenario ran"

# ---- the table --------------------------------------------------------------------
if [ -z "$COMMIT" ]; then
    COMMIT=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)
    if [ -n "$(git -C "$SRC" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
        COMMIT="$COMMIT with uncommitted changes"
    fi
fi
CPU_MODEL=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
export RB_TMP="$TMP" RB_RUNS="${RUNS[*]}" RB_FAILED="${FAILED[*]:-}" RB_OUT="$OUT" RB_WRITE="$WRITE" RB_QUICK="$QUICK"
rb_cores=$(nproc)
rb_kernel=$(uname -r)
rb_date=$(date -u +%Y-%m-%d)
rb_redis=$(redis-server --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p')
rb_mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
export RB_COMMIT="$COMMIT" RB_CPU="${CPU_MODEL:-unknown}" RB_CORES="$rb_cores" RB_KERNEL="$rb_kernel"
export RB_LOAD_BEFORE="$LOAD_BEFORE" RB_LOAD_AFTER="$LOAD_AFTER" RB_ELAPSED="$ELAPSED" RB_NOFILE="$NOFILE"
export RB_DATE="$rb_date" RB_REDIS="$rb_redis"
export RB_IDLE_CHILDREN="$IDLE_CHILDREN" RB_MEM="$rb_mem"
"$PY" - <<'PYEOF'
import json, os, re

tmp = os.environ["RB_TMP"]
runs = os.environ["RB_RUNS"].split()
R = {n: json.load(open(os.path.join(tmp, n + ".json"))) for n in runs}

def g(d, *path, default=None):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return default
        d = d[p]
    return d

def num(v, fmt="{:,.0f}"):
    return "–" if v is None else fmt.format(v)

def ms(v):
    if v is None:
        return "–"
    return "{:.2f}".format(v) if v < 10 else "{:.1f}".format(v) if v < 100 else "{:.0f}".format(v)

def kib(v):
    return "–" if v is None else "{:.2f} KiB".format(v / 1024)

out = []
w = out.append
load_b, load_a = os.environ["RB_LOAD_BEFORE"], os.environ["RB_LOAD_AFTER"]
w("Machine: {} ({} cores, {} RAM), Linux {}; Redis {}; descriptor limit {}. Commit {}, {}. "
  "Loopback, everything on one box. The suite took {} s.".format(
      os.environ["RB_CPU"], os.environ["RB_CORES"], os.environ["RB_MEM"], os.environ["RB_KERNEL"],
      os.environ["RB_REDIS"], os.environ["RB_NOFILE"], os.environ["RB_COMMIT"], os.environ["RB_DATE"],
      os.environ["RB_ELAPSED"]))
w("")
busy = float(load_b.split()[0]) > 0.5
w("Load average before the run: {} (1, 5, 15 min){}; after: {}.".format(
    load_b, ": **other work was running on the machine**, so CPU-bound figures are pessimistic" if busy else
    ", the machine was otherwise quiet", load_a))
if os.environ.get("RB_FAILED"):
    w("")
    w("**Runs that failed (no figures): {}.**".format(", ".join(os.environ["RB_FAILED"].split())))
if os.environ["RB_QUICK"] == "1":
    w("")
    w("**Quick run: every scenario at 1/25 of its size.**")
w("")

idle = [n for n in runs if n.startswith("idle")]
if idle:
    w("### Idle connections (gateway with {} children)".format(os.environ["RB_IDLE_CHILDREN"]))
    w("")
    w("| connections | connects/s | handshake failures | connect→hello p99 ms | gateway RSS | RSS/conn | PSS/conn | "
      "kernel slab/conn (both ends) | spread across children | gateway CPU idle | bench CPU total | bench RSS/conn |")
    w("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in idle:
        d = R[n]
        gw = d.get("gateway", {})
        conns = g(d, "connect", "connected") or 0
        w("| {} | {} | {} | {} | {} | {} | {} | {} | ±{:.1f} % | {:.1f} % | {:.2f} s | {} |".format(
            num(g(d, "connect", "connected")), num(g(d, "connect", "connects_per_s")),
            num(g(d, "connect", "handshake_failures")), ms(g(d, "connect", "connect_to_hello_ms", "p99")),
            "{:.1f} MiB".format(gw.get("rss_bytes", 0) / 1048576), kib(gw.get("rss_per_connection")),
            kib(gw.get("pss_per_connection")), kib(g(d, "kernel", "slab_bytes_per_connection")),
            gw.get("child_spread_pct", 0), gw.get("cpu_pct", 0), g(d, "bench", "cpu_total_s", default=0),
            kib(g(d, "bench", "max_rss_bytes", default=0) / conns if conns else None)))
    w("")

msg = [n for n in runs if n.startswith("room") or n.startswith("dm")]
if msg:
    w("### Messages")
    w("")
    w("| run | connections | sent/s | acked | delivered / expected | deliveries/s | p50 ms | p90 | p99 | p99.9 | max | "
      "ack p99 ms | gateway CPU | deliveries per gateway CPU-s | worker CPU/msg | Redis cmds/msg | Redis CPU/msg | "
      "bench CPU (busiest process) | bench tick lag p99 ms |")
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in msg:
        d = R[n]
        m = d.get("messages", {})
        lat = m.get("latency_ms", {})
        exp = m.get("expected", 0) or 0
        dl = m.get("delivered", 0)
        w("| {} | {} | {} | {} | {} / {} ({:.2f} %) | {} | {} | {} | {} | {} | {} | {} | {:.0f} % | {} | {} | {} | {} | {:.0f} % ({:.0f} %) | {} |".format(
            n, num(d.get("connections")), num(m.get("sends_per_s")), num(m.get("acked")), num(dl), num(exp),
            100.0 * dl / exp if exp else 0, num(m.get("deliveries_per_s")), ms(lat.get("p50")), ms(lat.get("p90")),
            ms(lat.get("p99")), ms(lat.get("p99.9")), ms(lat.get("max")), ms(g(m, "ack_latency_ms", "p99")),
            g(d, "gateway", "cpu_pct", default=0), num(g(d, "gateway", "deliveries_per_cpu_s")),
            num(g(d, "worker", "cpu_us_per_request"), "{:.0f} µs"),
            num(g(d, "redis", "commands_per_request"), "{:.1f}"),
            num(g(d, "redis", "cpu_us_per_request"), "{:.0f} µs"),
            g(d, "bench", "cpu_pct", default=0), g(d, "bench", "cpu_pct_busiest_process", default=0),
            ms(g(d, "bench", "tick_lateness_ms", "p99")) + (" ⚠ short of CPU" if g(d, "bench", "short_of_cpu") else "")))
    w("")
    w("Redis commands per message, by command:")
    w("")
    for n in msg:
        per = g(R[n], "redis", "per_request", default={}) or {}
        w("- {}: {}".format(n, ", ".join("{} {:.2f}".format(k, v) for k, v in per.items()) or "–"))
    w("")

storm = [n for n in runs if n.startswith("storm")]
if storm:
    w("### Reconnect storm")
    w("")
    w("| run | clients | window | missed each | reconnected | reconnects/s | handshake failures | recovered clients | "
      "recovered messages / expected | all recovered after | recovery p50 ms | p99 | max | gateway CPU | Redis cmds/request |")
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in storm:
        d = R[n]
        s = d.get("storm", {})
        rec = s.get("recovery_ms", {})
        w("| {} | {} | {:.0f} s | {} | {} | {} | {} | {} | {} / {} | {:.2f} s | {} | {} | {} | {:.0f} % | {} |".format(
            n, num(s.get("clients")), s.get("window_s", 0), s.get("missed_each"), num(s.get("reconnected")),
            num(s.get("connects_per_s")), num(g(d, "connect", "handshake_failures")),
            num(s.get("recovered_clients")), num(s.get("recovered_messages")), num(s.get("expected_messages")),
            s.get("all_recovered_s", 0), ms(rec.get("p50")), ms(rec.get("p99")), ms(rec.get("max")),
            g(d, "gateway", "cpu_pct", default=0), num(g(d, "redis", "commands_per_request"), "{:.1f}")))
    w("")

table = "\n".join(out)
print(table)
if os.environ["RB_WRITE"] == "1":
    path = os.environ["RB_OUT"]
    begin, end = "<!-- bench:results:begin -->", "<!-- bench:results:end -->"
    page = open(path).read() if os.path.exists(path) else "# Benchmarks\n\n{}\n{}\n".format(begin, end)
    if begin not in page or end not in page:
        page = page.rstrip("\n") + "\n\n{}\n{}\n".format(begin, end)
    a, rest = page.split(begin, 1)
    _, b = rest.split(end, 1)
    open(path, "w").write(a + begin + "\n" + table + "\n" + end + b)
    print("\nrun-bench: results written to {}".format(path))
PYEOF
