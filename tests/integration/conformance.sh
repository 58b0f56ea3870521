#!/bin/sh
# conformance.sh: runs conformance.py (an independent Python client of the
# contract) against a private stack it starts: redis-server, chatmi-gateway,
# chatmi-worker on free loopback ports (CHATMI_GATEWAY_BIN, CHATMI_WORKER_BIN,
# REDIS_SERVER, CHATMI_WWW_DIR come from Makefile.am). Exit 77 (skipped)
# when no python3 has the websockets module (Debian: python3-websockets).
srcdir=${CHATMI_IT_SRCDIR:-$(dirname "$0")}
for py in "${PYTHON3:-}" python3 /usr/bin/python3; do
    [ -n "$py" ] || continue
    if "$py" -c 'import sys, websockets; sys.exit(0 if int(websockets.__version__.split(".")[0]) >= 10 else 1)' \
        >/dev/null 2>&1; then
        exec "$py" "$srcdir/conformance.py" --spawn "$@"
    fi
done
echo "conformance.sh: no python3 with websockets >= 10 (apt-get install python3-websockets python3-msgpack): skipped"
exit 77
