#!/usr/bin/env bash
# Telemetry ingest end to end (edge-gateway streams → durable in PostgreSQL, synchronous commit) next to
# psql \copy of the same samples, one row per sample with a primary key on (device, point, time), into the same
# PostgreSQL in the same run; then the query of one day of 1-second data of one point at 1-minute resolution;
# and the service's peak memory (VmHWM) during the run. Starts its own PostgreSQL and Redis
# (tools/lib/servers.sh) in a temporary folder and ptd-telemetry on them.
#
#   bench/telemetry/ingest.sh [BUILD_DIR]     (needs ptd-telemetry and telemetry_ingest_load built)
#
# Settings (environment): ROUNDS=3 SAMPLES=2000000 STREAMS=2 IN_FLIGHT=4 BATCH=10000 DEVICES=10 POINTS=10
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
rounds=${ROUNDS:-3}
samples=${SAMPLES:-2000000}
streams=${STREAMS:-2}
in_flight=${IN_FLIGHT:-4}
batch=${BATCH:-10000}
devices=${DEVICES:-10}
points=${POINTS:-10}
. "$root/tools/lib/servers.sh"

for bin in "$build/services/telemetry/ptd-telemetry" "$build/bench/telemetry/telemetry_ingest_load"; do
  [ -x "$bin" ] || { echo "missing $bin: cmake --build $build --target ptd-telemetry telemetry_ingest_load" >&2; exit 1; }
done

dir=$(mktemp -d /tmp/ptd-telemetry-bench.XXXXXX)
service_pid=
cleanup() {
  [ -n "$service_pid" ] && kill "$service_pid" 2>/dev/null && wait "$service_pid" 2>/dev/null || true
  ptd_servers_stop "$dir" immediate || true
  pgdir="$dir/pg"; [ -L "$pgdir" ] && rm -rf "$(readlink "$pgdir")"
  rm -rf "$dir"
}
trap cleanup EXIT

pg_port=$(_ptd_free_port)
redis_port=$(_ptd_free_port)
eval "$(ptd_servers_start "$dir" "$pg_port" "$redis_port")"
pg="-h 127.0.0.1 -p $pg_port -U ptd"
# CPU seconds (user + system) of a process, and of every PostgreSQL server process together.
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / hz}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# This run's PostgreSQL only (others may run on the machine): the postmaster, its live children, and the
# children it has reaped (cutime + cstime), so that backends that exited (psql's) still count.
pg_cpu() {
  local postmaster total p
  postmaster=$(head -1 "$(_ptd_pg_data_dir "$dir")/postmaster.pid")
  total=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15 + $16 + $17) / hz}' "/proc/$postmaster/stat")
  for p in $(pgrep -P "$postmaster"); do total=$(awk -v t="$total" -v c="$(cpu_of "$p")" 'BEGIN {printf "%.3f", t + c}'); done
  echo "$total"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

