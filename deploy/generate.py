#!/usr/bin/env python3
"""Writes the files that are derived from others, so that each fact is stated once:

  deploy/grafana/dashboards/*.json      Grafana dashboards (built here: a platform overview and one per service)
  k8s/monitoring/prometheus-rules.yaml  deploy/prometheus/rules/*.yml as PrometheusRule objects
  k8s/monitoring/grafana-dashboards.yaml the dashboards as ConfigMaps for Grafana's dashboard sidecar

  deploy/generate.py          rewrite them
  deploy/generate.py --check  exit 1 if any is out of date (tests/deploy/validate.sh runs this)

To add a service: add it to SERVICES below (and its domain panels, if any), then run the script.
"""
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
DASHBOARDS = ROOT / "deploy/grafana/dashboards"
RULES = ROOT / "deploy/prometheus/rules"
MONITORING = ROOT / "k8s/monitoring"

# Every service that exists: name -> title. Keep in step with k8s/base and deploy/prometheus/prometheus.yml.
SERVICES = {
    "gateway": "Gateway",
    "trading": "Trading",
    "telemetry": "Telemetry",
}

NOT_PROBES = 'grpc_service!~"grpc[.]health[.]v1[.]Health|grpc[.]reflection[.].*"'
SERVER_ERRORS = 'grpc_code=~"Unknown|Internal|Unavailable|DataLoss|DeadlineExceeded"'
RATE = "$__rate_interval"


class Board:
    """A Grafana dashboard laid out left to right, top to bottom on the 24-column grid."""

    def __init__(self, uid, title, description, variables):
        self.uid, self.title, self.description = uid, title, description
        self.variables = variables
        self.panels = []
        self.x = self.y = 0
        self.row_height = 0

    def row(self, title):
        self._newline()
        self.panels.append({"type": "row", "title": title, "collapsed": False, "id": len(self.panels) + 1,
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}, "panels": []})
        self.y += 1

    def _newline(self):
        if self.x:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0

    def _place(self, w, h):
        if self.x + w > 24:
            self._newline()
        pos = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.x += w
        self.row_height = max(self.row_height, h)
        return pos

    def panel(self, kind, title, targets, unit="short", w=8, h=8, description="", thresholds=None, stack=False):
        panel = {
            "type": kind,
            "title": title,
            "description": description,
            "id": len(self.panels) + 1,
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "gridPos": self._place(w, h),
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {},
            "targets": [
                {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend,
                 "datasource": {"type": "prometheus", "uid": "${datasource}"}}
                for i, (expr, legend) in enumerate(targets)
            ],
        }
        if kind == "timeseries":
            panel["fieldConfig"]["defaults"]["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10,
                                                         "stacking": {"mode": "normal" if stack else "none"}}
            panel["options"] = {"legend": {"displayMode": "list", "placement": "bottom"},
                                "tooltip": {"mode": "multi"}}
        if kind == "stat":
            panel["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                                "colorMode": "background", "graphMode": "none"}
        if thresholds:
            panel["fieldConfig"]["defaults"]["thresholds"] = {
                "mode": "absolute",
                "steps": [{"color": "green", "value": None}] + [{"color": c, "value": v} for v, c in thresholds],
            }
        self.panels.append(panel)

    def json(self):
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["ptdcloud"],
            "timezone": "browser",
            "editable": True,
            "schemaVersion": 39,
            "version": 1,
            "refresh": "30s",
            "time": {"from": "now-6h", "to": "now"},
            "annotations": {"list": []},
            "links": [{"title": "PTDCloud", "type": "dashboards", "tags": ["ptdcloud"], "asDropdown": True}],
            "templating": {"list": self.variables},
            "panels": self.panels,
        }


def variables():
    return [
        {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
         "current": {}, "hide": 0, "refresh": 1},
        # Empty outside Kubernetes (compose): "All" (.*) then matches the missing label.
        {"name": "namespace", "label": "Namespace", "type": "query",
         "datasource": {"type": "prometheus", "uid": "${datasource}"},
         "query": {"query": "label_values(grpc_server_handled_total, namespace)", "refId": "namespace"},
         "definition": "label_values(grpc_server_handled_total, namespace)",
         "includeAll": True, "allValue": ".*", "multi": False, "current": {"text": "All", "value": "$__all"},
         "refresh": 2, "hide": 0, "sort": 1},
    ]


