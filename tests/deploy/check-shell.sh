#!/bin/bash
# check-shell.sh: shellcheck on every shell script of the repository (by
# extension or by a sh/bash shebang), including the deployment scripts.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need shellcheck "Debian: shellcheck"

cd "$TOP_SRCDIR"
mapfile -t scripts < <(
    find . \( -name .git -o -name 'build*' -o -name .run -o -name autom4te.cache -o -name node_modules \) -prune -o \
        -type f ! -empty \( -name '*.sh' -o -path ./.ci/run -o -path ./docker/chatmi-healthcheck \) -print
    # files with a shell shebang but no extension
    find . \( -name .git -o -name 'build*' -o -name .run -o -name autom4te.cache -o -name node_modules \) -prune -o \
        -type f ! -empty ! -name '*.*' -perm -u+x -print | while IFS= read -r f; do
        head -c 64 "$f" 2>/dev/null | grep -qE '^#!(/usr)?/bin/(env )?(ba)?sh' && printf '%s\n' "$f"
    done
)
mapfile -t scripts < <(printf '%s\n' "${scripts[@]}" | grep -v '^$' | sort -u | grep -v -E '^\./(configure|config\.status|libtool)$|/build-aux/')
[ "${#scripts[@]}" -gt 0 ] || fail "no shell scripts found under $TOP_SRCDIR"
say "shellcheck on ${#scripts[@]} scripts"
shellcheck -x --source-path=SCRIPTDIR "${scripts[@]}" || fail "shellcheck found problems"
say "1 passed, 0 failed"
