#!/usr/bin/env bash
# ctest deploy.metrics_exported: every metric the alerting rules and Grafana dashboards query is one the real
# services export. Starts the service binaries of this build against the `infra` fixture's PostgreSQL and Redis,
# makes a few calls so that labelled series appear, scrapes /metrics and compares (tests/deploy/metrics_used.py
# lists what the rules and dashboards use, and who is to export it). Metrics of services that are not built yet
# are reported as skipped.
#
# Environment (set by ctest): PTD_TEST_INFRA_ENV (PTD_PG_URL=..., PTD_REDIS_URL=...), PTD_BUILD_DIR.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${PTD_BUILD_DIR:?PTD_BUILD_DIR is not set}
infra=${PTD_TEST_INFRA_ENV:?PTD_TEST_INFRA_ENV is not set}
work=$build/deploy-metrics
rm -rf "$work" && mkdir -p "$work"

# shellcheck disable=SC1090
. "$infra"
: "${PTD_PG_URL:?no PTD_PG_URL in $infra}" "${PTD_REDIS_URL:?no PTD_REDIS_URL in $infra}"
db="deploy_metrics_$$"
psql "$PTD_PG_URL" -qc "CREATE DATABASE $db" >/dev/null
pg_url="${PTD_PG_URL%/*}/$db"
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')

pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  psql "$PTD_PG_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_http() {  # wait_http URL NAME LOG
  local i
  for i in $(seq 1 200); do
    curl -sf -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "metrics_exported: $2 did not serve $1; its log:" >&2
  tail -30 "$3" >&2
  return 1
}

# One unary gRPC call over h2c with an empty request message; prints the grpc-status. A refused call may be answered
# before curl has sent its body, and curl then reports the stream reset instead: the call is counted all the same.
grpc_call() {  # grpc_call PORT /package.Service/Method [header...]
  local port=$1 path=$2; shift 2
  local headers=() h
  for h in "$@"; do headers+=(-H "$h"); done
  printf '\0\0\0\0\0' | curl -s --http2-prior-knowledge -o /dev/null -D - \
    -H 'content-type: application/grpc' -H 'te: trailers' "${headers[@]}" --data-binary @- \
    "http://127.0.0.1:$port$path" | tr -d '\r' | sed -n 's/^grpc-status: //p' | grep . || echo "(stream reset)"
}

started=()  # services started here; their scrapes are $work/<name>.metrics

# --- trading: every common metric
trading=$build/services/trading/ptd-trading
[ -x "$trading" ] || { echo "metrics_exported: $trading is not built" >&2; exit 1; }
t_grpc=$(free_port); t_metrics=$(free_port)
PTD_GRPC_ADDRESS=127.0.0.1:$t_grpc PTD_METRICS_ADDRESS=127.0.0.1:$t_metrics PTD_PG_URL=$pg_url \
  PTD_REDIS_URL=$PTD_REDIS_URL PTD_INTERNAL_TOKEN=$token PTD_LOG_LEVEL=warn \
  "$trading" >"$work/trading.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$t_metrics/metrics" trading "$work/trading.log"
echo "health check: grpc-status $(grpc_call "$t_grpc" /grpc.health.v1.Health/Check)"
echo "call without the token: grpc-status $(grpc_call "$t_grpc" /ptd.trading.v1.TradingService/ListVerticals)"
echo "call with the token: grpc-status $(grpc_call "$t_grpc" /ptd.trading.v1.TradingService/ListVerticals \
  "x-ptd-internal-token: $token" "x-ptd-tenant: deploy-metrics" "x-ptd-subject: ops" "x-ptd-roles: admin")"
demo=$build/tools/demo/ptd-demo
if [ -x "$demo" ]; then
  # Listings go through the outbox: the outbox metrics get their `stream` label.
  "$demo" --trading-address=127.0.0.1:$t_grpc --internal-token="$token" >"$work/demo.log" 2>&1 ||
    { echo "metrics_exported: ptd-demo failed:" >&2; tail -20 "$work/demo.log" >&2; exit 1; }
  sleep 1  # a relay round
else
  echo "skip: $demo is not built; outbox series by stream may be missing"
fi
curl -sf "http://127.0.0.1:$t_metrics/metrics" >"$work/trading.metrics"
started+=(trading)

