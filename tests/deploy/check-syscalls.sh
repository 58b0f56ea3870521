#!/bin/bash
# check-syscalls.sh: the units' SystemCallFilter= against the system calls
# the programs really make, traced with strace while they serve a chat,
# reload and stop (deploycheck.py syscalls). A call the filter lacks would
# fail with EPERM in production only.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# The sanitizers' runtimes make system calls of their own (and production
# builds have none): nothing to learn about the units from such a build.
if [ "${CHATMI_SANITIZER_BUILD:-0}" = 1 ]; then
    say "SKIP: a sanitizer build; the filter is checked against the plain build"
    exit 77
fi
need strace "Debian: strace"
need systemd-analyze "Debian: systemd"
need_python websockets
exec "$PYTHON3" "$TOP_SRCDIR/tests/deploy/deploycheck.py" syscalls
