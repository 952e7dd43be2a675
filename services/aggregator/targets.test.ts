import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadMeshConfig, parseMeshConfig, type MeshWorkload } from '../../lib/meshconfig';
import { createHttpServer } from '../../lib/runtime';
import { MemberDirectory } from '../../lib/membership';
import {
  ENVOY_STATS_PORT,
  TARGETS_PATH,
  buildTargetGroups,
  createPrometheusTargets,
  memberTargetGroups,
  sidecarTarget,
  sidecarTargetGroups,
  writeFileSd,
  type TargetGroup,
} from './targets';

const logger = pino({ level: 'silent' });
const FIXTURES = join(__dirname, '../../test/fixtures/mesh-config/sidecars');

/** What the fixture folder's sidecars must become. */
const FIXTURE_SIDECARS: TargetGroup[] = [
  {
    targets: ['10.244.1.12:15020'],
    labels: { __metrics_path__: '/stats/prometheus', meshlens_source: 'mesh-config', namespace: 'default', pod: 'details-v1-7d4d9d5fcb-mqjlq', app: 'details', version: 'v1' },
  },
  {
    targets: ['10.244.2.31:15090'],
    labels: { __metrics_path__: '/stats/prometheus', meshlens_source: 'mesh-config', namespace: 'default', pod: 'reviews-v2-5b9d8f6c4d-x7k2p', app: 'reviews', version: 'v2' },
  },
  {
    targets: ['[fd00:10:244::7]:15090'],
    labels: { __metrics_path__: '/stats/prometheus', meshlens_source: 'mesh-config', namespace: 'bookinfo', pod: 'ratings-v1-6c9f5b8d7-q2w4e', app: 'ratings', version: 'v1' },
  },
  {
    targets: ['192.0.2.20:15090'],
    labels: { __metrics_path__: '/stats/prometheus', meshlens_source: 'mesh-config', namespace: 'bookinfo', workload_entry: 'details-svc', app: 'details-legacy' },
  },
  {
    targets: ['vm2.details.example.internal:15090'],
    labels: { __metrics_path__: '/stats/prometheus', meshlens_source: 'mesh-config', namespace: 'bookinfo', workload_entry: 'details-svc-2', app: 'details-legacy', version: 'v2' },
  },
];

function pod(over: Partial<MeshWorkload>): MeshWorkload {
  return { kind: 'Pod', namespace: 'default', name: 'p', ref: 'default/p', address: '10.0.0.1', labels: {}, annotations: {}, sidecar: true, phase: 'Running', source: 'x', line: 1, ...over };
}

describe('sidecar targets', () => {
  it('the fixture folder: injected, running pods with an IP and WorkloadEntries, on 15090 or the merged port', async () => {
    const { config, problems } = await loadMeshConfig(FIXTURES);
    expect(problems).toEqual([]);
    expect(sidecarTargetGroups(config)).toEqual(FIXTURE_SIDECARS);
  });

  it('honours prometheus.io/port and path only when they make sense', () => {
    expect(sidecarTarget(pod({}))).toEqual({ address: `10.0.0.1:${ENVOY_STATS_PORT}`, path: '/stats/prometheus' });
    expect(sidecarTarget(pod({ annotations: { 'prometheus.io/port': '15020' } }))).toEqual({ address: '10.0.0.1:15020', path: '/stats/prometheus' });
    expect(sidecarTarget(pod({ annotations: { 'prometheus.io/port': '15020', 'prometheus.io/path': '/metrics' } }))).toEqual({ address: '10.0.0.1:15020', path: '/metrics' });
    for (const bad of ['0', '70000', 'http', '']) {
      expect(sidecarTarget(pod({ annotations: { 'prometheus.io/port': bad, 'prometheus.io/path': 'nope' } }))).toEqual({ address: '10.0.0.1:15090', path: '/stats/prometheus' });
    }
    expect(sidecarTarget(pod({ annotations: { 'prometheus.io/scrape': 'false', 'prometheus.io/port': '8080' } }))?.address).toBe('10.0.0.1:15090');
    // A WorkloadEntry's annotations say nothing about its proxy.
    expect(sidecarTarget(pod({ kind: 'WorkloadEntry', annotations: { 'prometheus.io/port': '8080' } }))?.address).toBe('10.0.0.1:15090');
  });

  it('leaves out what cannot or should not be scraped', () => {
    expect(sidecarTarget(pod({ sidecar: false }))).toBeUndefined();
    expect(sidecarTarget(pod({ address: '' }))).toBeUndefined();
    expect(sidecarTarget(pod({ phase: 'Succeeded' }))).toBeUndefined();
    expect(sidecarTarget(pod({ phase: 'Failed' }))).toBeUndefined();
    expect(sidecarTarget(pod({ phase: 'Pending' }))).toBeDefined();
    expect(sidecarTarget(pod({ labels: { 'istio-prometheus-ignore': 'true' } }))).toBeUndefined();
    expect(sidecarTarget(pod({ kind: 'WorkloadEntry', address: 'unix:///sock' }))).toBeUndefined();
  });

  it('one group per address; canonical-name/revision labels when app/version are absent', () => {
    const text = `apiVersion: v1
kind: Pod
metadata: {name: a, labels: {service.istio.io/canonical-name: pod1, service.istio.io/canonical-revision: latest}}
spec: {containers: [{name: istio-proxy}]}
status: {podIP: 10.1.1.1}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: other}
spec: {containers: [{name: istio-proxy}]}
status: {podIP: 10.1.1.1}
`;
    const groups = sidecarTargetGroups(parseMeshConfig([{ name: 'p.yaml', text }]).config);
    expect(groups).toEqual([
      {
        targets: ['10.1.1.1:15090'],
        labels: { __metrics_path__: '/stats/prometheus', meshlens_source: 'mesh-config', namespace: 'default', pod: 'a', app: 'pod1', version: 'latest' },
      },
    ]);
  });
});