def red_panels(b, job):
    s = f'job="{job}",namespace=~"$namespace",{NOT_PROBES}'
    b.row("Requests, errors, duration (gRPC)")
    b.panel("timeseries", "Calls per second by method",
            [(f"sum by (grpc_method) (rate(grpc_server_handled_total{{{s}}}[{RATE}]))", "{{grpc_method}}")],
            unit="reqps", stack=True)
    b.panel("timeseries", "Calls per second by code",
            [(f"sum by (grpc_code) (rate(grpc_server_handled_total{{{s}}}[{RATE}]))", "{{grpc_code}}")],
            unit="reqps", stack=True,
            description="Caller mistakes (InvalidArgument, NotFound, ...) are normal; Internal, Unavailable, "
                        "Unknown, DataLoss and DeadlineExceeded are the service's.")
    b.panel("timeseries", "Server-side error ratio by method",
            [(f"sum by (grpc_method) (rate(grpc_server_handled_total{{{s},{SERVER_ERRORS}}}[{RATE}]))"
              f" / sum by (grpc_method) (rate(grpc_server_handled_total{{{s}}}[{RATE}]))", "{{grpc_method}}")],
            unit="percentunit", description="Alert PtdGrpcMethodErrorRateHigh at 5% for 10 minutes.")
    b.panel("timeseries", "Latency p50 / p95 / p99 (unary)",
            [(f'histogram_quantile({q}, sum by (le) (rate(grpc_server_handling_seconds_bucket{{{s},grpc_type="unary"}}[{RATE}])))',
              f"p{int(q * 100)}") for q in (0.5, 0.95, 0.99)],
            unit="s", w=12)
    b.panel("timeseries", "Latency p99 by method",
            [(f"histogram_quantile(0.99, sum by (grpc_method, le) (rate(grpc_server_handling_seconds_bucket{{{s}}}[{RATE}])))",
              "{{grpc_method}}")],
            unit="s", w=12)
    b.panel("stat", "Availability, last 1 day",
            [(f'1 - max(ptd:grpc_server_errors:ratio_rate1d{{job="{job}",namespace=~"$namespace"}})', "")],
            unit="percentunit", w=6, h=5, thresholds=[], description="SLO: 99.9% of calls without a server-side error.")
    b.panel("stat", "Calls within 250 ms, last 1 day",
            [(f'1 - max(ptd:grpc_server_slow:ratio_rate1d{{job="{job}",namespace=~"$namespace"}})', "")],
            unit="percentunit", w=6, h=5, description="SLO: 99% of unary calls within 250 ms.")
    b.panel("stat", "Error budget burn (1h)",
            [(f'max(ptd:grpc_server_errors:ratio_rate1h{{job="{job}",namespace=~"$namespace"}}) / 0.001', "")],
            unit="x", w=6, h=5, thresholds=[(1, "yellow"), (6, "orange"), (14.4, "red")],
            description="1 = the budget lasts exactly 30 days; 14.4 for an hour pages.")
    b.panel("stat", "Pods up",
            [(f'sum(up{{job="{job}",namespace=~"$namespace"}})', "")], w=6, h=5)


def storage_panels(b, job):
    s = f'job="{job}",namespace=~"$namespace"'
    b.row("PostgreSQL pool")
    b.panel("timeseries", "Connections by state, and the pool size",
            [(f"sum by (state) (ptd_db_pool_connections{{{s}}})", "{{state}}"),
             (f"sum(ptd_db_pool_size{{{s}}})", "size (all pods)")],
            description="Alert PtdDbPoolSaturated at 90% in use for 10 minutes.")
    b.panel("timeseries", "Wait for a connection p99",
            [(f"histogram_quantile(0.99, sum by (le) (rate(ptd_db_pool_wait_seconds_bucket{{{s}}}[{RATE}])))", "p99"),
             (f"sum(rate(ptd_db_pool_wait_seconds_sum{{{s}}}[{RATE}])) / sum(rate(ptd_db_pool_wait_seconds_count{{{s}}}[{RATE}]))",
              "mean")],
            unit="s")
    b.panel("timeseries", "Transactions by result",
            [(f"sum by (result) (rate(ptd_db_transactions_total{{{s}}}[{RATE}]))", "{{result}}")], unit="ops",
            description="retry: serialization failures retried; error: failed for good.")
    b.row("Domain events (outbox)")
    b.panel("timeseries", "Events published per second by stream",
            [(f"sum by (stream) (rate(ptd_outbox_published_total{{{s}}}[{RATE}]))", "{{stream}}")], unit="ops")
    b.panel("timeseries", "Events waiting in the outbox",
            [(f"sum by (stream) (ptd_outbox_pending{{{s}}})", "{{stream}}")])
    b.panel("timeseries", "Oldest unpublished event",
            [(f"max(ptd_outbox_oldest_pending_seconds{{{s}}})", "age")], unit="s",
            description="Alert PtdOutboxOldestEventStale over 60 s for 5 minutes.")
    b.panel("timeseries", "Relay rounds by what started them",
            [(f"sum by (trigger) (rate(ptd_outbox_relay_rounds_total{{{s}}}[{RATE}]))", "{{trigger}}")], unit="ops",
            description="wake: a commit of this process woke the relay (no NOTIFY); notify: another replica's "
                        "commit; timer: the poll interval; backlog: the round before was full.")