# --- gateway: its HTTP metrics, when it is built
gateway=$build/services/gateway/ptd-gateway
if [ -x "$gateway" ]; then
  g_http=$(free_port); g_grpc=$(free_port); g_metrics=$(free_port)
  PTD_HTTP_ADDRESS=127.0.0.1:$g_http PTD_GRPC_ADDRESS=127.0.0.1:$g_grpc PTD_METRICS_ADDRESS=127.0.0.1:$g_metrics \
    PTD_BACKENDS=ptd.trading.v1=127.0.0.1:$t_grpc PTD_PG_URL=$pg_url PTD_REDIS_URL=$PTD_REDIS_URL \
    PTD_INTERNAL_TOKEN=$token PTD_JWT_SECRET=$token$token PTD_LOG_LEVEL=warn \
    "$gateway" >"$work/gateway.log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:$g_metrics/metrics" gateway "$work/gateway.log"
  curl -s -o /dev/null "http://127.0.0.1:$g_http/healthz" || true
  curl -s -o /dev/null "http://127.0.0.1:$g_http/no/such/route" || true
  echo "gateway health check: grpc-status $(grpc_call "$g_grpc" /grpc.health.v1.Health/Check)"
  curl -sf "http://127.0.0.1:$g_metrics/metrics" >"$work/gateway.metrics"
  started+=(gateway)
else
  echo "skip: $gateway is not built"
fi

