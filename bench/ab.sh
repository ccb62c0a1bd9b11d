#!/usr/bin/env bash
# Two builds of one benchmark in alternated rounds (A, B, A, B, ...), so that a change is compared with what was
# before on the same machine in the same minutes: on a shared, noisy machine the load moves between rounds, not
# between the two builds.
#
#   bench/ab.sh ROUNDS BUILD_A BUILD_B PATTERN COMMAND...
#
# COMMAND runs with "{}" replaced by the build folder; the lines of its output matching PATTERN (grep -E) are
# printed per round, labelled A or B, and all its output goes to $AB_LOG (default /tmp/ab.log). E.g.
#   bench/ab.sh 5 /tmp/before/build build 'per round|orders_per_s' env ROUNDS=1 RUN_SECONDS=10 bench/spot_orders.sh {}
set -euo pipefail
rounds=$1 a=$2 b=$3 pattern=$4
shift 4
log=${AB_LOG:-/tmp/ab.log}
: >"$log"
for round in $(seq 1 "$rounds"); do
  for side in A B; do
    build=$a
    [ "$side" = B ] && build=$b
    cmd=()
    for arg in "$@"; do cmd+=("${arg//\{\}/$build}"); done
    echo "== round $round $side ($build): ${cmd[*]}" >>"$log"
    out=$("${cmd[@]}" 2>&1) || { echo "$out" >>"$log"; echo "round $round $side failed; see $log" >&2; exit 1; }
    echo "$out" >>"$log"
    echo "$out" | grep -E "$pattern" | sed "s/^/round $round $side: /"
  done
done