def consumer_panels(b, job):
    s = f'job="{job}",namespace=~"$namespace"'
    b.row("Consumed events")
    b.panel("timeseries", "Applied per second by stream and group",
            [(f"sum by (stream, group) (rate(ptd_consumer_applied_total{{{s}}}[{RATE}]))", "{{stream}} / {{group}}"),
             (f"sum(rate(ptd_consumer_duplicates_total{{{s}}}[{RATE}]))", "duplicates (already in the inbox)")],
            unit="ops")
    b.panel("timeseries", "Lag by stream and group",
            [(f"max by (stream, group) (ptd_consumer_lag{{{s}}})", "{{stream}} / {{group}}"),
             (f"sum(ptd_consumer_pending{{{s}}})", "delivered, not acknowledged")])


def method_rate(job, methods, code="OK"):
    return (f'sum by (grpc_method) (rate(grpc_server_handled_total{{job="{job}",namespace=~"$namespace",'
            f'grpc_method=~"{"|".join(methods)}",grpc_code="{code}"}}[{RATE}])) * 60')


def trading_domain(b):
    b.row("Marketplace")
    b.panel("timeseries", "Listings created and updated per minute",
            [(method_rate("trading", ["CreateListing", "UpdateListing"]), "{{grpc_method}}")], unit="short", w=8)
    b.panel("timeseries", "Stale updates per minute (optimistic concurrency)",
            [(method_rate("trading", ["UpdateListing"], "Aborted"), "ABORTED")], w=8,
            description="UpdateListing with an old expected_version: two people editing one listing.")
    b.panel("timeseries", "Catalogue and listing reads per minute",
            [(method_rate("trading", ["GetCommodity", "ListCommodities", "GetListing", "ListListings",
                                      "ListVerticals"]), "{{grpc_method}}")], w=8, stack=True)
    b.panel("timeseries", "Idempotency-key conflicts per minute",
            [(method_rate("trading", ["CreateListing", "CreateCommodity"], "AlreadyExists"), "{{grpc_method}}")],
            w=12, description="A reused idempotency key with a different request.")
    b.panel("timeseries", "Rejected input per minute",
            [(method_rate("trading", [".*"], "InvalidArgument"), "{{grpc_method}}")], w=12)


def gateway_domain(b):
    s = 'job="gateway",namespace=~"$namespace"'
    b.row("HTTP (what apps see)")
    b.panel("timeseries", "Requests per second by route",
            [(f"sum by (route) (rate(http_requests_total{{{s}}}[{RATE}]))", "{{route}}")], unit="reqps", stack=True)
    b.panel("timeseries", "Requests per second by status code",
            [(f"sum by (code) (rate(http_requests_total{{{s}}}[{RATE}]))", "{{code}}")], unit="reqps", stack=True)
    b.panel("timeseries", "5xx ratio by route",
            [(f'sum by (route) (rate(http_requests_total{{{s},code=~"5.."}}[{RATE}])) / '
              f"sum by (route) (rate(http_requests_total{{{s}}}[{RATE}]))", "{{route}}")], unit="percentunit")
    b.panel("timeseries", "Latency p99 by route",
            [(f"histogram_quantile(0.99, sum by (route, le) (rate(http_request_duration_seconds_bucket{{{s}}}[{RATE}])))",
              "{{route}}")], unit="s", w=12)
    b.panel("timeseries", "Logins, rate limits and auth failures per minute",
            [(f'sum by (code) (rate(http_requests_total{{{s},code=~"401|403|429"}}[{RATE}])) * 60', "{{code}}")],
            w=12, description="429: a tenant or API key over its rate limit; 401: bad or expired credentials.")


