# What bench/spot_orders.sh and bench/buy_now.sh share: a private PostgreSQL (with pgbench's tables) and Redis
# in a temporary folder (tools/lib/servers.sh), ptd-trading on them, pgbench's two reference runs, and the
# summary lines. Sourced with `root` set to the checkout.
#
#   bench_require BUILD PATH...       exits unless every program (path under BUILD) is built
#   bench_start_servers NAME SCALE    PostgreSQL and Redis under /tmp/ptd-NAME.XXXXXX ($bench_dir, removed at
#                                     exit), pgbench's tables at SCALE; sets $pg (psql and pgbench flags).
#                                     STATEMENTS=1 preloads pg_stat_statements.
#   bench_start_trading BUILD         ptd-trading on them, internal token "bench", log level LOG_LEVEL (default
#                                     info, as deployed: two lines an order); sets $grpc_port
#   bench_pgbench CLIENTS SECONDS     pgbench -S, then pgbench's default script; their TPS appended to
#                                     $bench_dir/select and $bench_dir/tpcb
#   bench_tps < pgbench-output        the TPS figure
#   bench_median < numbers            their median
#   bench_machine                     one line: CPUs, PostgreSQL version, synchronous_commit and fsync
#   bench_statements                  with STATEMENTS=1, trading's costliest statements (all rounds)
. "$root/tools/lib/servers.sh"

bench_require() {
  local build=$1 path
  shift
  for path in "$@"; do
    [ -x "$build/$path" ] || {
      echo "missing $build/$path: cmake --build $build --target $(for p in "$@"; do printf '%s ' "${p##*/}"; done | sed 's/ $//')" >&2
      exit 1
    }
  done
}

bench_dir=
bench_trading_pid=
bench_cleanup() {
  if [ -n "$bench_trading_pid" ] && kill "$bench_trading_pid" 2>/dev/null; then
    # A service that does not stop within 10 s is killed: the benchmark never hangs on it.
    for _ in $(seq 1 100); do kill -0 "$bench_trading_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$bench_trading_pid" 2>/dev/null || true
    wait "$bench_trading_pid" 2>/dev/null || true
  fi
  [ -n "$bench_dir" ] || return 0
  ptd_servers_stop "$bench_dir" immediate || true
  local pgdir="$bench_dir/pg"
  [ -L "$pgdir" ] && rm -rf "$(readlink "$pgdir")"
  rm -rf "$bench_dir"
}

bench_start_servers() {
  local name=$1 scale=$2 pg_port redis_port
  bench_dir=$(mktemp -d "/tmp/ptd-$name.XXXXXX")
  trap bench_cleanup EXIT
  pg_port=$(_ptd_free_port)
  redis_port=$(_ptd_free_port)
  [ "${STATEMENTS:-0}" = 1 ] && export PTD_PG_PRELOAD=pg_stat_statements
  eval "$(ptd_servers_start "$bench_dir" "$pg_port" "$redis_port")"
  pg="-h 127.0.0.1 -p $pg_port -U ptd"
  [ "${STATEMENTS:-0}" = 1 ] && psql $pg -d postgres -qAt -c "CREATE EXTENSION pg_stat_statements" >/dev/null
  psql $pg -d postgres -qAt -c "CREATE DATABASE pgbench" >/dev/null
  pgbench $pg -i -q -s "$scale" pgbench >/dev/null 2>&1
}

bench_start_trading() {
  local build=$1
  grpc_port=$(_ptd_free_port)
  "$build/services/trading/ptd-trading" --grpc-address="127.0.0.1:$grpc_port" --metrics-address= \
    --pg-url="$PTD_PG_URL" --redis-url="$PTD_REDIS_URL" --internal-token=bench --pg-pool-size=32 \
    --log-level="${LOG_LEVEL:-info}" >"$bench_dir/trading.log" 2>&1 &
  bench_trading_pid=$!
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$grpc_port") 2>/dev/null && break
    sleep 0.05
  done
}

bench_tps() { sed -n 's/^tps = \([0-9.]*\) .*/\1/p' | head -1; }
bench_median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

bench_pgbench() {
  local clients=$1 seconds=$2
  pgbench $pg -S -c "$clients" -j 2 -T "$seconds" pgbench 2>/dev/null | bench_tps >>"$bench_dir/select"
  pgbench $pg -c "$clients" -j 2 -T "$seconds" pgbench 2>/dev/null | bench_tps >>"$bench_dir/tpcb"
}

bench_machine() {
  echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1); PostgreSQL $(psql $pg -d postgres -qAt -c 'SHOW server_version'), synchronous_commit=$(psql $pg -d postgres -qAt -c 'SHOW synchronous_commit'), fsync=$(psql $pg -d postgres -qAt -c 'SHOW fsync')"
}

bench_statements() {
  [ "${STATEMENTS:-0}" = 1 ] || return 0
  echo "trading's costliest statements (all rounds):"
  psql $pg -d postgres -P pager=off -c "SELECT calls, round(total_exec_time) AS total_ms,
      round((total_exec_time / calls)::numeric, 3) AS mean_ms, rows / calls AS rows_per_call,
      left(regexp_replace(query, '\s+', ' ', 'g'), 90) AS query
    FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'postgres')
    ORDER BY total_exec_time DESC LIMIT 15"
}
