/**
 * k8s/ (issue 12, part 3): every manifest validates against its kubernetes-models schema, the kustomizations list
 * exactly their files, and the objects agree with each other and with meshlens itself (selectors, port names,
 * settings meshlens reads, probes, security context, the generated rules and dashboards, the Istio providers).
 * There is no cluster here: this is what can be checked without one.
 *
 * Each consistency check is a function returning a list of problems, so besides passing on the committed files
 * it is shown to fail on a broken copy of them (the "catches" tests).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { loadConfig } from '../lib/runtime';
import { RULE_FILE_PATHS, dashboardFiles } from '../services/provisioner';
import { binaryOrSkip, runTool } from './support/prometheus';

const ROOT = join(__dirname, '..');
const K8S = join(ROOT, 'k8s');
const BASE = 'k8s/base';
const ISTIO = 'k8s/istio';
/** Not Kubernetes objects: kustomizations (checked on their own) and the istiod chart's values. */
const HELM_VALUES = `${ISTIO}/istiod-values.yaml`;

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
interface Doc {
  file: string;
  index: number;
  obj: Obj;
}

function yamlFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...yamlFiles(p));
    else if (/\.ya?ml$/.test(e.name)) out.push(relative(ROOT, p).split(sep).join('/'));
  }
  return out.sort();
}

function loadDocs(): { docs: Doc[]; errors: string[] } {
  const docs: Doc[] = [];
  const errors: string[] = [];
  for (const file of yamlFiles(K8S)) {
    parseAllDocuments(readFileSync(join(ROOT, file), 'utf8')).forEach((d, index) => {
      if (d.errors.length > 0) errors.push(`${file}#${index}: ${d.errors.map((e) => e.message).join('; ')}`);
      const obj = d.toJS() as Obj | null;
      if (obj !== null) docs.push({ file, index, obj });
    });
  }
  return { docs, errors };
}

const isKustomization = (d: Doc) => d.obj.kind === 'Kustomization';
const isObject = (d: Doc) => !isKustomization(d) && d.file !== HELM_VALUES;

