// Validates rendered Kubernetes manifests offline.
//
//   node validate-k8s.cjs NAME=RENDERED.yaml ...
//
// For every object:
//   1. the Kubernetes OpenAPI schema of its kind (npm kubernetes-models; the Prometheus Operator's CRDs from
//      @kubernetes-models/prometheus-operator): types, required fields, formats;
//   2. no unknown fields (a typo such as `readinesProbe` passes the schemas, which allow extra properties), from the
//      field lists in the same packages' type declarations;
// and for every render, the rules PTDCloud's manifests promise (docs/operations.md): hardened pods, gRPC probes on
// the grpc port, a termination grace longer than the service's own shutdown, Services that select pods and name
// ports that exist, references to ConfigMaps and Secrets that exist, a PDB and NetworkPolicies for every server.
"use strict";
const fs = require("fs");
const path = require("path");
const yaml = require("js-yaml");

const failures = [];
const fail = (where, message) => failures.push(`${where}: ${message}`);

// --- 1. Schema -------------------------------------------------------------------------------------------------
function modelClass(apiVersion, kind) {
  const candidates = [];
  if (apiVersion.startsWith("monitoring.coreos.com/")) {
    candidates.push(`@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`);
  } else {
    candidates.push(`kubernetes-models/${apiVersion}/${kind}`);
  }
  for (const c of candidates) {
    try {
      const mod = require(c);
      if (mod[kind]) return mod[kind];
    } catch (e) {
      if (e.code !== "MODULE_NOT_FOUND" && e.code !== "ERR_PACKAGE_PATH_NOT_EXPORTED") throw e;
    }
  }
  return null;
}

// --- 2. Unknown fields, from the .d.ts interfaces: `export interface IProbe { "grpc"?: IIoK8sApiCoreV1GRPCAction; }`
// and `export { IProbe as IIoK8sApiCoreV1Probe, ... }`.
const interfaces = new Map(); // exported name -> Map(field -> type text)
function loadDeclarations(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== "node_modules") loadDeclarations(p);
      continue;
    }
    if (!entry.name.endsWith(".d.ts")) continue;
    const text = fs.readFileSync(p, "utf8");
    const local = new Map();
    const re = /export interface (\w+)(?: extends [\w, ]+)? \{([^]*?)\n\}/g;
    let m;
    while ((m = re.exec(text))) {
      const body = m[2].replace(/\/\*\*[^]*?\*\//g, "");
      // Only flat interfaces: a field whose type is an inline object literal makes the field list unreliable.
      const fields = new Map();
      let flat = true;
      for (const line of body.split("\n")) {
        const f = line.match(/^ {4}"([^"]+)"\??: (.*)$/);
        if (f) fields.set(f[1], f[2].endsWith(";") ? f[2].slice(0, -1) : "map"); // `{ [key: string]: T; }` over lines
        else if (/^ {4}\S/.test(line) && !/^ {4}\};?$/.test(line)) flat = false;
      }
      if (flat) local.set(m[1], fields);
    }
    const alias = /export \{([^}]*)\}/g;
    while ((m = alias.exec(text))) {
      for (const part of m[1].split(",")) {
        const a = part.trim().match(/^(\w+) as (\w+)$/);
        if (a && local.has(a[1])) interfaces.set(a[2], local.get(a[1]));
      }
    }
    for (const [name, fields] of local) if (!interfaces.has(name)) interfaces.set(name, fields);
  }
}

function checkFields(value, type, where) {
  if (value === null || value === undefined) return;
  type = type.trim();
  const array = type.match(/^Array<(.+)>$/);
  if (array) {
    if (Array.isArray(value)) value.forEach((v, i) => checkFields(v, array[1], `${where}[${i}]`));
    return;
  }
  const fields = interfaces.get(type);
  if (!fields || typeof value !== "object" || Array.isArray(value)) return;
  for (const key of Object.keys(value)) {
    if (!fields.has(key)) fail(where, `unknown field "${key}" (${type.replace(/^IIoK8s(Api)?/, "")})`);
    else checkFields(value[key], fields.get(key), `${where}.${key}`);
  }
}