def telemetry_domain(b):
    s = 'job="telemetry",namespace=~"$namespace"'
    b.row("Ingest")
    b.panel("timeseries", "Samples per second by result",
            [(f"sum by (result) (rate(ptd_telemetry_samples_total{{{s}}}[{RATE}]))", "{{result}}")],
            unit="ops", stack=True,
            description="accepted: stored now; duplicate: already stored (an edge gateway's retry); rejected: "
                        "unknown device or point, out of range, NaN, outside the late window or future tolerance.")
    b.panel("timeseries", "Ingest batch latency p50 / p95 / p99",
            [(f"histogram_quantile({q}, sum by (le) (rate(ptd_telemetry_ingest_batch_seconds_bucket{{{s}}}[{RATE}])))",
              f"p{int(q * 100)}") for q in (0.5, 0.95, 0.99)],
            unit="s", description="Checks, transaction (samples, rollups, alarms) and commit of one batch, unary "
                                  "or streamed. Alert PtdTelemetryIngestSlow at p99 over 1 s for 15 minutes.")
    b.panel("timeseries", "Samples per batch p50 / p99",
            [(f"histogram_quantile({q}, sum by (le) (rate(ptd_telemetry_ingest_batch_samples_bucket{{{s}}}[{RATE}])))",
              f"p{int(q * 100)}") for q in (0.5, 0.99)],
            description="Large batches are an edge gateway catching up after an outage (PTD_MAX_BATCH_SAMPLES caps them).")
    b.row("Alarms and live feed")
    b.panel("timeseries", "Alarms raised per minute by tenant (top 10)",
            [(f"topk(10, sum by (tenant) (rate(ptd_telemetry_alarms_raised_total{{{s}}}[{RATE}])) * 60)",
              "{{tenant}}")],
            w=12, description="Alert PtdTelemetryAlarmStorm at 100 in 5 minutes for one tenant.")
    b.panel("timeseries", "Live publish failures per minute",
            [(f"sum(rate(ptd_telemetry_live_publish_failures_total{{{s}}}[{RATE}])) * 60", "failures")],
            w=12, description="Failed Redis writes of latest values or live updates: the samples are stored, but "
                              "GetLatest may answer older values and WatchLive misses updates. "
                              "Alert PtdTelemetryLivePublishFailing.")


DOMAIN = {"trading": trading_domain, "gateway": gateway_domain, "telemetry": telemetry_domain}


def service_board(name, title):
    b = Board(f"ptd-{name}", f"PTDCloud / {title}",
              f"{title}: RED metrics of its gRPC API, its PostgreSQL pool and outbox, and its own figures.",
              variables())
    if name in DOMAIN:
        DOMAIN[name](b)
    red_panels(b, name)
    storage_panels(b, name)
    consumer_panels(b, name)
    return b.json()


