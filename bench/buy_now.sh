#!/usr/bin/env bash
# Buy-now order placement (OrderService.PlaceOrder) end to end over gRPC — each order takes its quantity from the
# listing and writes the order, its audit row and its OrderPlaced outbox event, group-committed with the orders
# queued meanwhile (services/trading/buy_now.h), synchronous commit, answered after its commit — next to
# pgbench -S and pgbench's default (TPC-B-like) TPS on
# the same PostgreSQL, in the same run. Starts its own PostgreSQL and Redis (tools/lib/servers.sh, through
# bench/lib.sh) in a temporary folder and ptd-trading on them; prints the median of ROUNDS rounds of each.
# Each round runs pgbench -S, pgbench, orders over all LISTINGS listings, then orders over the first
# HOT_LISTINGS only (contention on a few rows; HOT_LISTINGS=0 leaves that run out).
#
#   bench/buy_now.sh [BUILD_DIR]              (default: build; needs ptd-trading and buy_now_load built)
#
# Settings (environment): ROUNDS=3 CLIENTS=16 RUN_SECONDS=15 LISTINGS=1000 SELLERS=100 HOT_LISTINGS=1 LOG_LEVEL=info
# SCALE=16 (pgbench -i scale factor; pgbench advises at least one branch per client, else it measures
# contention on the branch rows). STATEMENTS=1 also prints trading's costliest statements (pg_stat_statements)
# after the last round.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
rounds=${ROUNDS:-3}
clients=${CLIENTS:-16}
seconds=${RUN_SECONDS:-15}
listings=${LISTINGS:-1000}
sellers=${SELLERS:-100}
hot=${HOT_LISTINGS:-1}
scale=${SCALE:-16}
. "$root/bench/lib.sh"

bench_require "$build" services/trading/ptd-trading bench/buy_now_load
bench_start_servers buy-now-bench "$scale"
bench_start_trading "$build"
dir=$bench_dir

# One run of the load; its line is appended to $dir/NAME.lines, its orders/s to $dir/NAME and its ratio to
# this round's pgbench default to $dir/NAME.ratio.
load() {
  local name=$1 round=$2 line
  shift 2
  line=$("$build/bench/buy_now_load" --target="127.0.0.1:$grpc_port" --token=bench --clients="$clients" \
    --seconds="$seconds" --listings="$listings" --sellers="$sellers" --seed="$round" "$@" 2>"$dir/load.err") || {
    cat "$dir/load.err" >&2; echo "buy_now_load failed: $line" >&2; exit 1; }
  echo "$line" >>"$dir/$name.lines"
  echo "$line" | sed -n 's/^orders_per_s=\([0-9.]*\) .*/\1/p' >>"$dir/$name"
  echo "$line" | sed -n 's/.* acknowledged=\([0-9]*\)$/\1/p' >>"$dir/acknowledged"
  awk -v s="$(tail -1 "$dir/$name")" -v t="$(tail -1 "$dir/tpcb")" 'BEGIN {printf "%.2f\n", s / t}' >>"$dir/$name.ratio"
  echo "$line"
}

: >"$dir/select" ; : >"$dir/tpcb" ; : >"$dir/acknowledged"
for name in spread hot; do : >"$dir/$name" ; : >"$dir/$name.lines" ; : >"$dir/$name.ratio"; done
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq 1 "$rounds"); do
  bench_pgbench "$clients" "$seconds"
  spread=$(load spread "$round")
  echo "round $round: pgbench -S $(tail -1 "$dir/select") TPS, pgbench $(tail -1 "$dir/tpcb") TPS, buy now: $spread" >&2
  if [ "$hot" -gt 0 ]; then
    hot_line=$(load hot "$round" --hot-listings="$hot")
    echo "round $round: buy now from $hot listing(s): $hot_line" >&2
  fi
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

select_tps=$(bench_median <"$dir/select")
tpcb_tps=$(bench_median <"$dir/tpcb")
spread_ops=$(bench_median <"$dir/spread")
echo
bench_machine
echo "load average (1, 5, 15 min): $load_before before, $load_after after"
echo "settings: $clients clients, ${seconds}s per run, trading log level ${LOG_LEVEL:-info}, median of $rounds rounds, pgbench scale $scale, buy now from $listings listings of $sellers sellers"
printf '%-62s %12s\n' "workload" "per second"
printf '%-62s %12.0f\n' "pgbench -S (select only)" "$select_tps"
printf '%-62s %12.0f\n' "pgbench default (TPC-B-like)" "$tpcb_tps"
printf '%-62s %12.0f\n' "PlaceOrder over gRPC, $listings listings (order + audit + outbox)" "$spread_ops"
[ "$hot" -gt 0 ] && printf '%-62s %12.0f\n' "PlaceOrder over gRPC, all from $hot listing(s)" "$(bench_median <"$dir/hot")"
awk -v s="$spread_ops" -v t="$tpcb_tps" 'BEGIN {printf "buy-now orders / pgbench default = %.2f (goal >= 0.70)\n", s / t}'
# The same ratio taken within each round (pgbench and the load run back to back), less exposed to load that
# changes between rounds on a shared machine.
echo "per round: $(tr '\n' ' ' <"$dir/spread.ratio")(median $(bench_median <"$dir/spread.ratio"))"
[ "$hot" -gt 0 ] && echo "per round, $hot listing(s): $(tr '\n' ' ' <"$dir/hot.ratio")(median $(bench_median <"$dir/hot.ratio"))"
echo "buy-now runs:"; sed 's/^/  /' "$dir/spread.lines" "$dir/hot.lines"
# Every acknowledged order (warm-ups included) must be in the database.
stored=$(psql $pg -d postgres -qAt -c "SELECT count(*) FROM trading.orders")
acknowledged=$(awk '{n += $1} END {print n + 0}' "$dir/acknowledged")
echo "orders stored: $stored, acknowledged: $acknowledged$([ "$stored" -ge "$acknowledged" ] || echo ' — ACKNOWLEDGED ORDERS MISSING')"
bench_statements
