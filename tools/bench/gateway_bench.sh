#!/usr/bin/env bash
# Runs gateway_bench against a private PostgreSQL + Redis, ptd-trading and ptd-gateway, all on loopback.
#   tools/bench/gateway_bench.sh [BUILD_DIR] [gateway_bench flags...]
# PTD_BENCH_GATEWAY_FLAGS adds flags to ptd-gateway; PTD_BENCH_GATEWAY_ENV and PTD_BENCH_TRADING_ENV set
# environment variables (NAME=value ...) of ptd-gateway and ptd-trading (e.g. GRPC_POLL_STRATEGY=poll).
# The servers live under BUILD_DIR/bench-gateway and are stopped at the end.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
shift || true
build=$(cd "$build" && pwd)
. "$root/tools/lib/servers.sh"
dir="$build/bench-gateway"
mkdir -p "$dir"
pg_port=$(_ptd_free_port); redis_port=$(_ptd_free_port)
while [ "$redis_port" = "$pg_port" ]; do redis_port=$(_ptd_free_port); done
ptd_servers_start "$dir" "$pg_port" "$redis_port" >"$dir/env"
. "$dir/env"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # A server that does not stop within 10 s is killed: the benchmark must not hang on it.
  for _ in $(seq 100); do
    alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ptd_servers_stop "$dir" immediate >/dev/null 2>&1 || true
}
trap cleanup EXIT
token=bench-internal-token
trading_port=$(_ptd_free_port); gateway_port=$(_ptd_free_port)
trading_env=${PTD_BENCH_TRADING_ENV:-}
gateway_env=${PTD_BENCH_GATEWAY_ENV:-}
env $trading_env "$build/services/trading/ptd-trading" --grpc-address=127.0.0.1:$trading_port --metrics-address= \
  --pg-url="$PTD_PG_URL" --redis-url="$PTD_REDIS_URL" --internal-token=$token --log-level=warn >"$dir/trading.log" 2>&1 &
pids+=($!)
trading_pid=$!
env $gateway_env "$build/services/gateway/ptd-gateway" --http-address=127.0.0.1:$gateway_port --grpc-address=127.0.0.1:0 \
  --pg-url="$PTD_PG_URL" --redis-url="$PTD_REDIS_URL" --internal-token=$token \
  --jwt-secret=bench-jwt-secret-0123456789abcdef0123456789 --backends=ptd.trading.v1=127.0.0.1:$trading_port \
  --tenant-rate-limit=1000000:1000000 --anonymous-rate-limit=0 ${PTD_BENCH_GATEWAY_FLAGS:-} >"$dir/gateway.log" 2>&1 &
pids+=($!)
gateway_pid=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$gateway_port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
"$build/tools/bench/gateway_bench" --gateway=127.0.0.1:$gateway_port --trading=127.0.0.1:$trading_port \
  --internal-token=$token \
  --processes="gateway=$gateway_pid,trading=$trading_pid,postgres=$(head -1 "$dir/pg/postmaster.pid")+,redis=$(cat "$dir/redis.pid")" \
  "$@"