/** Runs test/support/k8s-models.mjs (plain node: the model packages are ES modules only). */
function validateWithModels(objects: Obj[]): Array<{ ok: boolean; model: string; error?: string }> {
  const r = spawnSync(process.execPath, [join(__dirname, 'support', 'k8s-models.mjs')], {
    input: JSON.stringify(objects),
    encoding: 'utf8',
    cwd: ROOT,
    timeout: 60_000,
  });
  if (r.status !== 0) throw new Error(`k8s-models.mjs exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Array<{ ok: boolean; model: string; error?: string }>;
}

// JSON, not structuredClone: jest's sandbox would give the copies another realm's prototypes, which isDeepStrictEqual tells apart.
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
const { docs, errors: parseErrors } = loadDocs();
const objects = (dir: string) => docs.filter((d) => d.file.startsWith(`${dir}/`) && isObject(d)).map((d) => d.obj);
const byKind = (objs: Obj[], kind: string) => objs.filter((o) => o.kind === kind);
const kustomization = (dir: string): Obj => {
  const k = docs.find((d) => d.file === `${dir}/kustomization.yaml`);
  if (!k) throw new Error(`${dir}/kustomization.yaml is missing`);
  return k.obj;
};

/** Every MESHLENS_* variable lib/runtime/config.ts reads. */
const SETTINGS: ReadonlySet<string> = new Set(readFileSync(join(ROOT, 'lib/runtime/config.ts'), 'utf8').match(/MESHLENS_[A-Z0-9_]+/g) ?? []);
/** The targets bin/start.ts starts (`all` is the all-in-one, not a Deployment). */
const TARGETS: readonly string[] = (/export const TARGETS = \[([^\]]*)\]/.exec(readFileSync(join(ROOT, 'bin/start.ts'), 'utf8'))?.[1] ?? '')
  .split(',')
  .map((s) => s.trim().replace(/^'|'$/g, ''))
  .filter((s) => s !== '' && s !== 'all');

const matches = (selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean =>
  selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels?.[k] === v);
const podLabels = (d: Obj): Record<string, string> => d.spec?.template?.metadata?.labels ?? {};
const containers = (d: Obj): Obj[] => d.spec?.template?.spec?.containers ?? [];

// ---------------------------------------------------------------------------------------------------------
// The checks: each returns the problems it found.
// ---------------------------------------------------------------------------------------------------------

/** The kustomization lists every YAML file of its folder (but itself) and only files that exist. */
function kustomizationProblems(dir: string, k: Obj, files: readonly string[], unlisted: readonly string[] = []): string[] {
  const problems: string[] = [];
  const listed = ((k.resources ?? []) as string[]).map((r) => `${dir}/${r}`);
  const present = files.filter((f) => f.startsWith(`${dir}/`) && f !== `${dir}/kustomization.yaml` && !unlisted.includes(f));
  for (const f of listed) if (!files.includes(f)) problems.push(`${dir}/kustomization.yaml lists ${f}, which does not exist`);
  for (const f of present) if (!listed.includes(f)) problems.push(`${f} is not listed in ${dir}/kustomization.yaml`);
  if (new Set(listed).size !== listed.length) problems.push(`${dir}/kustomization.yaml lists a file twice`);
  for (const img of (k.images ?? []) as Obj[]) {
    if (!img.digest && (!img.newTag || img.newTag === 'latest')) problems.push(`${dir}/kustomization.yaml: image ${img.name} is not pinned`);
  }
  return problems;
}

/** Services select exactly one Deployment, by its pod labels, and target ports its container names. */
function serviceProblems(objs: Obj[]): string[] {
  const problems: string[] = [];
  const deployments = byKind(objs, 'Deployment');
  for (const s of byKind(objs, 'Service')) {
    const selected = deployments.filter((d) => matches(s.spec?.selector, podLabels(d)));
    if (selected.length !== 1) {
      problems.push(`Service ${s.metadata.name} selects ${selected.length} Deployments`);
      continue;
    }
    const names = containers(selected[0]!).flatMap((c) => (c.ports ?? []).map((p: Obj) => p.name));
    for (const p of s.spec.ports ?? []) {
      if (typeof p.targetPort === 'string' && !names.includes(p.targetPort)) problems.push(`Service ${s.metadata.name} port ${p.name}: no container port named ${p.targetPort}`);
      if (typeof p.targetPort !== 'string') problems.push(`Service ${s.metadata.name} port ${p.name}: targetPort should name a container port`);
    }
  }
  for (const d of deployments) {
    if (!matches(d.spec?.selector?.matchLabels, podLabels(d))) problems.push(`Deployment ${d.metadata.name}: selector does not match its pod labels`);
  }
  return problems;
}

/** ServiceMonitors select Services by label and scrape port names those Services have; HPAs and PDBs target Deployments. */
function monitorAndScalingProblems(objs: Obj[]): string[] {
  const problems: string[] = [];
  const services = byKind(objs, 'Service');
  const deployments = byKind(objs, 'Deployment');
  for (const m of byKind(objs, 'ServiceMonitor')) {
    const selected = services.filter((s) => matches(m.spec?.selector?.matchLabels, s.metadata?.labels));
    if (selected.length === 0) problems.push(`ServiceMonitor ${m.metadata.name} selects no Service`);
    for (const e of m.spec?.endpoints ?? []) {
      for (const s of selected) {
        if (!(s.spec.ports ?? []).some((p: Obj) => p.name === e.port)) problems.push(`ServiceMonitor ${m.metadata.name}: Service ${s.metadata.name} has no port ${e.port}`);
      }
      if (e.path !== '/metrics') problems.push(`ServiceMonitor ${m.metadata.name}: path ${e.path}, meshlens serves /metrics`);
    }
  }
  for (const h of byKind(objs, 'HorizontalPodAutoscaler')) {
    const ref = h.spec?.scaleTargetRef ?? {};
    if (ref.kind !== 'Deployment' || !deployments.some((d) => d.metadata.name === ref.name)) problems.push(`HPA ${h.metadata.name} targets ${ref.kind}/${ref.name}, not a Deployment here`);
  }
  for (const p of byKind(objs, 'PodDisruptionBudget')) {
    const selected = deployments.filter((d) => matches(p.spec?.selector?.matchLabels, podLabels(d)));
    if (selected.length !== 1) problems.push(`PDB ${p.metadata.name} selects ${selected.length} Deployments`);
  }
  return problems;
}

/**
 * Each Deployment runs one meshlens target; the environment it gets is made of real settings and is one
 * loadConfig accepts (secrets replaced by placeholders); the shutdown bound fits in the grace period.
 */
function settingsProblems(objs: Obj[]): string[] {
  const problems: string[] = [];
  const configMaps = new Map(byKind(objs, 'ConfigMap').map((c) => [c.metadata.name as string, (c.data ?? {}) as Record<string, string>]));
  const secretPlaceholders: Record<string, string> = {
    'clickhouse-url': 'http://meshlens:secret@clickhouse:8123/meshlens',
    'api-token': 'api-token',
    'grafana-token': 'grafana-token',
  };
  const targets: string[] = [];
  for (const d of byKind(objs, 'Deployment')) {
    for (const c of containers(d)) {
      const name = `Deployment ${d.metadata.name} container ${c.name}`;
      const target = (c.args ?? [])[0] as string;
      if (!TARGETS.includes(target) || (c.args ?? []).length !== 1) problems.push(`${name}: args ${JSON.stringify(c.args)} is not one meshlens target`);
      targets.push(target);
      const env: Record<string, string> = {};
      for (const from of c.envFrom ?? []) {
        const data = configMaps.get(from.configMapRef?.name);
        if (data === undefined) {
          problems.push(`${name}: envFrom ${JSON.stringify(from)} names no ConfigMap here`);
          continue;
        }
        for (const [k, v] of Object.entries(data)) {
          if (!SETTINGS.has(k)) problems.push(`${name}: ConfigMap ${from.configMapRef.name} sets ${k}, which meshlens does not read`);
          env[k] = v;
        }
      }
      for (const e of c.env ?? []) {
        if (e.name.startsWith('MESHLENS_') && !SETTINGS.has(e.name)) problems.push(`${name}: env ${e.name} is not a meshlens setting`);
        if (!e.name.startsWith('MESHLENS_') && e.valueFrom?.fieldRef === undefined) problems.push(`${name}: env ${e.name} is neither a setting nor a downward-API helper`);
        if (e.value !== undefined) env[e.name] = String(e.value).replace(/\$\(POD_IP\)/g, '10.1.2.3');
        else if (e.valueFrom?.secretKeyRef) {
          const ref = e.valueFrom.secretKeyRef;
          if (ref.name !== 'meshlens-secrets' || !(ref.key in secretPlaceholders)) problems.push(`${name}: env ${e.name} reads an undocumented secret ${ref.name}/${ref.key}`);
          env[e.name] = secretPlaceholders[ref.key] ?? 'x';
        } else if (e.valueFrom?.configMapKeyRef) {
          const v = configMaps.get(e.valueFrom.configMapKeyRef.name)?.[e.valueFrom.configMapKeyRef.key];
          if (v === undefined) problems.push(`${name}: env ${e.name} reads a ConfigMap key that does not exist`);
          else env[e.name] = v;
        }
      }
      try {
        const config = loadConfig(env);
        // The kubelet counts the preStop hook into the grace period, then SIGTERM starts meshlens's own bound.
        const grace = d.spec.template.spec.terminationGracePeriodSeconds as number | undefined;
        const preStop = c.lifecycle?.preStop;
        const pauseMs = preStop === undefined ? 0 : Number(/^setTimeout\(\(\) => \{\}, (\d+)\)$/.exec(preStop.exec?.command?.[2] ?? '')?.[1] ?? NaN);
        if (Number.isNaN(pauseMs) || (preStop !== undefined && preStop.exec?.command?.[0] !== 'node')) problems.push(`${name}: preStop is not the node pause this check understands`);
        if (grace === undefined || grace * 1000 < pauseMs + config.shutdownTimeoutMs + 5_000) {
          problems.push(`${name}: terminationGracePeriodSeconds ${grace} leaves no margin over the preStop pause (${pauseMs} ms) and MESHLENS_SHUTDOWN_TIMEOUT (${config.shutdownTimeoutMs} ms)`);
        }
        if (config.listenHost !== '0.0.0.0') problems.push(`${name}: MESHLENS_LISTEN_HOST must be 0.0.0.0 in a pod`);
        if (target !== 'provisioner' && config.kafkaBrokers.length === 0) problems.push(`${name}: ${target} needs MESHLENS_KAFKA_BROKERS`);
        if (target === 'aggregator' && config.clickhouseUrl === undefined) problems.push(`${name}: the aggregator would run an embedded ClickHouse (no MESHLENS_CLICKHOUSE_URL)`);
        if (target === 'tracer' && config.jaegerEndpoint === undefined) problems.push(`${name}: the tracer needs MESHLENS_JAEGER_ENDPOINT`);
        if (target === 'provisioner' && config.grafanaUrl === undefined) problems.push(`${name}: the provisioner needs MESHLENS_GRAFANA_URL`);
        const ports = Object.fromEntries((c.ports ?? []).map((p: Obj) => [p.name, p.containerPort]));
        if (ports.http !== config.httpPort) problems.push(`${name}: port http is ${ports.http}, meshlens listens on ${config.httpPort}`);
        if (target === 'ingest') {
          for (const [port, want] of [
            ['grpc-otlp', config.otlpGrpcPort],
            ['http-otlp', config.otlpHttpPort],
            ['http-zipkin', config.zipkinPort],
          ] as const) {
            if (ports[port] !== want) problems.push(`${name}: port ${port} is ${ports[port]}, meshlens listens on ${want}`);
          }
        }
        const mounts = (c.volumeMounts ?? []) as Obj[];
        // The aggregator writes its join state to the data dir; with a read-only root it needs a volume there.
        if (target === 'aggregator' && !mounts.some((m) => m.mountPath === config.dataDir && !m.readOnly)) problems.push(`${name}: nothing writable at MESHLENS_DATA_DIR ${config.dataDir}`);
        if (config.meshConfigPath !== undefined && !mounts.some((m) => m.mountPath === config.meshConfigPath)) problems.push(`${name}: MESHLENS_MESH_CONFIG ${config.meshConfigPath} is not mounted`);
      } catch (err) {
        problems.push(`${name}: meshlens would refuse this environment: ${(err as Error).message}`);
      }
    }
  }
  for (const t of TARGETS) if (targets.filter((x) => x === t).length !== 1) problems.push(`target ${t} has ${targets.filter((x) => x === t).length} Deployments`);
  return problems;
}

/** Probes on the HTTP port's health endpoints, resources, the restricted security context, pinned images, volumes. */
function podProblems(objs: Obj[]): string[] {
  const problems: string[] = [];
  const configMaps = new Set(byKind(objs, 'ConfigMap').map((c) => c.metadata.name as string));
  for (const d of byKind(objs, 'Deployment')) {
    const pod = d.spec.template.spec as Obj;
    const volumes = new Map(((pod.volumes ?? []) as Obj[]).map((v) => [v.name as string, v]));
    for (const v of volumes.values()) if (v.configMap && !configMaps.has(v.configMap.name)) problems.push(`Deployment ${d.metadata.name}: volume ${v.name} names no ConfigMap here`);
    if (pod.automountServiceAccountToken !== false) problems.push(`Deployment ${d.metadata.name}: the service-account token is mounted`);
    for (const c of containers(d)) {
      const name = `Deployment ${d.metadata.name} container ${c.name}`;
      const probe = (kind: string, path: string) => {
        const p = c[kind]?.httpGet;
        if (p?.path !== path || p?.port !== 'http') problems.push(`${name}: ${kind} must GET ${path} on port http, has ${JSON.stringify(p)}`);
      };
      probe('livenessProbe', '/livez');
      probe('readinessProbe', '/readyz');
      if (c.startupProbe) probe('startupProbe', '/livez');
      for (const kind of ['requests', 'limits']) {
        for (const r of ['cpu', 'memory']) if (c.resources?.[kind]?.[r] === undefined) problems.push(`${name}: no ${kind}.${r}`);
      }
      const sc = (c.securityContext ?? {}) as Obj;
      const podSc = (pod.securityContext ?? {}) as Obj;
      if ((sc.runAsNonRoot ?? podSc.runAsNonRoot) !== true) problems.push(`${name}: runAsNonRoot is not true`);
      const uid = sc.runAsUser ?? podSc.runAsUser;
      if (typeof uid !== 'number' || uid === 0) problems.push(`${name}: runAsUser ${uid} is not a non-root uid`);
      if (sc.allowPrivilegeEscalation !== false) problems.push(`${name}: allowPrivilegeEscalation is not false`);
      if (sc.readOnlyRootFilesystem !== true) problems.push(`${name}: readOnlyRootFilesystem is not true`);
      if (!(sc.capabilities?.drop ?? []).includes('ALL') || (sc.capabilities?.add ?? []).length > 0) problems.push(`${name}: capabilities do not drop ALL`);
      if ((sc.seccompProfile?.type ?? podSc.seccompProfile?.type) !== 'RuntimeDefault') problems.push(`${name}: seccompProfile is not RuntimeDefault`);
      // tsx keeps its compile cache in the temp directory.
      if (sc.readOnlyRootFilesystem === true && !(c.volumeMounts ?? []).some((m: Obj) => m.mountPath === '/tmp')) problems.push(`${name}: read-only root without a writable /tmp`);
      for (const m of c.volumeMounts ?? []) if (!volumes.has(m.name)) problems.push(`${name}: mount ${m.name} has no volume`);
      const image = String(c.image ?? '');
      if (!/@sha256:[0-9a-f]{64}$/.test(image) && !/:[^/:]+$/.test(image)) problems.push(`${name}: image ${image} has no tag`);
      if (/:latest$/.test(image)) problems.push(`${name}: image ${image} is not pinned`);
    }
  }
  return problems;
}

/** The PrometheusRule's groups are the generated rule files' groups, in file order; dashboards are the generated JSON. */
function generatedProblems(objs: Obj[]): string[] {
  const problems: string[] = [];
  const rules = byKind(objs, 'PrometheusRule');
  const expected = [RULE_FILE_PATHS.recording, RULE_FILE_PATHS.alerts].flatMap((p) => (parse(readFileSync(join(ROOT, p), 'utf8')) as Obj).groups as Obj[]);
  if (rules.length !== 1) problems.push(`${rules.length} PrometheusRules`);
  else if (!isDeepStrictEqual(rules[0]!.spec?.groups, expected)) problems.push('PrometheusRule groups differ from prometheus/rules/*.yml');
  const boards = byKind(objs, 'ConfigMap').filter((c) => c.metadata?.labels?.grafana_dashboard === '1');
  for (const f of dashboardFiles()) {
    const file = f.path.slice(f.path.lastIndexOf('/') + 1);
    const cm = boards.filter((c) => c.data?.[file] !== undefined);
    if (cm.length !== 1) problems.push(`dashboard ${file} is in ${cm.length} grafana_dashboard ConfigMaps`);
    else if (cm[0]!.data[file] !== readFileSync(join(ROOT, f.path), 'utf8')) problems.push(`dashboard ${file} differs from ${f.path}`);
  }
  if (boards.length !== dashboardFiles().length) problems.push(`${boards.length} dashboard ConfigMaps for ${dashboardFiles().length} dashboards`);
  return problems;
}

// Istio's MeshConfig fields of the two providers (istio/api mesh/v1alpha1/config.proto): the IstioOperator model
// keeps meshConfig schemaless, so a misspelt field would pass its validation and be dropped by istiod.
const PROVIDER_FIELDS: Record<string, readonly string[]> = {
  envoyOtelAls: ['service', 'port', 'logName', 'logFormat'],
  opentelemetry: ['service', 'port', 'maxTagLength', 'http', 'grpc', 'resourceDetectors', 'dynatraceSampler'],
};
const LOG_FORMAT_FIELDS = ['text', 'labels'];
/** Fields of telemetry.istio.io/v1alpha1 that were not promoted to v1 (istio/api#3133): v1 rejects them. */
const NOT_IN_V1 = ['filter', 'reportingInterval', 'useRequestIdForTraceSampling'];

/** The mesh config's providers point at the ingest Service's ports, with known fields; Telemetry names them. */
function istioProblems(istio: Obj[], helmValues: Obj, base: Obj[], baseNamespace: string): string[] {
  const problems: string[] = [];
  const operators = byKind(istio, 'IstioOperator');
  if (operators.length !== 1) return [`${operators.length} IstioOperators`];
  const mesh = operators[0]!.spec?.meshConfig as Obj;
  if (!isDeepStrictEqual(mesh, helmValues.meshConfig)) problems.push('istiod-values.yaml meshConfig differs from istio-operator.yaml spec.meshConfig');
  const providers = (mesh?.extensionProviders ?? []) as Obj[];
  const services = byKind(base, 'Service');
  for (const p of providers) {
    const kinds = Object.keys(p).filter((k) => k !== 'name');
    if (kinds.length !== 1) {
      problems.push(`provider ${p.name}: ${kinds.length} provider kinds`);
      continue;
    }
    const kind = kinds[0]!;
    const fields = PROVIDER_FIELDS[kind];
    const body = p[kind] as Obj;
    if (!fields) {
      problems.push(`provider ${p.name}: unexpected kind ${kind}`);
      continue;
    }
    for (const f of Object.keys(body)) if (!fields.includes(f)) problems.push(`provider ${p.name}: ${kind} has no field ${f}`);
    for (const f of Object.keys(body.logFormat ?? {})) if (!LOG_FORMAT_FIELDS.includes(f)) problems.push(`provider ${p.name}: logFormat has no field ${f}`);
    const m = /^([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local$/.exec(String(body.service));
    const svc = m && m[2] === baseNamespace ? services.find((s) => s.metadata.name === m[1]) : undefined;
    if (!svc) {
      problems.push(`provider ${p.name}: ${body.service} is not a Service of k8s/base in namespace ${baseNamespace}`);
      continue;
    }
    const port = (svc.spec.ports as Obj[]).find((x) => x.port === body.port);
    // envoyOtelAls and the default opentelemetry provider speak gRPC: Istio must know the port is HTTP/2.
    if (!port) problems.push(`provider ${p.name}: Service ${svc.metadata.name} has no port ${body.port}`);
    else if (body.http === undefined && port.appProtocol !== 'grpc' && !String(port.name).startsWith('grpc')) problems.push(`provider ${p.name}: port ${body.port} is not declared gRPC`);
  }
  const names = new Set(providers.map((p) => p.name as string));
  if (!providers.some((p) => p.envoyOtelAls)) problems.push('no envoyOtelAls provider');
  if (!providers.some((p) => p.opentelemetry)) problems.push('no opentelemetry provider');
  const telemetries = byKind(istio, 'Telemetry');
  if (telemetries.length === 0) problems.push('no Telemetry resource');
  for (const t of telemetries) {
    if (t.metadata?.namespace !== 'istio-system' || t.spec?.selector || t.spec?.targetRefs) problems.push(`Telemetry ${t.metadata?.name} is not mesh-wide (istio-system, no selector)`);
    for (const section of ['accessLogging', 'tracing', 'metrics']) {
      for (const entry of (t.spec?.[section] ?? []) as Obj[]) {
        for (const pr of (entry.providers ?? []) as Obj[]) if (!names.has(pr.name)) problems.push(`Telemetry ${t.metadata.name} ${section}: provider ${pr.name} is not in the mesh config`);
        if (t.apiVersion === 'telemetry.istio.io/v1') for (const f of NOT_IN_V1) if (f in entry) problems.push(`Telemetry ${t.metadata.name} ${section}: ${f} needs v1alpha1`);
      }
    }
    const used = ['accessLogging', 'tracing'].map((s) => ((t.spec?.[s] ?? []) as Obj[]).flatMap((e) => (e.providers ?? []) as Obj[]).map((p) => p.name as string));
    if (!used[0]!.some((n) => providers.find((p) => p.name === n)?.envoyOtelAls)) problems.push(`Telemetry ${t.metadata.name} does not enable the envoyOtelAls provider`);
    if (!used[1]!.some((n) => providers.find((p) => p.name === n)?.opentelemetry)) problems.push(`Telemetry ${t.metadata.name} does not enable the opentelemetry provider`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------

const base = objects(BASE);
const istio = objects(ISTIO);
const helmValues = (docs.find((d) => d.file === HELM_VALUES)?.obj ?? {}) as Obj;
const files = yamlFiles(K8S);
const baseNamespace = kustomization(BASE).namespace as string;
const allChecks = (b: Obj[]) => [...serviceProblems(b), ...monitorAndScalingProblems(b), ...settingsProblems(b), ...podProblems(b), ...generatedProblems(b)];

describe('k8s/ manifests', () => {
  it('every YAML file under k8s/ parses', () => {
    expect(parseErrors).toEqual([]);
    expect(files.length).toBeGreaterThan(10);
    for (const f of files) expect(statSync(join(ROOT, f)).size).toBeGreaterThan(0);
  });

  it('every object validates with kubernetes-models, @kubernetes-models/istio and @kubernetes-models/prometheus-operator', () => {
    const all = docs.filter(isObject);
    // The Helm values' meshConfig is validated as the IstioOperator that would carry it.
    const wrapped = { apiVersion: 'install.istio.io/v1alpha1', kind: 'IstioOperator', metadata: { name: 'helm-values' }, spec: { meshConfig: helmValues.meshConfig } };
    const results = validateWithModels([...all.map((d) => d.obj), wrapped]);
    const failures = results.flatMap((r, i) => (r.ok ? [] : [`${all[i]?.file ?? HELM_VALUES}#${all[i]?.index ?? 0} (${r.model}): ${r.error}`]));
    expect(failures).toEqual([]);
    // Every kind of k8s/ is checked by a model, never skipped.
    const kinds = new Set(all.map((d) => `${d.obj.apiVersion} ${d.obj.kind}`));
    for (const k of ['apps/v1 Deployment', 'v1 Service', 'v1 ConfigMap', 'autoscaling/v2 HorizontalPodAutoscaler', 'policy/v1 PodDisruptionBudget', 'monitoring.coreos.com/v1 ServiceMonitor', 'monitoring.coreos.com/v1 PodMonitor', 'monitoring.coreos.com/v1 PrometheusRule', 'telemetry.istio.io/v1 Telemetry', 'install.istio.io/v1alpha1 IstioOperator']) {
      expect(kinds).toContain(k);
    }
  });

  it('the model validation rejects broken objects (so the test above can fail)', () => {
    const deployment = clone(byKind(base, 'Deployment')[0]!);
    deployment.spec.template.spec.containers[0].ports[0].containerPort = 'eighty';
    const telemetry = clone(byKind(istio, 'Telemetry')[0]!);
    telemetry.spec.accessLogging[0].match.mode = 'BOTH';
    const rule = clone(byKind(base, 'PrometheusRule')[0]!);
    rule.spec.groups.at(-1).rules.find((r: Obj) => r.alert).for = '5 minutes';
    const monitor = clone(byKind(istio, 'PodMonitor')[0]!);
    monitor.spec.podMetricsEndpoints[0].interval = 'often';
    const results = validateWithModels([deployment, telemetry, rule, monitor, { apiVersion: 'example.com/v1', kind: 'Unknown', metadata: { name: 'x' } }]);
    expect(results.map((r) => r.ok)).toEqual([false, false, false, false, false]);
    expect(results.map((r) => r.error)).toEqual([
      expect.stringContaining('containerPort must be integer'),
      expect.stringContaining('mode must be equal to one of the allowed values'),
      expect.stringContaining('for must match pattern'),
      expect.stringContaining('interval must match pattern'),
      expect.stringContaining('no model for apiVersion example.com/v1 kind Unknown'),
    ]);
  });

  it('each kustomization lists every file of its folder, and only files that exist', () => {
    expect(kustomizationProblems(BASE, kustomization(BASE), files)).toEqual([]);
    // istioctl and Helm apply these two, not kubectl.
    expect(kustomizationProblems(ISTIO, kustomization(ISTIO), files, [`${ISTIO}/istio-operator.yaml`, HELM_VALUES])).toEqual([]);
    expect(baseNamespace).toBe('meshlens');
  });

  // kubectl embeds kustomize. .ci/run installs Debian's kubernetes-client (kubectl 1.20, kustomize v2.0.3) where there
  // is none; the development machine has kubectl 1.32 (kustomize v5.5). The base and the Istio side build with both.
  // The README's overlay uses `patches:` with a target, which kustomize has read since v3.1 (kubectl 1.21).
  const kubectlMinor = ((): number | undefined => {
    const r = runTool('kubectl', ['version', '--client', '-o', 'json']);
    if (r.status !== 0) return undefined;
    return Number.parseInt((JSON.parse(r.stdout) as { clientVersion: { minor: string } }).clientVersion.minor, 10);
  })();
  const kubectl = kubectlMinor !== undefined;
  const patchesKubectl = kubectl && kubectlMinor >= 21;
  if (!kubectl) console.warn('SKIPPED: kubectl is not on PATH, so `kubectl kustomize` of k8s/ is not checked (install kubectl to check them)');
  else if (!patchesKubectl) console.warn(`SKIPPED: kubectl 1.${kubectlMinor} embeds a kustomize older than v3.1, so the README's overlay (patches: with a target) is not built (install kubectl 1.21 or later)`);
  const kustomize = (dir: string): Obj[] => {
    const r = runTool('kubectl', ['kustomize', dir]);
    if (r.status !== 0) throw new Error(`kubectl kustomize ${dir}: ${r.stderr}`);
    return parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj);
  };

  (kubectl ? it : it.skip)('kubectl kustomize builds k8s/base and k8s/istio into the same objects, namespaced', () => {
    const built = kustomize(join(ROOT, BASE));
    expect(built.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(base.map((o) => `${o.kind}/${o.metadata.name}`).sort());
    for (const o of built) if (o.kind !== 'Namespace') expect(`${o.kind}/${o.metadata.name} ${o.metadata.namespace}`).toBe(`${o.kind}/${o.metadata.name} meshlens`);
    for (const d of byKind(built, 'Deployment')) expect(containers(d).map((c) => c.image)).toEqual(['meshlens:0.1.0']);
    expect(kustomize(join(ROOT, ISTIO)).map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`).sort()).toEqual(['PodMonitor/istio-system/envoy-stats-monitor', 'Telemetry/istio-system/meshlens']);
  });

  (patchesKubectl ? it : it.skip)("the README's overlay builds: image, mesh config, settings and the Prometheus label replaced", () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshlens-k8s-'));
    try {
      cpSync(join(ROOT, BASE), join(dir, 'base'), { recursive: true });
      mkdirSync(join(dir, 'overlay'));
      writeFileSync(join(dir, 'overlay', 'mesh.yaml'), readFileSync(join(ROOT, 'examples/bookinfo', readdirSync(join(ROOT, 'examples/bookinfo')).filter((f) => /\.ya?ml$/.test(f)).sort()[0]!)));
      writeFileSync(
        join(dir, 'overlay', 'kustomization.yaml'),
        [
          'apiVersion: kustomize.config.k8s.io/v1beta1',
          'kind: Kustomization',
          'resources: [../base]',
          'images: [{ name: meshlens, newName: registry.example.com/meshlens, newTag: 0.1.0 }]',
          'configMapGenerator:',
          '  - { name: meshlens-mesh-config, behavior: replace, files: [mesh.yaml] }',
          '  - { name: meshlens-settings, behavior: merge, literals: [MESHLENS_KAFKA_BROKERS=my-cluster-kafka-bootstrap.kafka.svc.cluster.local:9092] }',
          'patches:',
          '  - target: { group: monitoring.coreos.com, kind: ServiceMonitor, name: meshlens }',
          '    patch: \'[{"op": "replace", "path": "/metadata/labels/release", "value": "prometheus"}]\'',
          '  - target: { group: monitoring.coreos.com, kind: PrometheusRule, name: meshlens }',
          '    patch: \'[{"op": "replace", "path": "/metadata/labels/release", "value": "prometheus"}]\'',
          '',
        ].join('\n'),
      );
      const built = kustomize(join(dir, 'overlay'));
      for (const d of byKind(built, 'Deployment')) expect(containers(d).map((c) => c.image)).toEqual(['registry.example.com/meshlens:0.1.0']);
      const cm = (name: string) => byKind(built, 'ConfigMap').find((c) => c.metadata.name === name)!;
      expect(Object.keys(cm('meshlens-mesh-config').data)).toEqual(['mesh.yaml']);
      expect(cm('meshlens-settings').data).toMatchObject({ MESHLENS_KAFKA_BROKERS: 'my-cluster-kafka-bootstrap.kafka.svc.cluster.local:9092', MESHLENS_LISTEN_HOST: '0.0.0.0' });
      for (const kind of ['ServiceMonitor', 'PrometheusRule']) expect(byKind(built, kind)[0]!.metadata.labels.release).toBe('prometheus');
      expect(allChecks(built)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // Loud skip without promtool on PATH; with CI=true a missing promtool fails the suite (.ci/run installs it).
  const promtool = binaryOrSkip('promtool', "the promtool check of the PrometheusRule's groups (test/k8s.test.ts)");
  (promtool ? it : it.skip)("promtool check rules accepts the PrometheusRule's groups", () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshlens-k8s-rules-'));
    try {
      const file = join(dir, 'rules.yml');
      writeFileSync(file, stringify({ groups: byKind(base, 'PrometheusRule')[0]!.spec.groups }, { lineWidth: 0 }));
      const r = runTool(promtool as string, ['check', 'rules', file]);
      expect(`${r.status} ${r.stdout}${r.stderr}`).toMatch(/^0 [\s\S]*SUCCESS: \d+ rules found/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the base is consistent: selectors, port names, targets, settings, probes, resources, security, generated files', () => {
    expect(TARGETS).toEqual(['ingest', 'aggregator', 'tracer', 'provisioner']);
    expect(SETTINGS.size).toBeGreaterThan(20);
    expect(allChecks(base)).toEqual([]);
  });

  it('the Istio side points at the ingest Service and turns the providers on', () => {
    expect(istioProblems(istio, helmValues, base, baseNamespace)).toEqual([]);
  });

  describe('catches', () => {
    const broken = (edit: (objs: Obj[]) => void): string[] => {
      const copy = clone(base);
      edit(copy);
      return allChecks(copy);
    };
    const deployment = (objs: Obj[], component: string) => objs.find((o) => o.kind === 'Deployment' && o.metadata.name === `meshlens-${component}`)!;
    const container = (objs: Obj[], component: string) => deployment(objs, component).spec.template.spec.containers[0];

    it('a missing or extra file in a kustomization', () => {
      const k = clone(kustomization(BASE));
      k.resources.pop();
      expect(kustomizationProblems(BASE, k, files)).toEqual([`${BASE}/generated/dashboard-traces.yaml is not listed in ${BASE}/kustomization.yaml`]);
      k.resources.push('gone.yaml');
      expect(kustomizationProblems(BASE, k, files)).toContain(`${BASE}/kustomization.yaml lists ${BASE}/gone.yaml, which does not exist`);
      const latest = clone(kustomization(BASE));
      latest.images[0].newTag = 'latest';
      expect(kustomizationProblems(BASE, latest, files)).toEqual([`${BASE}/kustomization.yaml: image meshlens is not pinned`]);
    });

    it('a Service selector or port name that matches no Deployment, a ServiceMonitor port that does not exist', () => {
      expect(broken((o) => (o.find((x) => x.kind === 'Service' && x.metadata.name === 'meshlens-ingest')!.spec.selector['app.kubernetes.io/component'] = 'ingester'))).toContain('Service meshlens-ingest selects 0 Deployments');
      expect(broken((o) => (o.find((x) => x.kind === 'Service' && x.metadata.name === 'meshlens-ingest')!.spec.ports[0].targetPort = 'otlp'))).toContain('Service meshlens-ingest port grpc-otlp: no container port named otlp');
      expect(broken((o) => (o.find((x) => x.kind === 'ServiceMonitor')!.spec.endpoints[0].port = 'metrics'))).toContain('ServiceMonitor meshlens: Service meshlens-aggregator has no port metrics');
    });

    it('an HPA or PDB whose target does not exist', () => {
      expect(broken((o) => (o.find((x) => x.kind === 'HorizontalPodAutoscaler')!.spec.scaleTargetRef.name = 'ingest'))).toContain('HPA meshlens-ingest targets Deployment/ingest, not a Deployment here');
      expect(broken((o) => (o.find((x) => x.kind === 'PodDisruptionBudget' && x.metadata.name === 'meshlens-ingest')!.spec.selector.matchLabels['app.kubernetes.io/component'] = 'x'))).toContain('PDB meshlens-ingest selects 0 Deployments');
    });

    it('a setting meshlens does not read, a value it refuses, a grace period shorter than the shutdown bound', () => {
      expect(broken((o) => (o.find((x) => x.kind === 'ConfigMap' && x.metadata.name === 'meshlens-settings')!.data.MESHLENS_KAFKA_TOPICS = 'x'))).toContain(
        'Deployment meshlens-ingest container meshlens: ConfigMap meshlens-settings sets MESHLENS_KAFKA_TOPICS, which meshlens does not read',
      );
      expect(broken((o) => container(o, 'aggregator').env.push({ name: 'MESHLENS_RAW_REQUEST', value: '0.1' }))).toContain(
        'Deployment meshlens-aggregator container meshlens: env MESHLENS_RAW_REQUEST is not a meshlens setting',
      );
      expect(broken((o) => (o.find((x) => x.kind === 'ConfigMap' && x.metadata.name === 'meshlens-settings')!.data.MESHLENS_SHUTDOWN_TIMEOUT = '20 seconds')).join('\n')).toMatch(
        /meshlens-ingest container meshlens: meshlens would refuse this environment: [^\n]*MESHLENS_SHUTDOWN_TIMEOUT="20 seconds"/,
      );
      expect(broken((o) => (deployment(o, 'tracer').spec.template.spec.terminationGracePeriodSeconds = 20))).toContain(
        'Deployment meshlens-tracer container meshlens: terminationGracePeriodSeconds 20 leaves no margin over the preStop pause (0 ms) and MESHLENS_SHUTDOWN_TIMEOUT (20000 ms)',
      );
      expect(broken((o) => (container(o, 'ingest').lifecycle.preStop.exec.command[2] = 'setTimeout(() => {}, 10000)'))).toContain(
        'Deployment meshlens-ingest container meshlens: terminationGracePeriodSeconds 30 leaves no margin over the preStop pause (10000 ms) and MESHLENS_SHUTDOWN_TIMEOUT (20000 ms)',
      );
      expect(broken((o) => (container(o, 'tracer').args = ['trace']))).toContain('target tracer has 0 Deployments');
      expect(broken((o) => (container(o, 'aggregator').env = container(o, 'aggregator').env.filter((e: Obj) => e.name !== 'MESHLENS_CLICKHOUSE_URL')))).toContain(
        'Deployment meshlens-aggregator container meshlens: the aggregator would run an embedded ClickHouse (no MESHLENS_CLICKHOUSE_URL)',
      );
    });

    it('probes off the health endpoints, missing resources, a weaker security context, an unpinned image, no writable data dir', () => {
      expect(broken((o) => (container(o, 'ingest').readinessProbe.httpGet.path = '/healthz'))).toContain(
        'Deployment meshlens-ingest container meshlens: readinessProbe must GET /readyz on port http, has {"path":"/healthz","port":"http"}',
      );
      expect(broken((o) => delete container(o, 'tracer').resources.limits.memory)).toContain('Deployment meshlens-tracer container meshlens: no limits.memory');
      expect(broken((o) => (container(o, 'ingest').securityContext.allowPrivilegeEscalation = true))).toContain('Deployment meshlens-ingest container meshlens: allowPrivilegeEscalation is not false');
      expect(broken((o) => (container(o, 'ingest').securityContext.capabilities.drop = ['NET_RAW']))).toContain('Deployment meshlens-ingest container meshlens: capabilities do not drop ALL');
      expect(
        broken((o) => {
          container(o, 'ingest').securityContext.runAsUser = 0;
          deployment(o, 'ingest').spec.template.spec.securityContext.runAsUser = 0;
        }),
      ).toContain('Deployment meshlens-ingest container meshlens: runAsUser 0 is not a non-root uid');
      expect(broken((o) => (container(o, 'provisioner').image = 'meshlens:latest'))).toContain('Deployment meshlens-provisioner container meshlens: image meshlens:latest is not pinned');
      expect(broken((o) => (container(o, 'aggregator').volumeMounts = container(o, 'aggregator').volumeMounts.filter((m: Obj) => m.name !== 'data')))).toContain(
        'Deployment meshlens-aggregator container meshlens: nothing writable at MESHLENS_DATA_DIR /var/lib/meshlens',
      );
    });

    it('a PrometheusRule or a dashboard that differs from the generated files', () => {
      expect(broken((o) => o.find((x) => x.kind === 'PrometheusRule')!.spec.groups.pop())).toContain('PrometheusRule groups differ from prometheus/rules/*.yml');
      expect(broken((o) => (o.find((x) => x.kind === 'PrometheusRule')!.spec.groups[0].rules[0].expr += ' > 0'))).toContain('PrometheusRule groups differ from prometheus/rules/*.yml');
      expect(broken((o) => (o.find((x) => x.metadata?.name === 'meshlens-dashboard-canary')!.data['canary.json'] = '{}'))).toContain('dashboard canary.json differs from dashboards/canary.json');
    });

    it('Istio providers that point elsewhere, unknown fields, a Telemetry naming an undeclared provider', () => {
      const edit = (f: (i: Obj[], h: Obj) => void): string[] => {
        const i = clone(istio);
        const h = clone(helmValues);
        f(i, h);
        return istioProblems(i, h, base, baseNamespace);
      };
      const mesh = (i: Obj[]) => i.find((x) => x.kind === 'IstioOperator')!.spec.meshConfig;
      expect(edit((_i, h) => (h.meshConfig.extensionProviders[0].envoyOtelAls.port = 4318))).toEqual(['istiod-values.yaml meshConfig differs from istio-operator.yaml spec.meshConfig']);
      expect(
        edit((i, h) => {
          mesh(i).extensionProviders[0].envoyOtelAls.port = 4318;
          h.meshConfig = mesh(i);
        }),
      ).toEqual(['provider meshlens-als: port 4318 is not declared gRPC']);
      expect(
        edit((i, h) => {
          mesh(i).extensionProviders[1].opentelemetry.service = 'meshlens-ingest.observability.svc.cluster.local';
          h.meshConfig = mesh(i);
        }),
      ).toEqual(['provider meshlens-tracing: meshlens-ingest.observability.svc.cluster.local is not a Service of k8s/base in namespace meshlens']);
      expect(
        edit((i, h) => {
          mesh(i).extensionProviders[0].envoyOtelAls.logFormat.label = {};
          h.meshConfig = mesh(i);
        }),
      ).toEqual(['provider meshlens-als: logFormat has no field label']);
      expect(edit((i) => (i.find((x) => x.kind === 'Telemetry')!.spec.accessLogging[0].providers[0].name = 'otel'))).toEqual([
        'Telemetry meshlens accessLogging: provider otel is not in the mesh config',
        'Telemetry meshlens does not enable the envoyOtelAls provider',
      ]);
      expect(edit((i) => (i.find((x) => x.kind === 'Telemetry')!.spec.accessLogging[0].filter = { expression: 'response.code >= 400' }))).toEqual([
        'Telemetry meshlens accessLogging: filter needs v1alpha1',
      ]);
    });
  });
});