# --- telemetry: its ingest, alarm and live-feed metrics, when it is built
telemetry=$build/services/telemetry/ptd-telemetry
if [ -x "$telemetry" ]; then
  m_grpc=$(free_port); m_metrics=$(free_port)
  PTD_GRPC_ADDRESS=127.0.0.1:$m_grpc PTD_METRICS_ADDRESS=127.0.0.1:$m_metrics PTD_PG_URL=$pg_url \
    PTD_REDIS_URL=$PTD_REDIS_URL PTD_INTERNAL_TOKEN=$token PTD_LOG_LEVEL=warn \
    "$telemetry" >"$work/telemetry.log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:$m_metrics/metrics" telemetry "$work/telemetry.log"
  echo "telemetry health check: grpc-status $(grpc_call "$m_grpc" /grpc.health.v1.Health/Check)"
  # ptd_telemetry_alarms_raised_total has a tenant label: it has a series only once an alarm is raised. So register
  # a plant, line, device and data point with a threshold rule, and ingest one sample above it (and one the data
  # point refuses, for result="rejected"). The requests are written in Protobuf text format and encoded by protoc.
  proto_path=(-I"$root/proto" -I/usr/share/gocode/src/github.com/gogo/googleapis -I/usr/include)
  telemetry_call() {  # telemetry_call METHOD REQUEST_TYPE TEXT: prints the answer's field 1 (the new object's id)
    local method=$1 type=$2 text=$3 out=$work/telemetry-$1
    printf '%s' "$text" | protoc "${proto_path[@]}" --encode="ptd.telemetry.v1.$type" ptd/telemetry/v1/telemetry.proto |
      python3 -c 'import struct, sys; d = sys.stdin.buffer.read(); sys.stdout.buffer.write(b"\0" + struct.pack(">I", len(d)) + d)' |
      curl -s --http2-prior-knowledge -o "$out.body" -D "$out.headers" -H 'content-type: application/grpc' \
        -H 'te: trailers' -H "x-ptd-internal-token: $token" -H "x-ptd-tenant: deploy-metrics" \
        -H "x-ptd-subject: ops" -H "x-ptd-roles: admin" --data-binary @- \
        "http://127.0.0.1:$m_grpc/ptd.telemetry.v1.TelemetryService/$method"
    if ! grep -qi '^grpc-status: 0' "$out.headers"; then
      echo "metrics_exported: telemetry $method failed:" >&2
      tr -d '\r' <"$out.headers" | grep -i '^grpc-' >&2
      return 1
    fi
    # Field 1 of the answer, read from the wire format itself: `protoc --decode_raw` prints a string that happens
    # to parse as a message (a random id can) as a nested message, and the id then came out empty.
    tail -c +6 "$out.body" | python3 -c '
import sys
d, i = sys.stdin.buffer.read(), 0
def varint():
    global i
    n = shift = 0
    while True:
        b = d[i]; i += 1; n |= (b & 0x7F) << shift; shift += 7
        if b < 0x80: return n
while i < len(d):
    key = varint(); field, wire = key >> 3, key & 7
    if wire == 0: varint()
    elif wire == 1: i += 8
    elif wire == 5: i += 4
    elif wire == 2:
        n = varint(); value = d[i:i + n]; i += n
        if field == 1: print(value.decode()); break
    else: sys.exit("unexpected wire type %d" % wire)
'
  }
  now_us=$(python3 -c 'import time; print(int(time.time() * 1e6))')
  plant=$(telemetry_call CreatePlant CreatePlantRequest 'idempotency_key: "p" plant { code: "DM-01" name: "deploy metrics" }')
  line=$(telemetry_call CreateLine CreateLineRequest \
    "idempotency_key: \"l\" plant_id: \"$plant\" line { code: \"L1\" name: \"line\" }")
  device=$(telemetry_call CreateDevice CreateDeviceRequest \
    "idempotency_key: \"d\" line_id: \"$line\" device { code: \"oven-1\" name: \"oven\" }")
  point=$(telemetry_call CreateDataPoint CreateDataPointRequest "idempotency_key: \"t\" device_id: \"$device\"
    point { code: \"temperature\" kind: POINT_KIND_SENSOR unit: \"C\" expected_interval_ms: 1000 max_value: 1000 }")
  telemetry_call CreateAlarmRule CreateAlarmRuleRequest "idempotency_key: \"r\" point_id: \"$point\"
    rule { name: \"too hot\" kind: ALARM_RULE_KIND_THRESHOLD severity: SEVERITY_WARNING high: 100 }" >/dev/null
  telemetry_call Ingest IngestRequest "series { device_id: \"$device\" point: \"temperature\"
    time_unix_us: [$((now_us - 1000000)), $now_us] values: [150, 5000] }" >/dev/null
  echo "telemetry: plant, line, device, data point and alarm rule created; one sample raised an alarm"
  curl -sf "http://127.0.0.1:$m_metrics/metrics" >"$work/telemetry.metrics"
  started+=(telemetry)
else
  echo "skip: $telemetry is not built"
fi

python3 - "$root" "$build" "$work" "${started[@]}" <<'PY'
import pathlib, re, sys
sys.path.insert(0, str(pathlib.Path(sys.argv[1]) / "tests/deploy"))
import metrics_used

root, build, work = (pathlib.Path(a) for a in sys.argv[1:4])
started = sys.argv[4:]
SERVICES = ["gateway", "trading", "erp", "warehouse", "logistics", "indices", "telemetry"]


def parse(text):
    """name -> list of label dicts (samples), with families declared by # TYPE (histograms expanded)."""
    series = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names = [name + s for s in ("_bucket", "_sum", "_count")] if kind == "histogram" else [name]
            for n in names:
                series.setdefault(n, [])
        elif line and not line.startswith("#"):
            m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s", line)
            if m:
                labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
                series.setdefault(m.group(1), []).append(labels)
    return series


scrapes = {name: parse((work / f"{name}.metrics").read_text()) for name in started}
# Labels Prometheus adds at scrape time (or the operator's relabelling).
ADDED = {"job", "instance", "namespace", "pod", "container", "service", "endpoint"}

exprs, recorded = metrics_used.expressions(root)
matchers = {}
for expr, where, _ in exprs:
    for metric, ms in metrics_used.selectors(expr):
        for label, op, value in ms:
            matchers.setdefault(metric, []).append((label, op, value, where))

ok = failed = skipped = 0
for metric, who, where in metrics_used.collect(root):
    if who == "recorded" or who.startswith("external:"):
        print(f"ok   {metric}: {who}")
        ok += 1
        continue
    if who == "common":
        sources = ["trading"]
    elif who == "consumers":
        sources = [s for s in started if metric in scrapes[s] and scrapes[s][metric]]
        if not sources:
            print(f"skip {metric}: no service started here consumes a stream yet")
            skipped += 1
            continue
    elif who in SERVICES:
        if who not in started:
            binary = build / "services" / who / f"ptd-{who}"
            if binary.exists():
                print(f"FAIL {metric}: {binary} is built but tests/deploy/metrics_exported.sh does not start it")
                failed += 1
            else:
                print(f"skip {metric}: {who} is not built")
                skipped += 1
            continue
        sources = [who]
    else:
        print(f"FAIL {metric}: unknown exporter {who}")
        failed += 1
        continue
    for s in sources:
        if metric not in scrapes[s]:
            print(f"FAIL {metric}: {s} does not export it (used in {', '.join(where)})")
            failed += 1
            continue
        samples = scrapes[s][metric]
        problems = []
        if samples:
            names = set().union(*(set(x) for x in samples))
            for label, op, value, w in matchers.get(metric, []):
                if label in ADDED:
                    continue
                if label not in names:
                    problems.append(f'label {label} (in {w}) is not on its series: {sorted(names)}')
                elif op == "=" and label == "le" and not any(x.get("le") == value for x in samples):
                    problems.append(f'no bucket le="{value}" (in {w})')
        if problems:
            for p in sorted(set(problems)):
                print(f"FAIL {metric} from {s}: {p}")
            failed += 1
        else:
            print(f"ok   {metric}: exported by {s}" + ("" if samples else " (declared; no series yet)"))
            ok += 1
print(f"metrics_exported: {ok} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
PY