function topInterface(apiVersion, kind) {
  const group = apiVersion.includes("/") ? apiVersion.split("/")[0] : "core";
  const version = apiVersion.split("/").pop();
  const camel = (s) => s.split(/[.-]/).filter((x) => x && !["k8s", "io"].includes(x))
    .map((x) => x[0].toUpperCase() + x.slice(1)).join("");
  const name = `IIoK8sApi${group === "core" ? "Core" : camel(group)}${version[0].toUpperCase()}${version.slice(1)}${kind}`;
  return interfaces.has(name) ? name : null;
}

// --- 3. PTDCloud's own rules --------------------------------------------------------------------------------------
function seconds(duration) {
  const m = String(duration).match(/^(\d+(?:\.\d+)?)(ms|s|m|h)$/);
  if (!m) return NaN;
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2]];
}

function matches(selector, labels) {
  return Object.entries(selector || {}).every(([k, v]) => labels && labels[k] === v);
}

function checkRender(name, objects) {
  const byKind = (kind) => objects.filter((o) => o.kind === kind);
  const configMaps = new Map(byKind("ConfigMap").map((o) => [o.metadata.name, o]));
  const secrets = new Set(byKind("Secret").map((o) => o.metadata.name));
  const external = new Set();
  const ptd = (o) => (o.metadata.labels || {})["app.kubernetes.io/part-of"] === "ptdcloud";

  const workloads = [...byKind("Deployment"), ...byKind("StatefulSet"), ...byKind("Job")];
  for (const w of workloads) {
    const where = `${name}: ${w.kind}/${w.metadata.name}`;
    const pod = w.spec.template.spec;
    const psc = pod.securityContext || {};
    if (psc.runAsNonRoot !== true) fail(where, "pod securityContext.runAsNonRoot must be true");
    if (!psc.seccompProfile || psc.seccompProfile.type !== "RuntimeDefault") fail(where, "seccompProfile must be RuntimeDefault");
    for (const c of pod.containers) {
      const cw = `${where} container ${c.name}`;
      const sc = c.securityContext || {};
      if (sc.allowPrivilegeEscalation !== false) fail(cw, "allowPrivilegeEscalation must be false");
      if (sc.readOnlyRootFilesystem !== true) fail(cw, "readOnlyRootFilesystem must be true");
      if (!sc.capabilities || JSON.stringify(sc.capabilities.drop) !== '["ALL"]') fail(cw, "capabilities must drop ALL");
      if (!c.resources || !c.resources.requests || !c.resources.limits || !c.resources.limits.memory) {
        fail(cw, "resources need requests and a memory limit");
      }
      // The base names bare images on purpose: every overlay sets registry and tag (`images:`).
      const tagged = c.image.includes(":") || c.image.includes("@");
      if (/:latest$/.test(c.image) || (!tagged && name !== "base")) fail(cw, `image ${c.image} needs a tag other than latest`);
      // References.
      const env = {};
      for (const from of c.envFrom || []) {
        if (from.configMapRef) {
          const cm = configMaps.get(from.configMapRef.name);
          if (!cm) fail(cw, `envFrom ConfigMap ${from.configMapRef.name} is not in the render`);
          else Object.assign(env, cm.data);
        }
        if (from.secretRef && !secrets.has(from.secretRef.name)) external.add(from.secretRef.name);
      }
      for (const e of c.env || []) {
        const ref = e.valueFrom && e.valueFrom.secretKeyRef;
        if (ref && !secrets.has(ref.name)) external.add(ref.name);
        const cmRef = e.valueFrom && e.valueFrom.configMapKeyRef;
        if (cmRef && !configMaps.has(cmRef.name)) fail(cw, `ConfigMap ${cmRef.name} is not in the render`);
        if (e.value !== undefined) env[e.name] = e.value;
      }
      if (!ptd(w) || w.kind !== "Deployment") continue;
      // A PTDCloud server: gRPC probes on its grpc port, and time to stop gracefully.
      const grpcPort = (c.ports || []).find((p) => p.name === "grpc");
      const metricsPort = (c.ports || []).find((p) => p.name === "metrics");
      if (!grpcPort || !metricsPort) { fail(cw, "needs container ports named grpc and metrics"); continue; }
      for (const probe of ["readinessProbe", "livenessProbe", "startupProbe"]) {
        const p = c[probe];
        if (!p || !p.grpc) fail(cw, `${probe} must be a native gRPC probe`);
        else if (p.grpc.port !== grpcPort.containerPort) fail(cw, `${probe} probes port ${p.grpc.port}, not the grpc port ${grpcPort.containerPort}`);
      }
      for (const key of ["PTD_GRPC_ADDRESS", "PTD_METRICS_ADDRESS"]) {
        const port = key === "PTD_GRPC_ADDRESS" ? grpcPort : metricsPort;
        if (!env[key] || !env[key].endsWith(`:${port.containerPort}`)) fail(cw, `${key}=${env[key]} does not listen on ${port.containerPort}`);
        else if (env[key].startsWith("127.") || env[key].startsWith("localhost")) fail(cw, `${key}=${env[key]} listens on loopback only`);
      }
      const stop = seconds(env.PTD_SHUTDOWN_GRACE) + seconds(env.PTD_DRAIN_TIMEOUT);
      if (!(pod.terminationGracePeriodSeconds > stop)) {
        fail(where, `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} must exceed PTD_SHUTDOWN_GRACE + PTD_DRAIN_TIMEOUT (${stop}s)`);
      }
      for (const key of ["PTD_PG_URL", "PTD_REDIS_URL", "PTD_INTERNAL_TOKEN"]) {
        const e = (c.env || []).find((x) => x.name === key);
        if (!e || !e.valueFrom || !e.valueFrom.secretKeyRef) fail(cw, `${key} must come from a Secret`);
      }
    }
  }

  // Services select pods and name ports that exist.
  const podsOf = (selector) => workloads.filter((w) => matches(selector, w.spec.template.metadata.labels));
  for (const s of byKind("Service")) {
    if (s.spec.type === "ExternalName") continue;
    const where = `${name}: Service/${s.metadata.name}`;
    const pods = podsOf(s.spec.selector);
    if (pods.length === 0) { fail(where, "selects no pods"); continue; }
    if (pods.some((w) => w.kind === "Job")) fail(where, "selects migration Job pods");
    for (const port of s.spec.ports) {
      if (typeof port.targetPort !== "string") continue;
      const ok = pods.every((w) => w.spec.template.spec.containers.some((c) => (c.ports || []).some((p) => p.name === port.targetPort)));
      if (!ok) fail(where, `targetPort ${port.targetPort} is not a named container port`);
    }
  }

  // Every PTDCloud server: a Service with grpc and metrics ports, a PDB, a NetworkPolicy of its own; HPAs and
  // Ingresses point at what exists.
  const servers = byKind("Deployment").filter(ptd);
  for (const d of servers) {
    const where = `${name}: Deployment/${d.metadata.name}`;
    const labels = d.spec.template.metadata.labels;
    const svc = byKind("Service").find((s) => s.metadata.name === d.metadata.name);
    if (!svc) fail(where, "has no Service of the same name");
    else for (const port of ["grpc", "metrics"]) {
      if (!svc.spec.ports.some((p) => p.name === port)) fail(where, `its Service has no port named ${port}`);
    }
    if (!byKind("PodDisruptionBudget").some((p) => matches(p.spec.selector.matchLabels, labels))) fail(where, "has no PodDisruptionBudget");
    const own = byKind("NetworkPolicy").filter((p) => p.spec.podSelector.matchLabels &&
      p.spec.podSelector.matchLabels["app.kubernetes.io/name"] === labels["app.kubernetes.io/name"]);
    if (own.length === 0) fail(where, "has no NetworkPolicy of its own");
    const hpa = byKind("HorizontalPodAutoscaler").find((h) => h.spec.scaleTargetRef.name === d.metadata.name);
    if (!hpa && d.spec.replicas === undefined) fail(where, "neither an HPA nor replicas");
    if (hpa && d.spec.replicas !== undefined) fail(where, "sets replicas although an HPA owns the count");
    const job = byKind("Job").find((j) => j.metadata.name === `${d.metadata.name}-migrate`);
    if (!job) fail(where, `has no migration Job ${d.metadata.name}-migrate`);
    else if (!(job.spec.template.spec.containers[0].args || []).includes("--migrate-only=true")) fail(where, "its migration Job does not pass --migrate-only=true");
    else if (job.spec.template.spec.containers[0].image !== d.spec.template.spec.containers[0].image) fail(where, "its migration Job runs another image");
  }
  for (const h of byKind("HorizontalPodAutoscaler")) {
    if (!servers.some((d) => d.metadata.name === h.spec.scaleTargetRef.name)) fail(`${name}: HPA/${h.metadata.name}`, "targets no Deployment");
    if (h.spec.minReplicas > h.spec.maxReplicas) fail(`${name}: HPA/${h.metadata.name}`, "minReplicas > maxReplicas");
  }
  for (const i of byKind("Ingress")) {
    for (const rule of i.spec.rules) for (const p of rule.http.paths) {
      const svc = byKind("Service").find((s) => s.metadata.name === p.backend.service.name);
      if (!svc || !svc.spec.ports.some((port) => port.name === p.backend.service.port.name)) {
        fail(`${name}: Ingress/${i.metadata.name}`, `backend ${p.backend.service.name}:${p.backend.service.port.name} does not exist`);
      }
    }
  }
  const deny = byKind("NetworkPolicy").find((p) => Object.keys(p.spec.podSelector).length === 0 &&
    !p.spec.ingress && !p.spec.egress && p.spec.policyTypes.includes("Ingress") && p.spec.policyTypes.includes("Egress"));
  if (!deny) fail(name, "no default-deny NetworkPolicy");
  if (objects.some((o) => o.kind !== "Namespace" && o.metadata.namespace === undefined) && objects.some((o) => o.metadata.namespace)) {
    fail(name, "some objects have a namespace and others none");
  }
  return [...external];
}

