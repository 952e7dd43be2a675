/**
 * Prometheus targets end to end (issue 4 part 3, CONTRACT.md §6): `start()` as `npm start` runs it, with the
 * sidecar fixtures as mesh config and a file_sd path;
 * - `GET /api/v1/prometheus/targets` lists this process and the sidecars, the file_sd file says the same;
 * - a real Prometheus given the committed prometheus/prometheus.yml (the aggregator's address rewritten) discovers
 *   them, scrapes meshlens (`up` = 1) through HTTP SD and through the file_sd file, and puts the sidecars in the
 *   envoy-stats job;
 * - distributed: an `aggregator` lists an `ingest` that shares its bus, and unlists it when it stops.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { parse } from 'yaml';
import { start, type Running } from '../bin/start';
import { createMemoryBus, type Bus } from '../lib/bus';
import { loadConfig } from '../lib/runtime';
import { TARGETS_PATH, type TargetGroup } from '../services/aggregator';
import { EPHEMERAL_PORTS } from './support/meshlens';
import { binaryOrSkip, startPrometheus, type RunningPrometheus } from './support/prometheus';

const logger = pino({ level: 'silent' });
const ROOT = join(__dirname, '..');
const SIDECARS = join(__dirname, 'fixtures', 'mesh-config', 'sidecars');
const PROMETHEUS = binaryOrSkip('prometheus', 'the Prometheus HTTP SD / file_sd test (test/prometheus-targets.e2e.test.ts)');


async function targetsOf(http: string): Promise<{ status: number; contentType: string | null; groups: TargetGroup[] }> {
  const res = await fetch(`${http}${TARGETS_PATH}`);
  return { status: res.status, contentType: res.headers.get('content-type'), groups: (await res.json()) as TargetGroup[] };
}

/** The committed prometheus.yml, made runnable here: meshlens's address, 1 s intervals, no rules or alerting. */
function committedConfig(meshlens: string, targetsDir: string): Record<string, unknown> {
  const config = parse(readFileSync(join(ROOT, 'prometheus', 'prometheus.yml'), 'utf8')) as Record<string, unknown>;
  config.global = { scrape_interval: '1s', evaluation_interval: '1s' };
  delete config.rule_files;
  delete config.alerting;
  const jobs = config.scrape_configs as Record<string, unknown>[];
  config.scrape_configs = jobs
    .filter((j) => j.job_name !== 'prometheus')
    .map((j) => {
      const text = JSON.stringify(j)
        .replaceAll('http://aggregator:8080', meshlens)
        .replaceAll('/etc/prometheus/targets', targetsDir)
        .replaceAll('"30s"', '"1s"');
      return JSON.parse(text) as Record<string, unknown>;
    });
  return config;
}