describe('member targets', () => {
  it('one group per meshlens process with its target and instance', () => {
    const d = new MemberDirectory({ now: () => 1000 });
    d.setSelf({ instance: 'agg-1', target: 'aggregator', address: '172.18.0.5:8080', startedAtMs: 1 });
    d.observe({ instance: 'ing-1', target: 'ingest', address: '172.18.0.6:8080', startedAtMs: 2, sentAtMs: 1000 });
    expect(memberTargetGroups(d.list())).toEqual([
      { targets: ['172.18.0.5:8080'], labels: { __metrics_path__: '/metrics', meshlens_source: 'membership', meshlens_target: 'aggregator', meshlens_instance: 'agg-1' } },
      { targets: ['172.18.0.6:8080'], labels: { __metrics_path__: '/metrics', meshlens_source: 'membership', meshlens_target: 'ingest', meshlens_instance: 'ing-1' } },
    ]);
    expect(buildTargetGroups(d.list(), parseMeshConfig([]).config)).toHaveLength(2);
  });
});

describe('GET /api/v1/prometheus/targets and file_sd', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'meshlens-filesd-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('answers HTTP SD: 200, application/json, the full list; the file follows member changes', async () => {
    let now = 1_000_000;
    const directory = new MemberDirectory({ expireAfterMs: 30_000, now: () => now });
    directory.setSelf({ instance: 'me', target: 'all', address: '127.0.0.1:8080', startedAtMs: 1 });
    const { config } = await loadMeshConfig(FIXTURES);
    const fileSdPath = join(dir, 'sub', 'meshlens.json');
    const targets = createPrometheusTargets({ directory, meshConfig: config, fileSdPath, logger });
    const app = createHttpServer({ logger, maxBodyBytes: 1024 });
    targets.registerRoutes(app);
    await targets.start();

    const res = await app.inject({ method: 'GET', url: TARGETS_PATH, headers: { 'x-prometheus-refresh-interval-seconds': '30' } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    const body = res.json() as TargetGroup[];
    expect(body).toEqual([
      { targets: ['127.0.0.1:8080'], labels: { __metrics_path__: '/metrics', meshlens_source: 'membership', meshlens_target: 'all', meshlens_instance: 'me' } },
      ...FIXTURE_SIDECARS,
    ]);
    const readFile = (): unknown => JSON.parse(readFileSync(fileSdPath, 'utf8'));
    expect(readFile()).toEqual(body);

    // A new member: the file is rewritten (temp file + rename, nothing left behind).
    directory.observe({ instance: 'ing', target: 'ingest', address: '10.0.0.9:8080', startedAtMs: 2, sentAtMs: now });
    await waitFor(() => (readFile() as TargetGroup[]).length === body.length + 1);
    expect(readFile()).toEqual((await app.inject({ method: 'GET', url: TARGETS_PATH })).json());
    expect(readdirSync(join(dir, 'sub'))).toEqual(['meshlens.json']);
    // It expires: the next sweep rewrites the file.
    now += 31_000;
    directory.sweep();
    await waitFor(() => (readFile() as TargetGroup[]).length === body.length);

    await targets.close();
    await app.close();
  });

  it('an empty list is a valid answer', async () => {
    const directory = new MemberDirectory();
    const targets = createPrometheusTargets({ directory, meshConfig: parseMeshConfig([]).config, logger });
    const app = createHttpServer({ logger, maxBodyBytes: 1024 });
    targets.registerRoutes(app);
    const res = await app.inject({ method: 'GET', url: TARGETS_PATH });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('[]');
    await targets.start(); // no file_sd path: nothing to do
    await targets.close();
    await app.close();
  });

  it('a file that cannot be written is logged and retried', async () => {
    const errors: string[] = [];
    const log = pino({ level: 'error' }, { write: (line: string) => void errors.push(line) });
    const blocker = join(dir, 'not-a-dir');
    writeFileSync(blocker, 'x');
    const directory = new MemberDirectory();
    directory.setSelf({ instance: 'me', target: 'all', address: '127.0.0.1:1', startedAtMs: 1 });
    const fileSdPath = join(blocker, 'meshlens.json');
    const targets = createPrometheusTargets({ directory, meshConfig: parseMeshConfig([]).config, fileSdPath, logger: log, retryMs: 20 });
    await targets.start();
    expect(errors.join('')).toContain('cannot write the file_sd targets file');
    rmSync(blocker);
    await waitFor(() => {
      try {
        return (JSON.parse(readFileSync(fileSdPath, 'utf8')) as unknown[]).length === 1;
      } catch {
        return false;
      }
    });
    await targets.close();
  });

  it('writeFileSd replaces the file whole', async () => {
    const path = join(dir, 'targets.json');
    await writeFileSd(path, [{ targets: ['a:1'], labels: {} }]);
    await writeFileSd(path, []);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual([]);
    expect(readdirSync(dir)).toEqual(['targets.json']);
  });
});

async function waitFor(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
