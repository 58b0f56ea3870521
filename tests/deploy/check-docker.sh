#!/bin/bash
# check-docker.sh: docker/ without a Docker engine.
#
#   - dockerfile-utils lint docker/Dockerfile (npm: dockerfile-utils);
#   - docker-compose config -q on the stack, alone and with the JWT override;
#   - docker-compose config -q with the monitoring profile (Prometheus and
#     Grafana), promtool check config on docker/prometheus.yml, and
#     check-dashboard.py: the Grafana dashboard parses and queries only
#     metrics the gateway's and worker's exposition code names;
#   - haproxy -c on docker/haproxy.cfg (the file the topology test runs);
#   - docker/chatmi-healthcheck against a real gateway: 0 for /healthz, 1 for
#     /readyz while Redis is unreachable;
#   - deploycheck.py docker: Dockerfile, compose, haproxy.cfg, the programs
#     and this Debian's packages against each other.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need dockerfile-utils "npm install -g dockerfile-utils (scripts/install-deps.sh does it)"
need docker-compose "Debian: docker-compose"
need haproxy "Debian: haproxy"
need promtool "Debian: prometheus"
need_python yaml
passed=0
d=$TOP_SRCDIR/docker

out=$(dockerfile-utils lint "$d/Dockerfile" 2>&1) || { printf '%s\n' "$out"; fail "dockerfile-utils lint"; }
[ -z "$out" ] || { printf '%s\n' "$out"; fail "dockerfile-utils lint reported the problems above"; }
say "dockerfile-utils lint docker/Dockerfile: clean"
passed=$((passed + 1))

# docker-compose reads the environment for ${...}: keep ours out of it.
for files in "docker-compose.yml" "docker-compose.yml docker-compose.jwt.yml"; do
    args=()
    for f in $files; do args+=(-f "$d/$f"); done
    (cd "$d" && env -u CHATMI_PORT docker-compose "${args[@]}" config -q) || fail "docker-compose config -q ($files)"
    say "docker-compose config -q: $files: valid"
    passed=$((passed + 1))
done

(cd "$d" && env -u CHATMI_PORT docker-compose -f docker-compose.yml --profile monitoring config -q) ||
    fail "docker-compose --profile monitoring config -q"
services=$(cd "$d" && env -u CHATMI_PORT docker-compose -f docker-compose.yml --profile monitoring config --services)
for s in prometheus grafana; do
    printf '%s\n' "$services" | grep -qx "$s" || fail "the monitoring profile has no $s service"
done
# (docker-compose 1.x lists every service whatever the profiles: read them)
"$PYTHON3" - "$d/docker-compose.yml" <<'PY' || fail "prometheus and grafana must be in the monitoring profile only"
import sys, yaml
svcs = yaml.safe_load(open(sys.argv[1]))["services"]
bad = [n for n, s in svcs.items() if (n in ("prometheus", "grafana")) != (s.get("profiles") == ["monitoring"])]
sys.exit(1 if bad else 0)
PY
say "docker-compose --profile monitoring config -q: valid, prometheus and grafana only in that profile"
passed=$((passed + 1))

out=$(promtool check config "$d/prometheus.yml" 2>&1) || { printf '%s\n' "$out"; fail "promtool check config"; }
say "promtool check config docker/prometheus.yml: valid"
passed=$((passed + 1))

"$PYTHON3" "$TOP_SRCDIR/tests/deploy/check-dashboard.py" "$d/grafana/chatmi-dashboard.json" --source "$TOP_SRCDIR" ||
    fail "check-dashboard.py docker/grafana/chatmi-dashboard.json"
passed=$((passed + 1))

CHATMI_LB_BIND=127.0.0.1:8080 CHATMI_GW1=127.0.0.1:8081 CHATMI_GW2=127.0.0.1:8082 \
    haproxy -c -q -f "$d/haproxy.cfg" || fail "haproxy -c -f docker/haproxy.cfg"
say "haproxy -c docker/haproxy.cfg: valid"
passed=$((passed + 1))

# The health check script against a gateway on loopback with no Redis.
port=$("$PYTHON3" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp /tmp/chatmi-healthcheck.XXXXXX)
env -u CHATMI_CONFIG "$CHATMI_GATEWAY_BIN" --listen "127.0.0.1:$port" --processes 1 --auth none \
    --redis-url redis://127.0.0.1:1/0 --drain-seconds 0 >"$log" 2>&1 &
gw=$!
trap 'kill "$gw" 2>/dev/null; wait "$gw" 2>/dev/null; rm -f "$log"' EXIT
ok=1
for _ in $(seq 1 100); do
    if CHATMI_LISTEN="127.0.0.1:$port" "$d/chatmi-healthcheck" 2>/dev/null; then ok=0; break; fi
    kill -0 "$gw" 2>/dev/null || break
    sleep 0.1
done
[ "$ok" = 0 ] || { cat "$log"; fail "chatmi-healthcheck: /healthz of a running gateway did not pass"; }
if CHATMI_LISTEN="127.0.0.1:$port" "$d/chatmi-healthcheck" /readyz 2>/dev/null; then
    fail "chatmi-healthcheck /readyz passed for a gateway without Redis"
fi
say "chatmi-healthcheck: /healthz passes, /readyz without Redis fails"
passed=$((passed + 1))

"$PYTHON3" "$TOP_SRCDIR/tests/deploy/deploycheck.py" docker | tee "$log.py" || fail "deploycheck.py docker"
n=$(sed -n 's/^\([0-9]*\) passed, 0 failed$/\1/p' "$log.py")
rm -f "$log.py"
say "$((passed + ${n:-0})) passed, 0 failed"
