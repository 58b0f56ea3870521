#!/usr/bin/env bash
# run-local.sh: install the dependencies, build, and run a whole chatmi on this
# machine in the foreground: a private redis-server, one chatmi-gateway (two
# child processes, --auth none) and one chatmi-worker. Ctrl-C stops all three.
#
# Environment:
#   PORT           gateway port on 127.0.0.1 (default 8080)
#   REDIS_PORT     first port to try for the private redis-server (default
#                  6390; the next free one is taken when it is busy)
#   BUILD_DIR      build directory (default build)
#   READY_TIMEOUT  seconds to wait for GET /readyz (default 30)
#   SKIP_DEPS=1    do not check the Debian packages
#   CHATMI_*       passed through to both programs (CHATMI_LOG_LEVEL=debug);
#                  CHATMI_DRAIN_SECONDS defaults to 2 here so Ctrl-C is quick
#
# Exits 0 after a clean stop, non-zero when a process dies on its own.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PORT=${PORT:-8080}
REDIS_PORT=${REDIS_PORT:-6390}
BUILD_DIR=${BUILD_DIR:-build}
READY_TIMEOUT=${READY_TIMEOUT:-30}
RUN_DIR="$ROOT/.run"
export CHATMI_DRAIN_SECONDS=${CHATMI_DRAIN_SECONDS:-2}

case "$BUILD_DIR" in
    /*) ;;
    *) BUILD_DIR="$ROOT/$BUILD_DIR" ;;
esac

say() { printf 'run-local: %s\n' "$*" >&2; }

for v in PORT REDIS_PORT READY_TIMEOUT; do
    case "${!v}" in
        '' | *[!0-9]*) say "$v must be a number, got '${!v}'"; exit 2 ;;
    esac
done

# 0 when something accepts TCP connections on 127.0.0.1:$1.
port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

if [ "${SKIP_DEPS:-0}" != 1 ]; then
    "$ROOT/scripts/install-deps.sh"
fi
"$ROOT/scripts/build.sh" "$BUILD_DIR"

GATEWAY="$BUILD_DIR/gateway/chatmi-gateway"
WORKER="$BUILD_DIR/worker/chatmi-worker"
for bin in "$GATEWAY" "$WORKER"; do
    [ -x "$bin" ] || { say "$bin was not built"; exit 1; }
done
if port_busy "$PORT"; then
    say "port $PORT is in use; choose another with PORT=8081 $0"
    exit 1
fi

# ---- process management ----------------------------------------------------
# Each process runs in its own session (setsid), so a Ctrl-C in the terminal
# reaches only this script, which then stops them in order: gateway (drains
# its clients), worker (finishes its batch), redis last.
REDIS_PID='' GATEWAY_PID='' WORKER_PID=''
STOPPING=0

name_of() {
    case "$1" in
        "$REDIS_PID") echo redis-server ;;
        "$GATEWAY_PID") echo chatmi-gateway ;;
        "$WORKER_PID") echo chatmi-worker ;;
        *) echo "process $1" ;;
    esac
}

# stop_pid PID SECONDS: SIGTERM, wait up to SECONDS, then SIGKILL.
stop_pid() {
    local pid=$1 limit=$(($2 * 10)) i=0
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$i" -ge "$limit" ]; then
            say "$(name_of "$pid") did not stop in $2 s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
        i=$((i + 1))
    done
    wait "$pid" 2>/dev/null || true
}

stop_all() {
    [ "$STOPPING" = 0 ] || return 0
    STOPPING=1
    trap '' INT TERM HUP
    if [ -n "$GATEWAY_PID$WORKER_PID$REDIS_PID" ]; then
        say "stopping"
    fi
    local drain=${CHATMI_DRAIN_SECONDS%%[!0-9]*}
    stop_pid "$GATEWAY_PID" $((${drain:-20} + 10))
    stop_pid "$WORKER_PID" 15
    stop_pid "$REDIS_PID" 10
    GATEWAY_PID='' WORKER_PID='' REDIS_PID=''
}

on_signal() {
    stop_all
    say "stopped"
    exit 0
}

die() {
    say "$*"
    stop_all
    exit 1
}

trap on_signal INT TERM HUP
trap 'stop_all' EXIT

# alive_or_die: stops everything and fails when a started process has exited.
alive_or_die() {
    local pid name rc
    for pid in $REDIS_PID $GATEWAY_PID $WORKER_PID; do
        if ! kill -0 "$pid" 2>/dev/null; then
            name=$(name_of "$pid")
            rc=0
            wait "$pid" 2>/dev/null || rc=$?
            case "$pid" in
                "$REDIS_PID") REDIS_PID='' ;;
                "$GATEWAY_PID") GATEWAY_PID='' ;;
                "$WORKER_PID") WORKER_PID='' ;;
            esac
            die "$name exited with status $rc"
        fi
    done
}

# ---- redis -----------------------------------------------------------------
mkdir -p "$RUN_DIR"
redis_port=$REDIS_PORT
for _ in $(seq 1 20); do
    if port_busy "$redis_port"; then
        redis_port=$((redis_port + 1))
        continue
    fi
    mkdir -p "$RUN_DIR/redis-$redis_port"
    setsid redis-server --bind 127.0.0.1 --port "$redis_port" --protected-mode yes \
        --dir "$RUN_DIR/redis-$redis_port" --save '' --appendonly no \
        --logfile "$RUN_DIR/redis-$redis_port.log" --daemonize no </dev/null &
    REDIS_PID=$!
    for _ in $(seq 1 50); do
        if redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null | grep -q PONG; then
            break 2
        fi
        kill -0 "$REDIS_PID" 2>/dev/null || break
        sleep 0.1
    done
    # It did not come up on this port (lost a race for it, or failed): next one.
    stop_pid "$REDIS_PID" 5
    REDIS_PID=''
    redis_port=$((redis_port + 1))
done
[ -n "$REDIS_PID" ] || die "could not start redis-server (see $RUN_DIR/redis-*.log)"
REDIS_URL="redis://127.0.0.1:$redis_port/0"
say "redis-server on 127.0.0.1:$redis_port (pid $REDIS_PID, log $RUN_DIR/redis-$redis_port.log)"

# ---- worker and gateway ----------------------------------------------------
setsid "$WORKER" --redis-url "$REDIS_URL" </dev/null &
WORKER_PID=$!
setsid "$GATEWAY" --listen "127.0.0.1:$PORT" --processes 2 --auth none \
    --www-dir "$ROOT/gateway/www" --redis-url "$REDIS_URL" </dev/null &
GATEWAY_PID=$!

ready=0
for _ in $(seq 1 $((READY_TIMEOUT * 5))); do
    alive_or_die
    if curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/readyz" 2>/dev/null; then
        ready=1
        break
    fi
    sleep 0.2
done
[ "$ready" = 1 ] || die "the gateway did not answer GET /readyz with 200 within $READY_TIMEOUT s"

cat >&2 <<EOF

chatmi is running: http://127.0.0.1:$PORT/
  gateway pid $GATEWAY_PID, worker pid $WORKER_PID, redis-server pid $REDIS_PID ($REDIS_URL)
  Stop with Ctrl-C (or: kill $$).

EOF

# ---- wait ------------------------------------------------------------------
# Wakes once a second so a signal is handled promptly and a dead process noticed.
while :; do
    alive_or_die
    sleep 1 &
    wait $! || true
done
