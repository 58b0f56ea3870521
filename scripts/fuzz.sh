#!/usr/bin/env bash
# fuzz.sh [SECONDS] [TARGET...]: build chatmi's libFuzzer targets (tests/fuzz)
# in build-fuzz/ and run each for SECONDS (default 60).
#
#   - builds with scripts/build.sh build-fuzz --enable-fuzz CC=clang (clang's
#     extra warnings do not fail this build: the gcc builds enforce -Werror);
#   - runs every target of tests/fuzz/Makefile.am (or the TARGETs given), at
#     most FUZZ_JOBS (default 2) at a time, each on a scratch copy of its seed
#     corpus tests/fuzz/corpus/<target>/ with its dictionary, so runs never
#     write into the repository;
#   - prints one closing line per target (executions, coverage, corpus) and,
#     for a failing one, the end of its log and the path of the saved input;
#   - exits 1 when any target crashed, leaked, timed out or broke an
#     invariant (2 when the build failed).
#
# Everything a run leaves is in build-fuzz/fuzz-run/<target>/: log, corpus/
# (the grown corpus) and crash-*/leak-*/timeout-* artifacts.
#
# Environment: CC (default clang), JOBS (build jobs, default 2), FUZZ_JOBS,
# FUZZ_TIMEOUT (seconds one input may take, default 10), FUZZ_RSS_MB
# (default 2048), FUZZ_NICE (nice level of the runs, default 0).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build-fuzz
SECONDS_EACH=${1:-60}
[ "$#" -gt 0 ] && shift
FUZZ_JOBS=${FUZZ_JOBS:-2}
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-10}
FUZZ_RSS_MB=${FUZZ_RSS_MB:-2048}
FUZZ_NICE=${FUZZ_NICE:-0}

case "$SECONDS_EACH" in
    '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, not '$SECONDS_EACH'" >&2; exit 2 ;;
esac
case "$FUZZ_JOBS" in
    '' | *[!0-9]* | 0) echo "fuzz.sh: FUZZ_JOBS must be a positive number" >&2; exit 2 ;;
esac

# The targets: FUZZ_TARGETS in tests/fuzz/Makefile.am, the one list.
if [ "$#" -gt 0 ]; then
    TARGETS=("$@")
else
    mapfile -t TARGETS < <(sed -n '/^FUZZ_TARGETS *=/,/[^\\]$/p' "$ROOT/tests/fuzz/Makefile.am" |
        sed 's/^FUZZ_TARGETS *=//; s/\\$//' | tr -s ' \t' '\n' | grep -v '^$')
fi
[ "${#TARGETS[@]}" -gt 0 ] || { echo "fuzz.sh: no targets found in tests/fuzz/Makefile.am" >&2; exit 2; }

if ! "$ROOT/scripts/build.sh" "$BUILD" --enable-fuzz --disable-werror CC="${CC:-clang}"; then
    echo "fuzz.sh: the fuzz build failed (needs clang and libFuzzer: scripts/install-deps.sh)" >&2
    exit 2
fi

# Per-target dictionary and maximum input length (the HTTP head limit is
# 8192 and a JWT's 4096: inputs just past them must be reachable).
dict_of() {
    case "$1" in
        fuzz_http | fuzz_handshake) echo "$ROOT/tests/fuzz/dict/http.dict" ;;
        fuzz_request_json | fuzz_jwt_payload) echo "$ROOT/tests/fuzz/dict/json.dict" ;;
        fuzz_request_msgpack | fuzz_envelope | fuzz_msgpack_json) echo "$ROOT/tests/fuzz/dict/msgpack.dict" ;;
        *) echo "" ;;
    esac
}
max_len_of() {
    case "$1" in
        fuzz_http | fuzz_handshake) echo 9000 ;;
        fuzz_jwt | fuzz_jwt_payload) echo 4200 ;;
        *) echo 4096 ;;
    esac
}

# run_one TARGET: one bounded libFuzzer run; its exit status is the fuzzer's.
run_one() {
    local t=$1 dir=$BUILD/fuzz-run/$1 dict
    local -a args
    rm -rf "$dir"
    mkdir -p "$dir/corpus"
    if [ -d "$ROOT/tests/fuzz/corpus/$t" ]; then
        cp -R "$ROOT/tests/fuzz/corpus/$t/." "$dir/corpus/"
    fi
    args=(-max_total_time="$SECONDS_EACH" -timeout="$FUZZ_TIMEOUT" -rss_limit_mb="$FUZZ_RSS_MB"
        -max_len="$(max_len_of "$t")" -print_final_stats=1 -artifact_prefix="$dir/")
    dict=$(dict_of "$t")
    [ -z "$dict" ] || args+=(-dict="$dict")
    ASAN_OPTIONS="detect_leaks=1:abort_on_error=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
        UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}" \
        nice -n "$FUZZ_NICE" "$BUILD/tests/fuzz/$t" "${args[@]}" "$dir/corpus" >"$dir/log" 2>&1
}

# report TARGET STATUS: the closing line (and the evidence of a failure).
report() {
    local t=$1 rc=$2 dir=$BUILD/fuzz-run/$1 execs cov corp art
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -n 1)
    cov=$(grep -aoE 'cov: [0-9]+' "$dir/log" | tail -n 1 | cut -d' ' -f2)
    corp=$(find "$dir/corpus" -type f | wc -l)
    if [ "$rc" -eq 0 ]; then
        printf 'fuzz.sh: %-22s ok: %s s, %s execs, cov %s, corpus %s\n' "$t" "$SECONDS_EACH" "${execs:-?}" \
            "${cov:-?}" "$corp"
        return 0
    fi
    art=$(find "$dir" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
        -o -name 'oom-*' -o -name 'slow-unit-*' \) | head -n 1)
    printf '\n---- %s: end of %s ----\n' "$t" "${dir#"$ROOT"/}/log"
    tail -n 60 "$dir/log"
    printf -- '---- end ----\n'
    printf 'fuzz.sh: %-22s FAILED (exit %s): %s execs; input saved: %s\n' "$t" "$rc" "${execs:-?}" \
        "${art:-none (see the log)}"
    return 1
}

echo "fuzz.sh: ${#TARGETS[@]} targets, ${SECONDS_EACH} s each, ${FUZZ_JOBS} at a time"
for t in "${TARGETS[@]}"; do
    if [ ! -x "$BUILD/tests/fuzz/$t" ]; then
        echo "fuzz.sh: no such target: $t" >&2
        exit 2
    fi
done

declare -A PID_OF=()
FAILED=()
# Collects one finished run (any), reports it.
reap() {
    local pid rc t
    rc=0
    wait -n -p pid "${!PID_OF[@]}" || rc=$?
    t=${PID_OF[$pid]}
    unset "PID_OF[$pid]"
    report "$t" "$rc" || FAILED+=("$t")
}
for t in "${TARGETS[@]}"; do
    while [ "${#PID_OF[@]}" -ge "$FUZZ_JOBS" ]; do
        reap
    done
    run_one "$t" &
    PID_OF[$!]=$t
done
while [ "${#PID_OF[@]}" -gt 0 ]; do
    reap
done

if [ "${#FAILED[@]}" -gt 0 ]; then
    echo "fuzz.sh: FAILED: ${FAILED[*]} (logs and inputs in ${BUILD#"$ROOT"/}/fuzz-run/)" >&2
    exit 1
fi
echo "fuzz.sh: all ${#TARGETS[@]} targets ran ${SECONDS_EACH} s each without a finding"
