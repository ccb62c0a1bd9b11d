#!/usr/bin/env bash
# Spot order placement end to end over gRPC (orders group-committed with their trades and outbox events,
# synchronous commit, each answered after its commit), next to pgbench -S and pgbench's default (TPC-B-like)
# TPS on the same PostgreSQL, in the same run. Starts its own PostgreSQL and Redis (tools/lib/servers.sh, through
# bench/lib.sh) in a temporary folder and ptd-trading on them; prints the median of ROUNDS rounds of each.
#
#   bench/spot_orders.sh [BUILD_DIR]          (default: build; needs ptd-trading and spot_orders_load built)
#
# Settings (environment): ROUNDS=3 CLIENTS=16 RUN_SECONDS=15 COMMODITIES=4 LOG_LEVEL=info SCALE=16 (pgbench -i scale factor;
# pgbench advises at least one branch per client, else it measures contention on the branch rows),
# CANCEL_PERCENT=0 (that share of the requests cancel a resting order instead; the figure then counts both).
# STATEMENTS=1 also prints trading's costliest statements (pg_stat_statements) after the last round.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
rounds=${ROUNDS:-3}
clients=${CLIENTS:-16}
seconds=${RUN_SECONDS:-15}
commodities=${COMMODITIES:-4}
cancel_percent=${CANCEL_PERCENT:-0}
scale=${SCALE:-16}
. "$root/bench/lib.sh"

bench_require "$build" services/trading/ptd-trading bench/spot_orders_load
bench_start_servers spot-bench "$scale"
bench_start_trading "$build"
dir=$bench_dir

: >"$dir/select" ; : >"$dir/tpcb" ; : >"$dir/spot" ; : >"$dir/spot.lines" ; : >"$dir/ratio"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq 1 "$rounds"); do
  bench_pgbench "$clients" "$seconds"
  line=$("$build/bench/spot_orders_load" --target="127.0.0.1:$grpc_port" --token=bench --clients="$clients" \
    --seconds="$seconds" --commodities="$commodities" --cancel-percent="$cancel_percent" --seed="$round")
  echo "$line" >>"$dir/spot.lines"
  echo "$line" | sed -n 's/^orders_per_s=\([0-9.]*\) .*/\1/p' >>"$dir/spot"
  awk -v s="$(tail -1 "$dir/spot")" -v t="$(tail -1 "$dir/tpcb")" 'BEGIN {printf "%.2f\n", s / t}' >>"$dir/ratio"
  echo "round $round: pgbench -S $(tail -1 "$dir/select") TPS, pgbench $(tail -1 "$dir/tpcb") TPS, spot: $line" >&2
done

select_tps=$(bench_median <"$dir/select")
tpcb_tps=$(bench_median <"$dir/tpcb")
spot_ops=$(bench_median <"$dir/spot")
echo
bench_machine
echo "load average (1, 5, 15 min): $load_before before, $(cut -d' ' -f1-3 /proc/loadavg) after"
echo "settings: $clients clients, ${seconds}s per run, trading log level ${LOG_LEVEL:-info}, median of $rounds rounds, pgbench scale $scale, spot orders over $commodities commodities, $cancel_percent % cancels"
printf '%-62s %12s\n' "workload" "per second"
printf '%-62s %12.0f\n' "pgbench -S (select only)" "$select_tps"
printf '%-62s %12.0f\n' "pgbench default (TPC-B-like)" "$tpcb_tps"
printf '%-62s %12.0f\n' "PlaceSpotOrder over gRPC (orders + trades + outbox, group commit)" "$spot_ops"
awk -v s="$spot_ops" -v t="$tpcb_tps" 'BEGIN {printf "spot orders / pgbench default = %.2f (goal >= 0.70)\n", s / t}'
# The same ratio taken within each round (pgbench and spot run back to back), less exposed to load that
# changes between rounds on a shared machine.
echo "per round: $(tr '\n' ' ' <"$dir/ratio")(median $(bench_median <"$dir/ratio"))"
echo "spot runs:"; sed 's/^/  /' "$dir/spot.lines"
bench_statements