: >"$dir/service" ; : >"$dir/copy" ; : >"$dir/copy_nokey" ; : >"$dir/lines" ; : >"$dir/rss" ; : >"$dir/cpu"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq 1 "$rounds"); do
  # A fresh database per round, so every round writes into empty tables as the copy does.
  db="bench$round"
  psql $pg -d postgres -qAt -c "CREATE DATABASE $db" >/dev/null
  grpc_port=$(_ptd_free_port)
  "$build/services/telemetry/ptd-telemetry" --grpc-address="127.0.0.1:$grpc_port" --metrics-address= \
    --pg-url="postgresql://ptd@127.0.0.1:$pg_port/$db" --redis-url="$PTD_REDIS_URL" --internal-token=bench \
    --log-level=warn >"$dir/telemetry.log" 2>&1 &
  service_pid=$!
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$grpc_port") 2>/dev/null && break
    sleep 0.05
  done
  # CPU counted around the ingest alone (the program writes the CSV before it sends; the service is idle then).
  svc0=$(cpu_of "$service_pid"); pg0=$(pg_cpu)
  out=$("$build/bench/telemetry/telemetry_ingest_load" --target="127.0.0.1:$grpc_port" --token=bench \
    --samples="$samples" --streams="$streams" --in-flight="$in_flight" --batch="$batch" --devices="$devices" \
    --points="$points" --csv="$dir/points.csv" --queries=0)
  svc1=$(cpu_of "$service_pid"); pg1=$(pg_cpu)
  out="$out"$'\n'$("$build/bench/telemetry/telemetry_ingest_load" --target="127.0.0.1:$grpc_port" --token=bench \
    --samples=0 --devices=1 --points=1)
  hwm_kb=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$service_pid/status")
  kill "$service_pid"; wait "$service_pid" 2>/dev/null || true; service_pid=
  echo "$out" >>"$dir/lines"
  echo "$out" | sed -n 's/^ingest: points_per_s=\([0-9.]*\) .*/\1/p' >>"$dir/service"
  echo "$hwm_kb" >>"$dir/rss"

  rows=$(wc -l <"$dir/points.csv")
  ingest_cpu_us=$(awk -v s0="$svc0" -v s1="$svc1" -v p0="$pg0" -v p1="$pg1" -v n="$samples" \
    'BEGIN {printf "%.2f %.2f", (s1 - s0) * 1e6 / n, (p1 - p0) * 1e6 / n}')
  for variant in key nokey; do
    if [ "$variant" = key ]; then
      psql $pg -d "$db" -qAt -c "CREATE TABLE raw_points (device_id uuid, point text, time_us bigint, value float8,
        PRIMARY KEY (device_id, point, time_us))"
    else
      psql $pg -d "$db" -qAt -c "CREATE TABLE raw_points (device_id uuid, point text, time_us bigint, value float8)"
    fi
    c0=$(pg_cpu); t0=$(date +%s.%N)
    psql $pg -d "$db" -qAt -c "\\copy raw_points FROM '$dir/points.csv' WITH (FORMAT csv)"
    t1=$(date +%s.%N); c1=$(pg_cpu)
    [ "$variant" = key ] && copy_cpu_us=$(awk -v a="$c0" -v b="$c1" -v n="$rows" 'BEGIN {printf "%.2f", (b - a) * 1e6 / n}')
    psql $pg -d "$db" -qAt -c "DROP TABLE raw_points"
    rate=$(awk -v r="$rows" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", r / (b - a)}')
    if [ "$variant" = key ]; then echo "$rate" >>"$dir/copy"; else echo "$rate" >>"$dir/copy_nokey"; fi
  done
  echo "$ingest_cpu_us $copy_cpu_us" >>"$dir/cpu"
  echo "round $round: CPU µs per sample: service $(echo "$ingest_cpu_us" | cut -d' ' -f1), its PostgreSQL $(echo "$ingest_cpu_us" | cut -d' ' -f2), copy's PostgreSQL $copy_cpu_us; service $(tail -1 "$dir/service") points/s, psql \\copy $(tail -1 "$dir/copy") rows/s (no key: $(tail -1 "$dir/copy_nokey")), service peak RSS $((hwm_kb / 1024)) MiB; $out" >&2
  psql $pg -d postgres -qAt -c "DROP DATABASE $db" >/dev/null
done

service_rate=$(median <"$dir/service")
copy_rate=$(median <"$dir/copy")
copy_nokey_rate=$(median <"$dir/copy_nokey")
echo
echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1); PostgreSQL $(psql $pg -d postgres -qAt -c 'SHOW server_version'), synchronous_commit=$(psql $pg -d postgres -qAt -c 'SHOW synchronous_commit'), fsync=$(psql $pg -d postgres -qAt -c 'SHOW fsync')"
echo "load average (1, 5, 15 min): $load_before before, $(cut -d' ' -f1-3 /proc/loadavg) after"
echo "settings: $samples samples per round ($devices devices × $points points, 1-second data), batches of $batch, $streams streams × $in_flight in flight; median of $rounds rounds"
printf '%-66s %12s\n' "workload" "per second"
printf '%-66s %12.0f\n' "psql \\copy, one row per sample, primary key (device, point, time)" "$copy_rate"
printf '%-66s %12.0f\n' "psql \\copy, one row per sample, no key" "$copy_nokey_rate"
printf '%-66s %12.0f\n' "StreamIngest → durable blocks + rollups + latest (ptd-telemetry)" "$service_rate"
awk -v s="$service_rate" -v c="$copy_rate" 'BEGIN {printf "service / row-per-point copy = %.2f (goal >= 1.30)\n", s / c}'
echo "CPU µs per sample, per round (service, PostgreSQL for the service, PostgreSQL for the copy with key):"
sed 's/^/  /' "$dir/cpu"
echo "service peak RSS (VmHWM) per round, MiB: $(awk '{printf "%d ", $1 / 1024}' "$dir/rss")"
echo "runs:"; sed 's/^/  /' "$dir/lines"