describe('Prometheus targets: all-in-one', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'meshlens-targets-'));
  const fileSdPath = join(dataDir, 'targets', 'meshlens.json');
  let running: Running;
  let http: string;
  let prom: RunningPrometheus | undefined;

  beforeAll(async () => {
    const config = loadConfig({ ...EPHEMERAL_PORTS, MESHLENS_DATA_DIR: dataDir, MESHLENS_MESH_CONFIG: SIDECARS, MESHLENS_FILE_SD_PATH: fileSdPath });
    running = await start({ config, target: 'all', logger, processMetrics: false });
    http = `http://127.0.0.1:${running.ports.http}`;
  });

  afterAll(async () => {
    await prom?.stop();
    await running?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('GET /api/v1/prometheus/targets: this process and the mesh config sidecars; the file_sd file says the same', async () => {
    const { status, contentType, groups } = await targetsOf(http);
    expect(status).toBe(200);
    expect(contentType).toBe('application/json');
    expect(running.advertiseAddress).toBe(`127.0.0.1:${running.ports.http}`);
    expect(groups[0]).toEqual({
      targets: [running.advertiseAddress],
      labels: { __metrics_path__: '/metrics', meshlens_source: 'membership', meshlens_target: 'all', meshlens_instance: running.instance },
    });
    expect(groups.slice(1).map((g) => [g.targets[0], g.labels.__metrics_path__, g.labels.meshlens_source])).toEqual([
      ['10.244.1.12:15020', '/stats/prometheus', 'mesh-config'],
      ['10.244.2.31:15090', '/stats/prometheus', 'mesh-config'],
      ['[fd00:10:244::7]:15090', '/stats/prometheus', 'mesh-config'],
      ['192.0.2.20:15090', '/stats/prometheus', 'mesh-config'],
      ['vm2.details.example.internal:15090', '/stats/prometheus', 'mesh-config'],
    ]);
    expect(JSON.parse(readFileSync(fileSdPath, 'utf8'))).toEqual(groups);
  });

  (PROMETHEUS ? it : it.skip)(
    'a real Prometheus with the committed prometheus.yml discovers and scrapes meshlens (http_sd and file_sd)',
    async () => {
      prom = await startPrometheus({ binary: PROMETHEUS, config: committedConfig(http, join(dataDir, 'targets')) });
      const p = prom;
      const meshlensUp = async (pool: string): Promise<boolean> =>
        (await p.targets()).some((t) => t.scrapePool === pool && t.labels.meshlens_target === 'all' && t.health === 'up');
      await p.waitFor(() => meshlensUp('meshlens'));
      await p.waitFor(() => meshlensUp('file-sd'));
      const targets = await p.targets();

      const own = targets.find((t) => t.scrapePool === 'meshlens');
      expect(own?.scrapeUrl).toBe(`http://${running.advertiseAddress}/metrics`);
      expect(own?.labels).toMatchObject({ job: 'meshlens', instance: running.advertiseAddress, meshlens_target: 'all', meshlens_instance: running.instance });
      expect(own?.labels.meshlens_source).toBeUndefined(); // dropped by the job's relabelling
      // The sidecars are the envoy-stats job's, never the meshlens job's.
      expect(targets.filter((t) => t.scrapePool === 'meshlens')).toHaveLength(1);
      const envoy = targets.filter((t) => t.scrapePool === 'envoy-stats');
      expect(envoy.map((t) => t.scrapeUrl).sort()).toEqual(
        [
          'http://10.244.1.12:15020/stats/prometheus',
          'http://10.244.2.31:15090/stats/prometheus',
          'http://[fd00:10:244::7]:15090/stats/prometheus',
          'http://192.0.2.20:15090/stats/prometheus',
          'http://vm2.details.example.internal:15090/stats/prometheus',
        ].sort(),
      );
      expect(envoy.find((t) => t.labels.pod === 'details-v1-7d4d9d5fcb-mqjlq')?.labels).toMatchObject({ job: 'envoy-stats', namespace: 'default', app: 'details', version: 'v1' });

      // Scraped for real: `up` and meshlens's own series, with the target labels.
      await p.waitFor(async () => (await p.query('up{job="meshlens"} == 1')).length === 1);
      await p.waitFor(async () => (await p.query('scrape_samples_scraped{job="meshlens",meshlens_target="all"} > 0')).length === 1);
    },
    60_000,
  );
});

describe('Prometheus targets: distributed (aggregator + ingest over one bus)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'meshlens-targets-dist-'));
  const shared = createMemoryBus();
  // Each start() closes its bus on close(); the test closes the shared one itself, last.
  const view: Bus = { ...shared, close: async () => undefined };
  let aggregator: Running | undefined;
  let ingest: Running | undefined;

  afterAll(async () => {
    await ingest?.close();
    await aggregator?.close();
    await shared.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('the aggregator lists the ingest replica it hears, and unlists it when it stops', async () => {
    aggregator = await start({ config: loadConfig({ ...EPHEMERAL_PORTS, MESHLENS_DATA_DIR: dataDir }), target: 'aggregator', logger, bus: view, processMetrics: false });
    ingest = await start({
      config: loadConfig({ ...EPHEMERAL_PORTS, MESHLENS_DATA_DIR: dataDir, MESHLENS_ADVERTISE_ADDRESS: 'ingest-0.meshlens:8080' }),
      target: 'ingest',
      logger,
      bus: view,
      processMetrics: false,
    });
    expect(ingest.prometheusTargets).toBeUndefined();
    const http = `http://127.0.0.1:${aggregator.ports.http}`;
    const members = async (): Promise<string[]> =>
      (await targetsOf(http)).groups.map((g) => `${g.labels.meshlens_target} ${g.targets[0]} ${g.labels.meshlens_instance}`);
    await waitFor(async () => (await members()).length === 2);
    expect(await members()).toEqual([
      `aggregator 127.0.0.1:${aggregator.ports.http} ${aggregator.instance}`,
      `ingest ingest-0.meshlens:8080 ${ingest.instance}`,
    ]);

    await ingest.close();
    ingest = undefined;
    await waitFor(async () => (await members()).length === 1);
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
