#!/usr/bin/env bash
# Adds a PTDCloud service to the kustomize tree, shaped like trading (the reference service):
#
#   k8s/new-service.sh NAME GRPC_PORT METRICS_PORT        e.g. k8s/new-service.sh erp 50052 9152
#
# Writes k8s/base/NAME/ (Deployment, Services, HPA, PDB, NetworkPolicy, migration Job, config.env), lists it in
# k8s/base/kustomization.yaml, and adds its image to both overlays and its database Secret to dev.
# Then do by hand what only you know (docs/operations.md, "Add a service"): who may call it (networkpolicy.yaml),
# what it calls, its prod Secret, and the Prometheus job, compose service and dashboard.
# tests/deploy/validate.sh runs this on a copy of k8s/ and validates the result.
set -euo pipefail
name=${1:?usage: new-service.sh NAME GRPC_PORT METRICS_PORT}
grpc_port=${2:?usage: new-service.sh NAME GRPC_PORT METRICS_PORT}
metrics_port=${3:?usage: new-service.sh NAME GRPC_PORT METRICS_PORT}
k8s=$(cd "$(dirname "$0")" && pwd)
[[ $name =~ ^[a-z][a-z0-9]*$ ]] || { echo "new-service: NAME must be lower-case letters and digits" >&2; exit 2; }
[ ! -e "$k8s/base/$name" ] || { echo "new-service: k8s/base/$name exists already" >&2; exit 1; }

mkdir "$k8s/base/$name"
for f in "$k8s"/base/trading/*; do
  sed -e "s/trading/$name/g" -e "s/50051/$grpc_port/g" -e "s/9151/$metrics_port/g" "$f" >"$k8s/base/$name/$(basename "$f")"
done
# Only the header line of kustomization.yaml describes trading itself.
sed -i "1s/.*/# $name: gRPC :$grpc_port, metrics :$metrics_port, PostgreSQL schema \`$name\`./" \
  "$k8s/base/$name/kustomization.yaml"

# List it in the base, after the last service.
python3 - "$k8s/base/kustomization.yaml" "$name" <<'PY'
import sys
path, name = sys.argv[1], sys.argv[2]
lines = open(path).read().splitlines()
last = max(i for i, l in enumerate(lines) if l.startswith("  - "))
lines.insert(last + 1, f"  - {name}")
open(path, "w").write("\n".join(lines) + "\n")
PY

# Its image in both overlays (after trading's line), and its dev database URL.
for overlay in dev prod; do
  sed -i "/{ name: ptd-trading,/{p;s/ptd-trading/ptd-$name/g}" "$k8s/overlays/$overlay/kustomization.yaml"
done
python3 - "$k8s/overlays/dev/kustomization.yaml" "$name" <<'PY'
import sys
path, name = sys.argv[1], sys.argv[2]
text = open(path).read()
anchor = "  - name: ptd-trading-db\n"
i = text.index(anchor)
j = text.index("\n", i + len(anchor)) + 1
block = text[i:j].replace("ptd-trading-db", f"ptd-{name}-db")
open(path, "w").write(text[:j] + block + text[j:])
PY

cat <<TXT
new-service: wrote k8s/base/$name/ and listed it in k8s/base/kustomization.yaml and both overlays. Now:
  - k8s/base/$name/networkpolicy.yaml: the pods that may call $name (the gateway already may);
  - k8s/base/<caller>/networkpolicy.yaml: if $name calls a sibling, allow it in that sibling's ingress;
  - prod: create the Secret ptd-$name-db (docs/operations.md, "Secrets");
  - deploy/prometheus/prometheus.yml: a job "$name" with target $name:$metrics_port; deploy/compose.yaml: the service;
  - deploy/generate.py: "$name" in SERVICES (and its own panels), then run it;
  - run tests/deploy/validate.sh (or ctest -R deploy).
TXT
