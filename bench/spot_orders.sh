#!/usr/bin/env bash
# Spot order placement end to end over gRPC (orders group-committed with their trades and outbox events,
# synchronous commit, each answered after its commit), next to pgbench -S and pgbench's default (TPC-B-like)
# TPS on the same PostgreSQL, in the same run. Starts its own PostgreSQL and Redis (tools/lib/servers.sh) in a
# temporary folder and ptd-trading on them; prints the median of ROUNDS rounds of each.
#
#   bench/spot_orders.sh [BUILD_DIR]          (default: build; needs ptd-trading and spot_orders_load built)
#
# Settings (environment): ROUNDS=3 CLIENTS=16 RUN_SECONDS=15 COMMODITIES=4 SCALE=16 (pgbench -i scale factor;
# pgbench advises at least one branch per client, else it measures contention on the branch rows).
# STATEMENTS=1 also prints trading's costliest statements (pg_stat_statements) after the last round.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
rounds=${ROUNDS:-3}
clients=${CLIENTS:-16}
seconds=${RUN_SECONDS:-15}
commodities=${COMMODITIES:-4}
scale=${SCALE:-16}
. "$root/tools/lib/servers.sh"

for bin in "$build/services/trading/ptd-trading" "$build/bench/spot_orders_load"; do
  [ -x "$bin" ] || { echo "missing $bin: cmake --build $build --target ptd-trading spot_orders_load" >&2; exit 1; }
done

dir=$(mktemp -d /tmp/ptd-spot-bench.XXXXXX)
trading_pid=
cleanup() {
  [ -n "$trading_pid" ] && kill "$trading_pid" 2>/dev/null && wait "$trading_pid" 2>/dev/null || true
  ptd_servers_stop "$dir" immediate || true
  pgdir="$dir/pg"; [ -L "$pgdir" ] && rm -rf "$(readlink "$pgdir")"
  rm -rf "$dir"
}
trap cleanup EXIT

pg_port=$(_ptd_free_port)
redis_port=$(_ptd_free_port)
[ "${STATEMENTS:-0}" = 1 ] && export PTD_PG_PRELOAD=pg_stat_statements
eval "$(ptd_servers_start "$dir" "$pg_port" "$redis_port")"
pg="-h 127.0.0.1 -p $pg_port -U ptd"
[ "${STATEMENTS:-0}" = 1 ] && psql $pg -d postgres -qAt -c "CREATE EXTENSION pg_stat_statements" >/dev/null
psql $pg -d postgres -qAt -c "CREATE DATABASE pgbench" >/dev/null
pgbench $pg -i -q -s "$scale" pgbench >/dev/null 2>&1

grpc_port=$(_ptd_free_port)
"$build/services/trading/ptd-trading" --grpc-address="127.0.0.1:$grpc_port" --metrics-address= \
  --pg-url="$PTD_PG_URL" --redis-url="$PTD_REDIS_URL" --internal-token=bench --pg-pool-size=32 \
  --log-level=warn >"$dir/trading.log" 2>&1 &
trading_pid=$!
for _ in $(seq 1 200); do
  (exec 3<>"/dev/tcp/127.0.0.1/$grpc_port") 2>/dev/null && break
  sleep 0.05
done

tps() { sed -n 's/^tps = \([0-9.]*\) .*/\1/p' | head -1; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

: >"$dir/select" ; : >"$dir/tpcb" ; : >"$dir/spot" ; : >"$dir/spot.lines" ; : >"$dir/ratio"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq 1 "$rounds"); do
  pgbench $pg -S -c "$clients" -j 2 -T "$seconds" pgbench 2>/dev/null | tps >>"$dir/select"
  pgbench $pg -c "$clients" -j 2 -T "$seconds" pgbench 2>/dev/null | tps >>"$dir/tpcb"
  line=$("$build/bench/spot_orders_load" --target="127.0.0.1:$grpc_port" --token=bench --clients="$clients" \
    --seconds="$seconds" --commodities="$commodities" --seed="$round")
  echo "$line" >>"$dir/spot.lines"
  echo "$line" | sed -n 's/^orders_per_s=\([0-9.]*\) .*/\1/p' >>"$dir/spot"
  awk -v s="$(tail -1 "$dir/spot")" -v t="$(tail -1 "$dir/tpcb")" 'BEGIN {printf "%.2f\n", s / t}' >>"$dir/ratio"
  echo "round $round: pgbench -S $(tail -1 "$dir/select") TPS, pgbench $(tail -1 "$dir/tpcb") TPS, spot: $line" >&2
done

select_tps=$(median <"$dir/select")
tpcb_tps=$(median <"$dir/tpcb")
spot_ops=$(median <"$dir/spot")
echo
echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1); PostgreSQL $(psql $pg -d postgres -qAt -c 'SHOW server_version'), synchronous_commit=$(psql $pg -d postgres -qAt -c 'SHOW synchronous_commit'), fsync=$(psql $pg -d postgres -qAt -c 'SHOW fsync')"
echo "load average (1, 5, 15 min): $load_before before, $(cut -d' ' -f1-3 /proc/loadavg) after"
echo "settings: $clients clients, ${seconds}s per run, median of $rounds rounds, pgbench scale $scale, spot orders over $commodities commodities"
printf '%-62s %12s\n' "workload" "per second"
printf '%-62s %12.0f\n' "pgbench -S (select only)" "$select_tps"
printf '%-62s %12.0f\n' "pgbench default (TPC-B-like)" "$tpcb_tps"
printf '%-62s %12.0f\n' "PlaceSpotOrder over gRPC (orders + trades + outbox, group commit)" "$spot_ops"
awk -v s="$spot_ops" -v t="$tpcb_tps" 'BEGIN {printf "spot orders / pgbench default = %.2f (goal >= 0.70)\n", s / t}'
# The same ratio taken within each round (pgbench and spot run back to back), less exposed to load that
# changes between rounds on a shared machine.
echo "per round: $(tr '\n' ' ' <"$dir/ratio")(median $(median <"$dir/ratio"))"
echo "spot runs:"; sed 's/^/  /' "$dir/spot.lines"
if [ "${STATEMENTS:-0}" = 1 ]; then
  echo "trading's costliest statements (all rounds):"
  psql $pg -d postgres -P pager=off -c "SELECT calls, round(total_exec_time) AS total_ms,
      round((total_exec_time / calls)::numeric, 3) AS mean_ms, rows / calls AS rows_per_call,
      left(regexp_replace(query, '\s+', ' ', 'g'), 90) AS query
    FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'postgres')
    ORDER BY total_exec_time DESC LIMIT 15"
fi
