#!/usr/bin/env bash
# build.sh [BUILDDIR] [configure args...]: build chatmi out of tree.
#
#   - runs `autoreconf -fi` when configure is missing or older than
#     configure.ac (or a Makefile.in is missing);
#   - configures BUILDDIR (default: build, relative to the repository) when
#     it has never been configured or the configure arguments changed;
#   - runs `make -j2` there (JOBS=n to change).
#
# Examples:
#   ./scripts/build.sh
#   ./scripts/build.sh build-san --enable-sanitizers
#   ./scripts/build.sh build-dbg CFLAGS='-O0 -g'
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-build}
[ "$#" -gt 0 ] && shift
case "$BUILD" in
    /*) ;;
    *) BUILD="$SRC/$BUILD" ;;
esac

# The integration tests need Python with websockets and msgpack. Debian's
# python3 has them (python3-websockets, python3-msgpack); a python3 earlier in
# PATH (pyenv, a virtualenv) may not, so configure gets one that has them.
if [ -z "${PYTHON3:-}" ]; then
    for py in python3 /usr/bin/python3; do
        if "$py" -c 'import websockets, msgpack' >/dev/null 2>&1; then
            PYTHON3=$(command -v "$py")
            export PYTHON3
            break
        fi
    done
fi

if [ -f "$SRC/config.status" ]; then
    echo "build.sh: $SRC was configured in place; run 'make distclean' there first" >&2
    exit 1
fi

need_autoreconf=0
if [ ! -x "$SRC/configure" ] || [ "$SRC/configure.ac" -nt "$SRC/configure" ]; then
    need_autoreconf=1
else
    while IFS= read -r am; do
        if [ ! -f "${am%.am}.in" ]; then
            need_autoreconf=1
            break
        fi
    done < <(find "$SRC" \( -name .git -o -path "$SRC/build*" -o -path "$SRC/.run" \) -prune \
        -o -name Makefile.am -print)
fi
if [ "$need_autoreconf" = 1 ]; then
    echo "build.sh: autoreconf -fi"
    (cd "$SRC" && autoreconf -fi)
fi

mkdir -p "$BUILD"
args_file="$BUILD/.chatmi-configure-args"
args=$(printf '%q ' "$@")
if [ ! -f "$BUILD/Makefile" ] || [ ! -f "$BUILD/config.status" ] || [ ! -f "$args_file" ] ||
    [ "$(cat "$args_file")" != "$args" ]; then
    echo "build.sh: configuring $BUILD${*:+ with $*}"
    rm -f "$args_file"
    (cd "$BUILD" && "$SRC/configure" "$@")
    printf '%s' "$args" >"$args_file"
fi

make -C "$BUILD" -j"${JOBS:-2}"
echo "build.sh: built in $BUILD"
