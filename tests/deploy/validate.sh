#!/usr/bin/env bash
# Checks everything under deploy/ and k8s/ with the real tools, offline (ctest: deploy.validate).
#
#   tests/deploy/validate.sh [WORK_DIR]     WORK_DIR keeps renders and the npm cache (default: a temporary folder)
#
# Needs kubectl (with kustomize v5), promtool (Debian: prometheus), node and npm, python3 with PyYAML; uses
# docker-compose (Debian: docker-compose) when present. npm installs the validators once into WORK_DIR (from its
# cache afterwards).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/tests/deploy
work=${1:-}
if [ -z "$work" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work/rendered"
passed=0 failed=0 skipped=0

step() {  # step NAME COMMAND...: runs one check, prints its output only when it fails
  local name=$1; shift
  local log="$work/step.log"
  if "$@" >"$log" 2>&1; then
    echo "ok   $name"; passed=$((passed + 1))
  else
    echo "FAIL $name"; sed 's/^/     /' "$log"; failed=$((failed + 1))
  fi
}
skip() { echo "skip $1"; skipped=$((skipped + 1)); }

need() {  # need COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "FAIL $1 is missing (install: $2)"; failed=$((failed + 1)); return 1
}
need kubectl "kubectl with kustomize v5 (this machine kind has it preinstalled)" || true
need promtool "apt-get install prometheus" || true
need node "apt-get install nodejs npm" || true
need npm "apt-get install nodejs npm" || true
need python3 "apt-get install python3 python3-yaml" || true
if [ "$failed" -ne 0 ]; then echo "$passed passed, $failed failed"; exit 1; fi

kustomize_v5() {
  local v
  v=$(kubectl version --client 2>/dev/null | sed -n 's/^Kustomize Version: v\([0-9]*\).*/\1/p')
  [ "${v:-0}" -ge 5 ] || { echo "kubectl bundles kustomize ${v:-?}; components need v5 (kubectl >= 1.27)"; return 1; }
}
step "kubectl bundles kustomize v5" kustomize_v5

# --- generated files are up to date
step "deploy/generate.py --check (dashboards, PrometheusRules, dashboard ConfigMaps)" \
  python3 "$root/deploy/generate.py" --check

# --- Kubernetes: render, then validate every object offline
render() { kubectl kustomize "$root/k8s/$1" >"$work/rendered/$2.yaml"; }
step "kubectl kustomize k8s/base" render base base
step "kubectl kustomize k8s/overlays/dev" render overlays/dev dev
step "kubectl kustomize k8s/overlays/prod" render overlays/prod prod

# The scaffold for the next service, on a copy of k8s/.
scaffold() {
  rm -rf "$work/k8s-scaffold" && cp -r "$root/k8s" "$work/k8s-scaffold" &&
    "$work/k8s-scaffold/new-service.sh" sample 50099 9199 >/dev/null &&
    kubectl kustomize "$work/k8s-scaffold/overlays/dev" >"$work/rendered/scaffold-dev.yaml" &&
    kubectl kustomize "$work/k8s-scaffold/overlays/prod" >"$work/rendered/scaffold-prod.yaml" &&
    grep -q 'name: sample$' "$work/rendered/scaffold-dev.yaml"
}
step "k8s/new-service.sh sample 50099 9199 renders" scaffold

npm_install() {
  local dir=$work/node
  mkdir -p "$dir"
  if [ -d "$dir/node_modules" ] && cmp -s "$here/package-lock.json" "$dir/package-lock.json"; then return 0; fi
  cp "$here/package.json" "$here/package-lock.json" "$dir/" &&
    (cd "$dir" && npm ci --no-audit --no-fund --prefer-offline --cache "$work/npm-cache")
}
step "npm ci (kubernetes-models, @kubernetes-models/prometheus-operator)" npm_install
validate_k8s() {
  cp "$here/validate-k8s.cjs" "$work/node/" &&
    (cd "$work/node" && node validate-k8s.cjs base="$work/rendered/base.yaml" dev="$work/rendered/dev.yaml" \
      prod="$work/rendered/prod.yaml" scaffold-dev="$work/rendered/scaffold-dev.yaml" \
      scaffold-prod="$work/rendered/scaffold-prod.yaml")
}
if [ -f "$work/rendered/scaffold-prod.yaml" ] && [ -d "$work/node/node_modules" ]; then
  step "rendered objects against the Kubernetes schemas and PTDCloud's rules" validate_k8s
  (cd "$work/node" && node validate-k8s.cjs dev="$work/rendered/dev.yaml" prod="$work/rendered/prod.yaml" 2>/dev/null |
    grep -v '^validate-k8s' | sed 's/^/     /')
else
  echo "FAIL rendered objects against the Kubernetes schemas: nothing to validate (see above)"; failed=$((failed + 1))
fi

# --- Prometheus
step "promtool check config deploy/prometheus/prometheus.yml (and its rules)" \
  promtool check config "$root/deploy/prometheus/prometheus.yml"
step "promtool check rules deploy/prometheus/rules/*.yml" promtool check rules "$root"/deploy/prometheus/rules/*.yml
step "promtool test rules tests/deploy/rules_test.yml" promtool test rules "$here/rules_test.yml"
rules_in_k8s() {  # the PrometheusRule objects hold rules promtool accepts
  python3 - "$work/rendered/prod.yaml" "$work/promrules" <<'PY'
import pathlib, sys, yaml
out = pathlib.Path(sys.argv[2]); out.mkdir(exist_ok=True)
n = 0
for doc in yaml.safe_load_all(open(sys.argv[1])):
    if doc and doc.get("kind") == "PrometheusRule":
        (out / f"{doc['metadata']['name']}.yml").write_text(yaml.safe_dump(doc["spec"])); n += 1
sys.exit(0 if n else 1)
PY
  promtool check rules "$work"/promrules/*.yml
}
step "PrometheusRule objects in the prod render pass promtool" rules_in_k8s

# --- Grafana and the metrics contract
dashboards() {
  python3 - "$root" <<'PY'
import json, pathlib, sys
root = pathlib.Path(sys.argv[1])
uids = {}
for p in sorted((root / "deploy/grafana/dashboards").glob("*.json")):
    d = json.loads(p.read_text())
    assert d["uid"] not in uids, f"{p.name}: uid {d['uid']} also in {uids.get(d['uid'])}"
    uids[d["uid"]] = p.name
    names = [v["name"] for v in d["templating"]["list"]]
    assert "datasource" in names, f"{p.name}: no datasource variable"
    for panel in d["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", f"{p.name}: {panel['title']}: fixed data source"
        assert panel["targets"] and all(t.get("expr") for t in panel["targets"]), f"{p.name}: {panel['title']}: no query"
        g = panel["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, f"{p.name}: {panel['title']}: off the grid"
print(f"{len(uids)} dashboards")
PY
}
step "Grafana dashboards parse (unique uids, a data source variable, a query per panel)" dashboards
step "every metric the rules and dashboards query is exported by the code (static)" \
  python3 "$here/metrics_used.py" "$root" --check-source

runbooks() {  # every alert links to its own runbook line in docs/operations.md
  python3 - "$root" <<'PY'
import pathlib, sys, yaml
root = pathlib.Path(sys.argv[1])
doc = (root / "docs/operations.md").read_text()
bad = []
for path in sorted((root / "deploy/prometheus/rules").glob("*.yml")):
    for group in yaml.safe_load(path.read_text())["groups"]:
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            name = rule["alert"]
            link = rule.get("annotations", {}).get("runbook", "")
            if link != f"docs/operations.md#{name.lower()}":
                bad.append(f"{name}: runbook annotation {link!r}")
            if f"\n### {name}\n" not in doc:
                bad.append(f"{name}: no '### {name}' in docs/operations.md")
print("\n".join(bad) or "every alert has its runbook line")
sys.exit(1 if bad else 0)
PY
}
step "every alert has a runbook line in docs/operations.md" runbooks

# --- Compose and images
compose_structure() {
  python3 - "$root" <<'PY'
import pathlib, re, sys, yaml
root = pathlib.Path(sys.argv[1])
compose = yaml.safe_load((root / "deploy/compose.yaml").read_text())
services = compose["services"]
prom = yaml.safe_load((root / "deploy/prometheus/prometheus.yml").read_text())
for job in prom["scrape_configs"]:
    for sc in job.get("static_configs", []):
        for target in sc["targets"]:
            host, port = target.split(":")
            if host == "localhost":
                continue
            assert host in services, f"prometheus.yml scrapes {host}, which compose does not run"
            env = services[host].get("environment", {})
            assert env.get("PTD_METRICS_ADDRESS", "").endswith(":" + port), f"{host} does not serve metrics on {port}"
            assert job["job_name"] == host, f"job {job['job_name']} should be named after {host}"
k8s_services = [p.name for p in (root / "k8s/base").iterdir() if p.is_dir() and p.name != "common"]
for name in k8s_services:
    assert name in services, f"k8s/base/{name} has no compose service"
    build = services[name].get("build", {})
    assert build.get("args", {}).get("SERVICE") == name, f"compose {name}: build arg SERVICE must be {name}"
    assert (root / "deploy" / build["context"] / build["dockerfile"]).exists(), f"compose {name}: no Dockerfile"
    assert any(j["job_name"] == name for j in prom["scrape_configs"]), f"prometheus.yml has no job {name}"
    cmake = root / "services" / name / "CMakeLists.txt"
    if cmake.exists():
        assert re.search(rf"add_executable\(ptd-{name}\b", cmake.read_text()), f"{cmake}: no target ptd-{name}"
gen = (root / "deploy/generate.py").read_text()
for name in k8s_services:
    assert f'"{name}":' in gen, f"deploy/generate.py: {name} is not in SERVICES"
print(f"compose runs {', '.join(sorted(services))}")
PY
}
step "compose, prometheus.yml, k8s/base and generate.py name the same services" compose_structure
if command -v docker-compose >/dev/null 2>&1; then
  step "docker-compose config (deploy/compose.yaml)" env PTD_PG_PASSWORD=x PTD_INTERNAL_TOKEN=x PTD_JWT_SECRET=x \
    docker-compose -f "$root/deploy/compose.yaml" config -q
else
  skip "docker-compose config (install: apt-get install docker-compose)"
fi
# The image's final stage installs what deploy/runtime-packages.sh finds for the binary: run it on the binaries
# of this build tree, where there are any.
build=${PTD_BUILD_DIR:-$root/build}
found=0
for bin in "$build"/services/*/ptd-*; do
  [ -x "$bin" ] || continue
  found=1
  step "deploy/runtime-packages.sh $(basename "$bin") (the image's runtime libraries)" \
    bash "$root/deploy/runtime-packages.sh" "$bin"
done
[ "$found" = 1 ] || skip "deploy/runtime-packages.sh: no service binary in $build"

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
