#!/usr/bin/env python3
"""The metric names that the alerting rules and the Grafana dashboards query, and who is to export each.

  metrics_used.py SOURCE_DIR                prints `metric<TAB>exporter<TAB>where` lines, sorted
  metrics_used.py SOURCE_DIR --check-source also checks that every metric owned by PTDCloud code appears as a
                                            string literal in libs/ or services/ (a fast, static check; the
                                            test deploy.metrics_exported scrapes the real binaries)

exporter is `common` (every service: gRPC server, pool, outbox, consumers), a service name for what only that
service exports, `external:<who>` for metrics of other programs, or `recorded` for the rules' own recordings.
"""
import json
import pathlib
import re
import sys

import yaml

# Who exports what, by name pattern. The first match wins.
EXPORTERS = [
    (r"grpc_server_.*", "common"),
    (r"ptd_db_.*", "common"),
    (r"ptd_outbox_.*", "common"),
    (r"ptd_consumer_.*", "consumers"),  # libs/outbox/consumer: only services that consume a stream
    (r"http_requests?_.*", "gateway"),
    (r"ptd_telemetry_.*", "telemetry"),
    (r"kube_.*", "external:kube-state-metrics"),
    (r"up", "external:prometheus"),
]

PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset",
    "inf", "nan", "le", "atan2",
}


def exporter_of(metric):
    for pattern, who in EXPORTERS:
        if re.fullmatch(pattern, metric):
            return who
    return None


def metric_names(expr):
    """Metric names in a PromQL expression: identifiers that are neither functions, keywords, label names in
    grouping clauses or matchers, nor durations. Good enough for the expressions we write; not a full parser."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)                 # string literals (matcher values)
    e = re.sub(r"\$\{?\w+\}?", "1", e)                            # Grafana variables ($__rate_interval, ${x})
    e = re.sub(r"\{[^{}]*\}", "", e)                               # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)                               # ranges and subqueries
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", e):
        word = m.group(0)
        rest = e[m.end():].lstrip()
        if rest.startswith("(") or word.lower() in PROMQL_WORDS:
            continue
        if m.start() > 0 and (e[m.start() - 1].isdigit() or e[m.start() - 1] == "."):
            continue  # 1e3, 0.5, 5m
        names.add(word)
    return names


def label_values_metric(query):
    m = re.match(r"\s*label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,", query)
    return {m.group(1)} if m else metric_names(query)


def expressions(source):
    """(PromQL expression, where, is_template_query) for every rule and dashboard query; plus the recorded names."""
    exprs, recorded = [], set()
    for path in sorted((source / "deploy/prometheus/rules").glob("*.yml")):
        doc = yaml.safe_load(path.read_text())
        for group in doc.get("groups", []):
            for rule in group.get("rules", []):
                if "record" in rule:
                    recorded.add(rule["record"])
                exprs.append((rule["expr"], f"{path.relative_to(source)}:{rule.get('alert') or rule.get('record')}", False))
    for path in sorted((source / "deploy/grafana/dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board.get("panels", []):
            for target in panel.get("targets", []):
                exprs.append((target.get("expr", ""), f"{path.relative_to(source)}:{panel['title']}", False))
        for var in board.get("templating", {}).get("list", []):
            q = var.get("query")
            if isinstance(q, dict):
                q = q.get("query", "")
            if var.get("type") == "query" and q:
                exprs.append((q, f"{path.relative_to(source)}:${var['name']}", True))
    return exprs, recorded


def selectors(expr):
    """(metric, [(label, op, value)]) for every `metric{...}` in an expression."""
    for m in re.finditer(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^{}]*)\}", expr):
        matchers = re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', m.group(2))
        yield m.group(1), matchers


def collect(source):
    exprs, recorded = expressions(source)
    used = {}   # metric -> set of places
    for expr, where, template in exprs:
        for n in (label_values_metric(expr) if template else metric_names(expr)):
            used.setdefault(n, set()).add(where)
    rows = []
    for metric in sorted(used):
        who = "recorded" if metric in recorded else exporter_of(metric)
        rows.append((metric, who or "UNKNOWN", sorted(used[metric])))
    return rows


def source_has(source, metric):
    """The family name as a string literal in libs/ or services/ (histograms: without _bucket/_sum/_count)."""
    base = re.sub(r"_(bucket|sum|count)$", "", metric)
    for root in ("libs", "services"):
        for path in (source / root).rglob("*.cc"):
            if path.name.endswith("_test.cc") or "_test_" in path.name:
                continue
            text = path.read_text(errors="replace")
            if f'"{metric}"' in text or f'"{base}"' in text:
                return str(path.relative_to(source))
    return None


def main():
    source = pathlib.Path(sys.argv[1]).resolve()
    rows = collect(source)
    if "--check-source" not in sys.argv:
        for metric, who, where in rows:
            print(f"{metric}\t{who}\t{' '.join(where)}")
        return 0
    failed = 0
    for metric, who, where in rows:
        if who == "UNKNOWN":
            print(f"FAIL {metric}: no known exporter (used in {', '.join(where)})")
            failed += 1
        elif who in ("recorded",) or who.startswith("external:"):
            print(f"ok   {metric}: {who}")
        else:
            found = source_has(source, metric)
            service_exists = who in ("common", "consumers") or (source / "services" / who / "main.cc").exists()
            if found:
                print(f"ok   {metric}: exported by {found}")
            elif not service_exists:
                print(f"skip {metric}: for {who}, which does not exist yet")
            else:
                print(f"FAIL {metric}: {who} exists but no source under libs/ or services/ names it "
                      f"(used in {', '.join(where)})")
                failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
