#!/bin/bash
# check-systemd.sh: the systemd units as installed by `make install`.
#
#   - `make install DESTDIR=<tmp>`, then `systemd-analyze verify --root=<tmp>`
#     on both units (the ExecStart programs must exist in that tree; any
#     message, even a warning about an unknown setting, fails);
#   - `systemd-analyze security --offline=true`: exposure 2.0 or lower ("OK");
#   - TimeoutStopSec of the gateway >= its example CHATMI_DRAIN_SECONDS + 15;
#   - the sysusers.d entry and the example settings files are installed.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need systemd-analyze "Debian: systemd"

MAX_EXPOSURE=20 # systemd-analyze counts tenths: 2.0
root=$(mktemp -d /tmp/chatmi-systemd.XXXXXX)
trap 'rm -rf "$root"' EXIT
passed=0

# MAKEFLAGS of the make running this test must not leak into this one.
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$TOP_BUILDDIR" install DESTDIR="$root" >"$root.log" 2>&1 ||
    { cat "$root.log"; rm -f "$root.log"; fail "make install DESTDIR=$root failed"; }
rm -f "$root.log"

unit=$(find "$root" -name chatmi-gateway.service -print -quit)
[ -n "$unit" ] || fail "make install installed no chatmi-gateway.service (configure --with-systemdsystemunitdir)"
unitdir=${unit%/*}
[ -f "$unitdir/chatmi-worker@.service" ] || fail "chatmi-worker@.service is not next to $unit"
[ -n "$(find "$root" -path '*sysusers.d/chatmi.conf' -print -quit)" ] || fail "no sysusers.d/chatmi.conf installed"
[ -n "$(find "$root" -path '*/examples/gateway.env' -print -quit)" ] || fail "no examples/gateway.env installed"
passed=$((passed + 1))

# A minimal system around the installed tree: the host's targets and slices
# (the units' implicit dependencies) and kill(1) for ExecReload.
sysdir=$root/usr/lib/systemd/system
mkdir -p "$sysdir" "$root/usr/bin"
for d in /lib/systemd/system /usr/lib/systemd/system; do
    [ -d "$d" ] && find "$d" -maxdepth 1 \( -name '*.target' -o -name '*.slice' \) -exec cp -a -t "$sysdir" {} + 2>/dev/null
done
cp "$(type -P kill)" "$root/usr/bin/kill"
[ -e "$root/bin" ] || ln -s usr/bin "$root/bin"
[ -e "$root/lib" ] || ln -s usr/lib "$root/lib"

rel=${unitdir#"$root"}
for u in chatmi-gateway.service chatmi-worker@.service; do
    inst=$u
    [ "$u" = chatmi-worker@.service ] && inst=chatmi-worker@1.service
    [ "$u" = chatmi-worker@.service ] && cp "$unitdir/$u" "$unitdir/$inst"
    out=$(systemd-analyze verify --root="$root" "$rel/$inst" 2>&1) || { printf '%s\n' "$out"; fail "systemd-analyze verify $u"; }
    [ -z "$out" ] || { printf '%s\n' "$out"; fail "systemd-analyze verify $u printed the messages above"; }
    say "verify $u: ok"
    out=$(systemd-analyze security --offline=true --root="$root" --threshold="$MAX_EXPOSURE" "$rel/$inst" 2>&1) ||
        { printf '%s\n' "$out"; fail "systemd-analyze security $u: exposure above 2.0"; }
    say "security $u: $(printf '%s\n' "$out" | grep 'Overall exposure' | sed 's/.*: //')"
    [ "$u" = chatmi-worker@.service ] && rm -f "$unitdir/$inst"
    passed=$((passed + 2))
done

# The stop timeout covers the drain: drain + 10 s (children killed) + margin.
drain=$(sed -n 's/^CHATMI_DRAIN_SECONDS=\([0-9]*\).*/\1/p' "$TOP_SRCDIR/systemd/gateway.env")
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)$/\1/p' "$unit")
{ [ -n "$drain" ] && [ -n "$stop" ]; } || fail "no CHATMI_DRAIN_SECONDS in gateway.env or TimeoutStopSec in the unit"
[ "$stop" -ge $((drain + 15)) ] || fail "TimeoutStopSec=$stop < CHATMI_DRAIN_SECONDS=$drain + 15"
grep -qx 'KillMode=mixed' "$unit" || fail "the gateway unit must use KillMode=mixed (SIGTERM to the master only)"
grep -q '^ExecStart=.* --config ' "$unit" || fail "the gateway unit must read its options with --config (reloadable)"
grep -q '^EnvironmentFile=' "$unit" && fail "EnvironmentFile= would hide the --config file's values from a reload"
say "TimeoutStopSec=$stop covers CHATMI_DRAIN_SECONDS=$drain"
passed=$((passed + 1))
say "$passed passed, 0 failed"
