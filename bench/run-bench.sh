#!/usr/bin/env bash
# run-bench.sh: the benchmark suite behind `make bench` (being written).
echo "run-bench.sh: not written yet" >&2
exit 1
