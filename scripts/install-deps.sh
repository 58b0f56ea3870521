#!/usr/bin/env bash
# install-deps.sh: install every Debian package chatmi needs to build, run
# and test (Debian 12 "bookworm").
#
# Idempotent: when every package is already installed it does nothing, unless
# FORCE=1, which runs `apt-get update` and `apt-get install` regardless.
# APT_UPDATED=1 skips `apt-get update` (the caller just ran it).
# Needs root, or sudo.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

PACKAGES=(
    # build
    build-essential autoconf automake libtool pkg-config
    # libraries
    libhiredis-dev libevent-dev libwslay-dev libmsgpack-dev libjansson-dev
    libssl-dev libhttp-parser-dev uthash-dev
    # tests
    libcriterion-dev redis-server redis-sentinel python3 python3-websockets python3-msgpack
    # tools for scripts/run-local.sh and debugging
    valgrind curl ca-certificates
    # fuzzing (scripts/fuzz.sh, ./configure --enable-fuzz CC=clang): clang and
    # libFuzzer's runtime (libclang_rt.fuzzer, which clang-14 only recommends)
    clang-14 clang libclang-rt-14-dev
    # deployment checks (tests/deploy, the topology test): validators of
    # docker/, ecs/ and systemd/; dockerfile-utils comes from npm, below
    systemd shellcheck haproxy docker-compose python3-botocore python3-yaml strace
    # browser tests (tests/browser): Chromium, and node for playwright-core,
    # which comes from npm, below (npm: with NodeSource's nodejs, or Debian's)
    chromium nodejs
    # the Redis TLS test (tests/integration/test_redis_security.c): stunnel's
    # client mode in front of redis-server's tls-port; openssl makes its CA
    stunnel4 openssl
    # metrics checks: promtool (check metrics, check config) comes with the server package
    prometheus
)

# valgrind needs its Recommends on Debian (libc6-dbg comes as a Depends, gdb
# and valgrind-dbg are useful); everything else installs fine without.
WITH_RECOMMENDS=(valgrind)

missing_packages() {
    local pkg status
    for pkg in "${PACKAGES[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
        case "$status" in
            ii*) ;;
            *) printf '%s\n' "$pkg" ;;
        esac
    done
}

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deps.sh: this script needs Debian (dpkg and apt-get); install the packages it lists by hand" >&2
    exit 1
fi

# playwright-core for the browser tests, at the version tests/browser's
# package-lock.json pins, in tests/browser/node_modules (where chat.sh looks).
# It downloads no browser (the tests drive Debian's chromium), so once it is
# there the tests need no network.
BROWSER_DIR=$ROOT/tests/browser
browser_modules_ok() {
    local want have
    command -v node >/dev/null 2>&1 || return 1
    want=$(cd "$BROWSER_DIR" && node -p "require('./package-lock.json').packages['node_modules/playwright-core'].version" 2>/dev/null) || return 1
    have=$(cd "$BROWSER_DIR" && node -p "require('./node_modules/playwright-core/package.json').version" 2>/dev/null) || return 1
    [ -n "$want" ] && [ "$want" = "$have" ]
}

mapfile -t missing < <(missing_packages)
if [ "${#missing[@]}" -eq 0 ] && [ "${FORCE:-0}" != 1 ] && browser_modules_ok; then
    echo "install-deps.sh: all ${#PACKAGES[@]} packages are installed"
    exit 0
fi
if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-deps.sh: missing: ${missing[*]}"
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "install-deps.sh: run as root (or install sudo) to install packages" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q
    -o Acquire::Retries=3
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

ok=1
if [ "${APT_UPDATED:-0}" != 1 ]; then
    "${APT[@]}" update || ok=0
fi
if [ "$ok" = 1 ]; then
    plain=()
    for pkg in "${PACKAGES[@]}"; do
        case " ${WITH_RECOMMENDS[*]} " in
            *" $pkg "*) ;;
            *) plain+=("$pkg") ;;
        esac
    done
    "${APT[@]}" install --no-install-recommends "${plain[@]}" || ok=0
    if [ "$ok" = 1 ]; then
        "${APT[@]}" install "${WITH_RECOMMENDS[@]}" || ok=0
    fi
fi

mapfile -t missing < <(missing_packages)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-deps.sh: still missing after apt-get: ${missing[*]}" >&2
    exit 1
fi
if [ "$ok" = 0 ]; then
    # A mirror hiccup must not fail a run whose packages are all in place.
    echo "install-deps.sh: warning: apt-get failed, but every package is installed; continuing" >&2
fi

# The prometheus package is here for promtool only; on a machine run by
# systemd its postinst starts the server: stop it (it would hold port 9090).
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 &&
    systemctl is-enabled --quiet prometheus 2>/dev/null; then
    "${SUDO[@]}" systemctl disable --now prometheus >/dev/null 2>&1 ||
        echo "install-deps.sh: warning: could not stop the prometheus service (only promtool is needed)" >&2
fi

# dockerfile-utils (the Dockerfile linter of tests/deploy) is an npm package.
# npm comes with the nodejs package of NodeSource, or else from Debian's
# nodejs and npm. A registry hiccup is retried; a lasting failure fails here,
# naming the step, rather than skipping the check later.
DOCKERFILE_UTILS=dockerfile-utils@0.16.3

ensure_npm() {
    if ! command -v npm >/dev/null 2>&1; then
        echo "install-deps.sh: npm is missing; installing Debian's nodejs and npm"
        "${APT[@]}" install --no-install-recommends nodejs npm || return 1
    fi
}

# npm_retry WHAT COMMAND...: runs an npm step up to three times.
npm_retry() {
    local what=$1 i
    shift
    for i in 1 2 3; do
        if "$@"; then
            return 0
        fi
        echo "install-deps.sh: $what failed (attempt $i of 3)" >&2
        sleep $((i * 5))
    done
    return 1
}

install_dockerfile_utils() {
    ensure_npm || return 1
    npm_retry "npm install $DOCKERFILE_UTILS" "${SUDO[@]}" npm install -g --no-audit --no-fund "$DOCKERFILE_UTILS"
}
if ! command -v dockerfile-utils >/dev/null 2>&1 || [ "${FORCE:-0}" = 1 ]; then
    if ! install_dockerfile_utils || ! command -v dockerfile-utils >/dev/null 2>&1; then
        if command -v dockerfile-utils >/dev/null 2>&1; then
            echo "install-deps.sh: warning: npm failed, but dockerfile-utils is installed; continuing" >&2
        else
            echo "install-deps.sh: could not install $DOCKERFILE_UTILS from npm (tests/deploy/check-docker.sh needs it)" >&2
            exit 1
        fi
    fi
fi

# playwright-core (see browser_modules_ok above), retried like dockerfile-utils.
browser_npm_ci() {
    (cd "$BROWSER_DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
}
install_browser_modules() {
    ensure_npm || return 1
    npm_retry "npm ci in tests/browser" browser_npm_ci
}
if ! browser_modules_ok || [ "${FORCE:-0}" = 1 ]; then
    if ! install_browser_modules || ! browser_modules_ok; then
        if browser_modules_ok; then
            echo "install-deps.sh: warning: npm ci failed, but playwright-core is installed; continuing" >&2
        else
            echo "install-deps.sh: could not install playwright-core in tests/browser (the browser tests need it)" >&2
            exit 1
        fi
    fi
fi
echo "install-deps.sh: all ${#PACKAGES[@]} packages are installed"
