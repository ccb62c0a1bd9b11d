#!/usr/bin/env bash
# Runs ptd-load against a private platform: its own PostgreSQL and Redis (tools/lib/servers.sh) in a temporary
# folder, ptd-trading, ptd-telemetry and ptd-gateway on free loopback ports; stops everything at the end.
#   tools/load/run.sh [BUILD_DIR] [ptd-load flags...]     (default --duration=20s --tenants=20)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
shift || true
. "$root/tools/lib/servers.sh"
dir=$(mktemp -d /tmp/ptd-load.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 100); do
    alive=0; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break; sleep 0.1
  done
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ptd_servers_stop "$dir" immediate >/dev/null 2>&1 || true
  [ -L "$dir/pg" ] && rm -rf "$(readlink "$dir/pg")"
  rm -rf "$dir"
}
trap cleanup EXIT
pg_port=$(_ptd_free_port); redis_port=$(_ptd_free_port)
eval "$(ptd_servers_start "$dir" "$pg_port" "$redis_port")"
token=load-internal-token
trading=$(_ptd_free_port); telemetry=$(_ptd_free_port); gateway=$(_ptd_free_port)
common=(--metrics-address= --pg-url="$PTD_PG_URL" --redis-url="$PTD_REDIS_URL" --internal-token=$token --log-level=warn)
"$build/services/trading/ptd-trading" --grpc-address=127.0.0.1:$trading "${common[@]}" >"$dir/trading.log" 2>&1 &
pids+=($!)
"$build/services/telemetry/ptd-telemetry" --grpc-address=127.0.0.1:$telemetry "${common[@]}" >"$dir/telemetry.log" 2>&1 &
pids+=($!)
"$build/services/gateway/ptd-gateway" --http-address=127.0.0.1:$gateway --grpc-address=127.0.0.1:0 "${common[@]}" \
  --jwt-secret=load-jwt-secret-0123456789abcdef0123456789 \
  --backends=ptd.trading.v1=127.0.0.1:$trading,ptd.telemetry.v1=127.0.0.1:$telemetry \
  --tenant-rate-limit=0 --anonymous-rate-limit=0 >"$dir/gateway.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$gateway/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
timeout 600 "$build/tools/load/ptd-load" --trading=127.0.0.1:$trading --telemetry=127.0.0.1:$telemetry \
  --gateway=127.0.0.1:$gateway --internal-token=$token --duration=20s --tenants=20 "$@"
