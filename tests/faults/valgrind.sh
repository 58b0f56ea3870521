#!/bin/sh
# valgrind.sh: runs the valgrind scenario (valgrind_chat) with the gateway and
# the worker under valgrind (CHATMI_IT_VALGRIND=1, see harness.h). Not run in
# sanitizer builds (Makefile.am). Without valgrind it is skipped, except in CI
# (CI set), where that is a failure: install-deps.sh installs it.
if ! command -v "${VALGRIND:-valgrind}" >/dev/null 2>&1; then
    if [ -n "${CI:-}" ]; then
        echo "valgrind.sh: valgrind is not installed (scripts/install-deps.sh installs it)"
        exit 1
    fi
    echo "valgrind.sh: valgrind is not installed: skipped"
    exit 77
fi
CHATMI_IT_VALGRIND=1
CHATMI_IT_TIMEOUT_SCALE=${CHATMI_IT_TIMEOUT_SCALE:-10}
export CHATMI_IT_VALGRIND CHATMI_IT_TIMEOUT_SCALE
exec ./valgrind_chat "$@"