// --- main ---------------------------------------------------------------------------------------------------------
const here = path.dirname(require.resolve("kubernetes-models/package.json"));
loadDeclarations(here);
loadDeclarations(path.dirname(require.resolve("@kubernetes-models/apimachinery/package.json")));
loadDeclarations(path.dirname(require.resolve("@kubernetes-models/prometheus-operator/package.json")));

let total = 0;
for (const arg of process.argv.slice(2)) {
  const [name, file] = arg.split("=");
  const objects = yaml.loadAll(fs.readFileSync(file, "utf8")).filter(Boolean);
  const kinds = {};
  for (const o of objects) {
    const where = `${name}: ${o.kind}/${o.metadata && o.metadata.name}`;
    kinds[o.kind] = (kinds[o.kind] || 0) + 1;
    // kustomize wraps long base64 values over lines, which the API server's decoder accepts; the schema's "byte"
    // format does not.
    if (o.kind === "Secret" && o.data) for (const k of Object.keys(o.data)) o.data[k] = o.data[k].replace(/\s+/g, "");
    const Model = modelClass(o.apiVersion, o.kind);
    if (!Model) { fail(where, `no schema for ${o.apiVersion} ${o.kind}`); continue; }
    try {
      new Model(o).validate();
    } catch (e) {
      fail(where, `schema: ${e.message}`);
    }
    const top = topInterface(o.apiVersion, o.kind);
    if (top) checkFields(o, top, where);
  }
  const external = checkRender(name, objects);
  total += objects.length;
  console.log(`${name}: ${objects.length} objects (${Object.entries(kinds).map(([k, n]) => `${n} ${k}`).join(", ")})`);
  if (external.length) console.log(`${name}: Secrets provided outside the render: ${external.sort().join(", ")}`);
}
for (const f of failures) console.log(`FAIL ${f}`);
console.log(`validate-k8s: ${total} objects, ${failures.length} problems`);
process.exit(failures.length ? 1 : 0);
