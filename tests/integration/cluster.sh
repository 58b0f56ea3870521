#!/usr/bin/env bash
# cluster.sh: the integration programs for direct messages, rooms, history
# and presence (it_chat, it_rooms, it_multi, it_msgpack) run again against a
# real Redis Cluster instead of one Redis.
#
# Why: the same contract must hold when chatmi's keys are spread over 3
# masters (each with a replica) and its queues over partitions. Each test
# gets its own cluster from the harness (CHATMI_IT_REDIS=cluster: 6
# redis-server processes, redis-cli --cluster create, see harness.h "Redis
# Cluster"), and the gateways and workers get redis+cluster:// URLs naming
# the three masters and --queue-partitions 6, two per master (CHATMI_IT_QUEUE_PARTITIONS).
# Tests that need the one Redis (restarts, raw pushes onto the {q} lists)
# skip themselves there.
#
# A cluster takes about 3 s to start and most of that is waiting (redis-cli
# pauses 1 s while the nodes meet; a new master stays "fail" for 2 s), so
# each program runs its tests CHATMI_IT_CLUSTER_JOBS (default 4) at a time.
# It prints each program's closing "Synthesis:" line and fails if any
# program fails.
set -u

PROGS=${CHATMI_IT_CLUSTER_PROGS:-it_chat it_rooms it_multi it_msgpack}
JOBS=${CHATMI_IT_CLUSTER_JOBS:-4}

if [ "${CHATMI_IT_SKIP_CLUSTER:-0}" = 1 ]; then
    echo "cluster.sh: SKIP (CHATMI_IT_SKIP_CLUSTER=1: scripts/test.sh's distcheck; build/ and build-san/ ran it)"
    exit 77
fi

export CHATMI_IT_REDIS=cluster
export CHATMI_IT_QUEUE_PARTITIONS=${CHATMI_IT_QUEUE_PARTITIONS:-6}
export CRITERION_JOBS=$JOBS

failed=0
summary=()
start=$(date +%s)
for p in $PROGS; do
    if [ ! -x "./$p" ]; then
        echo "cluster.sh: ./$p is missing (build it first)"
        failed=1
        summary+=("$(printf '%-10s %s' "$p" "missing")")
        continue
    fi
    t0=$(date +%s)
    log="cluster-$p.log"
    rc=0
    "./$p" >"$log" 2>&1 || rc=$?
    line=$(grep -a 'Synthesis:' "$log" | tail -n 1)
    [ -n "$line" ] || line="(no Synthesis line; exit status $rc)"
    if [ "$rc" -ne 0 ]; then
        failed=1
        echo "---- $p failed (exit $rc): its output ----"
        cat "$log"
        echo "---- end of $p ----"
    fi
    summary+=("$(printf '%-10s %4ss %s' "$p" "$(($(date +%s) - t0))" "$line")")
done
printf '%s\n' "${summary[@]}"
echo "cluster.sh: CHATMI_IT_REDIS=cluster CHATMI_IT_QUEUE_PARTITIONS=$CHATMI_IT_QUEUE_PARTITIONS, $JOBS jobs, $(($(date +%s) - start)) s"
if [ "$failed" -ne 0 ]; then
    echo "cluster.sh: FAIL"
    exit 1
fi
echo "cluster.sh: PASS"
exit 0