def overview_board():
    b = Board("ptd-overview", "PTDCloud / Platform overview",
              "Every service at a glance: traffic, errors, latency, events and the pods.", variables())
    ns = 'namespace=~"$namespace"'
    s = f"{ns},{NOT_PROBES}"
    b.row("Services")
    b.panel("stat", "Targets up", [(f'sum by (job) (up{{{ns},job!="prometheus"}})', "{{job}}")], w=24, h=4,
            thresholds=[])
    b.panel("timeseries", "Calls per second by service",
            [(f"sum by (job) (rate(grpc_server_handled_total{{{s}}}[{RATE}]))", "{{job}}")], unit="reqps")
    b.panel("timeseries", "Server-side error ratio by service",
            [(f"sum by (job) (rate(grpc_server_handled_total{{{s},{SERVER_ERRORS}}}[{RATE}])) / "
              f"sum by (job) (rate(grpc_server_handled_total{{{s}}}[{RATE}]))", "{{job}}")], unit="percentunit")
    b.panel("timeseries", "Latency p99 by service (unary)",
            [(f'histogram_quantile(0.99, sum by (job, le) (rate(grpc_server_handling_seconds_bucket{{{s},grpc_type="unary"}}[{RATE}])))',
              "{{job}}")], unit="s")
    b.panel("timeseries", "Error budget burn rate (1h) by service",
            [(f"ptd:grpc_server_errors:ratio_rate1h{{{ns}}} / 0.001", "{{job}} availability"),
             (f"ptd:grpc_server_slow:ratio_rate1h{{{ns}}} / 0.01", "{{job}} latency")], unit="x", w=12,
            description="1 spends the 30-day budget in 30 days; 14.4 sustained for an hour pages.")
    b.panel("timeseries", "Gateway HTTP requests by status code",
            [(f'sum by (code) (rate(http_requests_total{{{ns},job="gateway"}}[{RATE}]))', "{{code}}")],
            unit="reqps", w=12, stack=True)
    b.row("Data and events")
    b.panel("timeseries", "PostgreSQL pool use by service",
            [(f'sum by (job) (ptd_db_pool_connections{{{ns},state="in_use"}}) / sum by (job) (ptd_db_pool_size{{{ns}}})',
              "{{job}}")], unit="percentunit")
    b.panel("timeseries", "Oldest unpublished outbox event by service",
            [(f"max by (job) (ptd_outbox_oldest_pending_seconds{{{ns}}})", "{{job}}")], unit="s")
    b.panel("timeseries", "Consumer lag by stream and group",
            [(f"max by (stream, group) (ptd_consumer_lag{{{ns}}})", "{{stream}} / {{group}}")])
    b.row("Pods and devices")
    b.panel("timeseries", "Container restarts (1h) by pod",
            [(f'sum by (pod) (increase(kube_pod_container_status_restarts_total{{{ns},container=~"{"|".join(SERVICES)}|migrate"}}[1h]))',
              "{{pod}}")], w=12, description="From kube-state-metrics; empty outside Kubernetes.")
    b.panel("timeseries", "Telemetry alarms raised per minute by tenant",
            [(f"sum by (tenant) (rate(ptd_telemetry_alarms_raised_total{{{ns}}}[{RATE}])) * 60", "{{tenant}}")],
            w=12, description="Empty until the telemetry service runs. Alert PtdTelemetryAlarmStorm.")
    return b.json()


def dashboards():
    out = {"platform-overview.json": overview_board()}
    for name, title in SERVICES.items():
        out[f"{name}.json"] = service_board(name, title)
    return {DASHBOARDS / k: json.dumps(v, indent=2, sort_keys=True) + "\n" for k, v in out.items()}


HEADER = "# Generated by deploy/generate.py from {}: edit that, then run the script.\n"


def prometheus_rules():
    docs = []
    for path in sorted(RULES.glob("*.yml")):
        body = "".join("  " + line if line.strip() else line for line in path.read_text().splitlines(True))
        docs.append(f"""apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: ptdcloud-{path.stem}
  labels:
    # kube-prometheus-stack selects rules by its release label; adjust to your Prometheus' ruleSelector.
    release: kube-prometheus-stack
spec:
{body}""")
    return {MONITORING / "prometheus-rules.yaml": HEADER.format("deploy/prometheus/rules/*.yml") + "---\n".join(docs)}


def grafana_configmaps(boards):
    docs = []
    for path, text in sorted(boards.items()):
        body = "".join("    " + line for line in text.splitlines(True))
        docs.append(f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: grafana-dashboard-ptd-{path.stem}
  labels:
    # Grafana's dashboard sidecar (kube-prometheus-stack) loads ConfigMaps with this label.
    grafana_dashboard: "1"
  annotations:
    grafana_folder: PTDCloud
data:
  {path.name}: |
{body}""")
    return {MONITORING / "grafana-dashboards.yaml": HEADER.format("deploy/generate.py") + "---\n".join(docs)}


def main():
    check = sys.argv[1:] == ["--check"]
    boards = dashboards()
    files = {**boards, **prometheus_rules(), **grafana_configmaps(boards)}
    stale = [p for p, text in files.items() if not p.exists() or p.read_text() != text]
    if check:
        for p in stale:
            print(f"generate: {p.relative_to(ROOT)} is out of date: run deploy/generate.py", file=sys.stderr)
        return 1 if stale else 0
    for p in stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(files[p])
        print(f"generate: wrote {p.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
