# lib.sh: shared by the tests/deploy checks (sourced, not run).
#
# Environment (Makefile.am sets it): TOP_SRCDIR, TOP_BUILDDIR, PYTHON3,
# CHATMI_GATEWAY_BIN, CHATMI_WORKER_BIN. A validator that is not installed
# skips the check (exit 77), unless CHATMI_DEPLOY_CHECKS_REQUIRED=1 (CI sets
# it through scripts/test.sh), where that is a failure: CI must never pass
# on checks it did not run.
# shellcheck shell=bash

say() { printf '%s: %s\n' "${0##*/}" "$*"; }

fail() {
    say "FAIL: $*" >&2
    exit 1
}

# need TOOL [HINT]: TOOL on PATH (or in /usr/sbin, /sbin), else skip or fail.
need() {
    local tool=$1 hint=${2:-}
    if command -v "$tool" >/dev/null 2>&1; then
        return 0
    fi
    if [ -x "/usr/sbin/$tool" ] || [ -x "/sbin/$tool" ]; then
        PATH=$PATH:/usr/sbin:/sbin
        return 0
    fi
    missing "$tool not found${hint:+ ($hint)}"
}

# missing REASON: skip (77), or fail when the checks are required.
missing() {
    if [ "${CHATMI_DEPLOY_CHECKS_REQUIRED:-0}" = 1 ]; then
        fail "$1, and CHATMI_DEPLOY_CHECKS_REQUIRED=1"
    fi
    say "SKIP: $1"
    exit 77
}

# need_python MODULE...: sets PYTHON3 to the first of $PYTHON3, python3 and
# /usr/bin/python3 that imports every MODULE (a pyenv or virtualenv python3
# first in PATH may lack Debian's modules), else skips or fails.
need_python() {
    local py imports
    imports=$(printf 'import %s; ' "$@")
    for py in "${PYTHON3:-}" python3 /usr/bin/python3; do
        [ -n "$py" ] || continue
        if "$py" -c "$imports" >/dev/null 2>&1; then
            PYTHON3=$py
            return 0
        fi
    done
    missing "no python3 imports $* (Debian: $(printf 'python3-%s ' "$@"))"
}

: "${TOP_SRCDIR:?}" "${TOP_BUILDDIR:?}"
