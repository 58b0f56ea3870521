#!/usr/bin/env bash
# chat.sh: runs chat.test.mjs (chatmi's browser client in Debian's Chromium,
# driven by playwright-core) when it can: it needs node, Chromium
# (/usr/bin/chromium, or CHATMI_CHROMIUM) and playwright-core in a
# node_modules directory (CHATMI_BROWSER_MODULES, else the one next to this
# script, where scripts/install-deps.sh puts it with `npm ci`).
#
# Without them it skips (exit 77), unless CHATMI_BROWSER_REQUIRED=1 (CI, set
# by scripts/test.sh), where that is a failure: CI must not pass on a test
# it did not run.
#
# The screenshots (chat.png, chat-bob.png, chat-reconnecting.png,
# signin.png; failed-*.png on a failure) land in the current directory
# (build/tests/browser under make check), or CHATMI_BROWSER_ARTIFACTS.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
say() { printf '%s: %s\n' "${0##*/}" "$*"; }

missing() {
    if [ "${CHATMI_BROWSER_REQUIRED:-0}" = 1 ]; then
        say "FAIL: $1, and CHATMI_BROWSER_REQUIRED=1 (run scripts/install-deps.sh)" >&2
        exit 1
    fi
    say "SKIP: $1 (scripts/install-deps.sh installs it)"
    exit 77
}

command -v node >/dev/null 2>&1 || missing "node not found"
CHATMI_CHROMIUM=${CHATMI_CHROMIUM:-/usr/bin/chromium}
[ -x "$CHATMI_CHROMIUM" ] || missing "$CHATMI_CHROMIUM not found (Debian: chromium)"
CHATMI_BROWSER_MODULES=${CHATMI_BROWSER_MODULES:-$here/node_modules}
[ -f "$CHATMI_BROWSER_MODULES/playwright-core/package.json" ] ||
    missing "playwright-core not in $CHATMI_BROWSER_MODULES (npm ci in tests/browser)"
export CHATMI_CHROMIUM CHATMI_BROWSER_MODULES

# The sanitizer build's programs are slower: stretch every deadline.
if [ "${CHATMI_SANITIZER_BUILD:-0}" = 1 ]; then
    export CHATMI_BROWSER_TIMEOUT_SCALE=${CHATMI_BROWSER_TIMEOUT_SCALE:-3}
fi

# Every process group the test starts is listed here; whatever a crashed
# test left running is killed on the way out.
pidfile=$(mktemp "${TMPDIR:-/tmp}/chatmi-browser-pids.XXXXXX")
out=$(mktemp "${TMPDIR:-/tmp}/chatmi-browser-out.XXXXXX")
export CHATMI_BROWSER_PIDFILE=$pidfile
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    local pgid
    while read -r pgid; do
        if [ -n "$pgid" ]; then
            kill -KILL -- "-$pgid" 2>/dev/null || true
        fi
    done <"$pidfile"
    rm -f "$pidfile" "$out"
}
trap 'cleanup' EXIT

say "node $(node --version), $("$CHATMI_CHROMIUM" --version 2>/dev/null || echo chromium),\
 playwright-core $(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$CHATMI_BROWSER_MODULES/playwright-core/package.json" | head -n 1)"
rc=0
node "$here/chat.test.mjs" 2>&1 | tee "$out" || rc=$?
# node's test runner closes with "# pass N", "# fail N": one plain line of it.
count() { sed -n "s/^# $1 \([0-9][0-9]*\)$/\1/p" "$out" | tail -n 1; }
pass=$(count pass) fail=$(count fail) skipped=$(count skipped)
if [ "$rc" -ne 0 ] && [ "${fail:-0}" = 0 ]; then
    fail=1 # it failed outside a test step (start-up, cleanup)
fi
say "${pass:-0} passed, ${fail:-0} failed, ${skipped:-0} skipped"
exit "$rc"
