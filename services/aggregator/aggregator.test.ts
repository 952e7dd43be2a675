import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { Registry } from 'prom-client';
import { emptyRequest } from '../../lib/model';
import { emptyMeshConfig } from '../../lib/meshconfig';
import type { MeshRequest } from '../../lib/model';
import { CANARY_DEFAULTS, createHttpServer, parseDuration } from '../../lib/runtime';
import { connect, migrate } from '../../lib/store';
import type { Connection } from '../../lib/store';
import { foldLedger, parseInstant, parseScope, registerQueryRoutes } from './api';
import { CanaryJudge } from './canary';
import { MeshMetrics } from './metrics';

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);

describe('query scope (CONTRACT §6: window | from/to, namespace, service, reporter)', () => {
  it('defaults to the last 5 minutes and the given default reporter', () => {
    expect(parseScope({}, 'source', NOW)).toEqual({ fromMs: NOW - 300_000, toMs: NOW, namespace: '', service: '', reporter: 'source' });
    expect(parseScope({ window: '30s', reporter: 'all', namespace: 'default', service: 'reviews' }, 'source', NOW)).toEqual({
      fromMs: NOW - 30_000,
      toMs: NOW,
      namespace: 'default',
      service: 'reviews',
      reporter: 'all',
    });
  });

  it('takes from/to as RFC 3339 or Unix milliseconds; from alone ends now', () => {
    expect(parseScope({ from: '2026-11-25T11:00:00Z', to: '2026-11-25T11:30:00.500+00:00' }, 'all', NOW)).toMatchObject({
      fromMs: NOW - 3_600_000,
      toMs: NOW - 1_800_000 + 500,
    });
    expect(parseScope({ from: String(NOW - 1000) }, 'all', NOW)).toMatchObject({ fromMs: NOW - 1000, toMs: NOW });
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('5 minutes')).toBeUndefined();
    expect(parseInstant('2026-11-25 11:00:00')).toBeUndefined();
  });

  it.each([
    [{ window: '5m', from: '0' }, /either window or from/],
    [{ to: '2026-11-25T11:00:00Z' }, /to needs from/],
    [{ from: 'yesterday' }, /from="yesterday"/],
    [{ from: String(NOW), to: String(NOW - 1) }, /before/],
    [{ window: '-5m' }, /window="-5m"/],
    [{ reporter: 'both' }, /reporter="both"/],
    // CONTRACT §9: instants ClickHouse cannot hold are the caller's mistake, not the store's.
    [{ from: '1969-12-31T00:00:00Z' }, /from=.*1970/],
    [{ from: '0000-01-01T00:00:00Z', to: '2026-11-25T11:00:00Z' }, /from=.*1970/],
    [{ from: '2026-11-25T11:00:00Z', to: '253402300800000' }, /to=.*9999/],
    [{ from: '2026-02-30T00:00:00Z' }, /from="2026-02-30T00:00:00Z"/],
    [{ from: '2026-11-25T24:00:00Z' }, /from=/],
    [{ window: '0s' }, /window="0s"/],
    [{ window: '3651d' }, /window=.*3650 days/],
    [{ from: '2010-01-01T00:00:00Z', to: '2026-11-25T11:00:00Z' }, /3650 days/],
    [{ window: ['5m', '1h'] }, /window.*once/],
    [{ namespace: ['default', 'istio-system'] }, /namespace.*once/],
    [{ service: 'x'.repeat(254) }, /service.*253/],
  ])('rejects %j with a 400 naming the problem', (q, message) => {
    expect(() => parseScope(q as unknown as Record<string, string>, 'source', NOW)).toThrow(expect.objectContaining({ statusCode: 400, message: expect.stringMatching(message) }));
  });

  it('takes the last instant ClickHouse holds and a window of 3650 days', () => {
    expect(parseScope({ from: '9999-12-31T23:59:59.000Z', to: '9999-12-31T23:59:59.999Z' }, 'all', NOW)).toMatchObject({ toMs: 253402300799999 });
    expect(parseScope({ window: '3650d' }, 'all', NOW)).toMatchObject({ fromMs: NOW - 3650 * 86_400_000 });
    expect(parseScope({ from: '0', to: '1000' }, 'all', NOW)).toMatchObject({ fromMs: 0, toMs: 1000 });
  });
});

describe('query API safety (CONTRACT §9): 400 for bad parameters, no ClickHouse text in answers', () => {
  const logged: unknown[] = [];
  const logger = pino({ level: 'error' }, { write: (line: string) => void logged.push(JSON.parse(line)) });
  /** A store whose every query fails with `err`; `calls` counts the queries that reached it. */
  function failingStore(err: Error): { conn: Connection; calls: () => number } {
    let n = 0;
    const client = {
      query: async () => {
        n++;
        throw err;
      },
    };
    return { conn: { client, database: 'meshlens', kind: 'embedded', location: '' } as unknown as Connection, calls: () => n };
  }
  async function api(conn: Connection, queryTimeoutMs?: number): Promise<FastifyInstance> {
    const app = createHttpServer({ logger, maxBodyBytes: 1024 });
    registerQueryRoutes(app, { conn, meshConfig: emptyMeshConfig(), logger, canary: CANARY_DEFAULTS, queryTimeoutMs, now: () => NOW });
    await app.ready();
    return app;
  }
  const ENDPOINTS = ['/api/v1/subsets', '/api/v1/flows', '/api/v1/graph', '/api/v1/canaries'];

  it.each(ENDPOINTS)('answers 400 on %s for a from before 1970 or a to before from, without asking the store', async (path) => {
    const store = failingStore(new Error('must not be asked'));
    const app = await api(store.conn);
    for (const q of ['from=1969-12-31T00:00:00Z', 'from=2026-11-25T11:00:00Z&to=2026-11-25T10:00:00Z', 'window=junk', 'from=12abc']) {
      const res = await app.inject({ method: 'GET', url: `${path}?${q}` });
      expect({ q, status: res.statusCode, error: res.json().error }).toEqual({ q, status: 400, error: 'bad_request' });
    }
    expect(store.calls()).toBe(0);
    await app.close();
  });

  it('answers 503 with Retry-After and a message of its own when the store fails; the detail goes to the log', async () => {
    const secret = 'Code: 60. DB::Exception: Table meshlens.requests_1m does not exist. (UNKNOWN_TABLE) (version 26.7.2.1)';
    const app = await api(failingStore(new Error(secret)).conn);
    for (const path of ENDPOINTS) {
      const res = await app.inject({ method: 'GET', url: path });
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('5');
      expect(res.json()).toEqual({ error: 'store_unavailable', message: expect.any(String) });
      expect(res.body).not.toMatch(/DB::Exception|UNKNOWN_TABLE|Code: 60|requests_1m/);
    }
    expect(JSON.stringify(logged)).toContain('UNKNOWN_TABLE');
    await app.close();
  });

  describe('on embedded ClickHouse', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshlens-api-'));
    let conn: Connection;
    beforeAll(async () => {
      conn = connect({ clickhouseUrl: undefined, dataDir: dir });
      await migrate(conn, { rawDays: 7, rollupDays: 90 });
    });
    afterAll(async () => {
      await conn.client.close();
      rmSync(dir, { recursive: true, force: true });
    });

    /** The connection, with every query's settings recorded. */
    function recording(): { conn: Connection; settings: Record<string, unknown>[] } {
      const settings: Record<string, unknown>[] = [];
      const client = new Proxy(conn.client, {
        get(target, prop, receiver) {
          if (prop !== 'query') return Reflect.get(target, prop, receiver) as unknown;
          return (args: Parameters<Connection['client']['query']>[0]) => {
            settings.push({ ...args.clickhouse_settings });
            return target.query(args);
          };
        },
      });
      return { conn: { ...conn, client }, settings };
    }

    it('bounds every query of the API and of the canary judge by max_execution_time (MESHLENS_QUERY_TIMEOUT)', async () => {
      const rec = recording();
      const app = await api(rec.conn, 7_000);
      for (const path of ENDPOINTS) expect((await app.inject({ method: 'GET', url: `${path}?window=1h&reporter=all` })).statusCode).toBe(200);
      expect(rec.settings.length).toBeGreaterThanOrEqual(ENDPOINTS.length);
      expect(rec.settings.filter((s) => s.max_execution_time !== 7)).toEqual([]);
      await app.close();

      const judged = recording();
      const judge = new CanaryJudge({ conn: judged.conn, meshConfig: emptyMeshConfig(), registry: new Registry(), logger, config: CANARY_DEFAULTS, queryTimeoutMs: 2_500 });
      await judge.judgeNow();
      expect(judged.settings.length).toBeGreaterThan(0);
      expect(judged.settings.filter((s) => s.max_execution_time !== 3)).toEqual([]);
    });

    it('answers a query that ran out of time 503 with Retry-After and a message to narrow the window, not the engine text', async () => {
      // The error ClickHouse really raises when max_execution_time runs out.
      let timeout: Error | undefined;
      await conn.client
        .query({ query: 'SELECT count() FROM system.numbers', format: 'JSONEachRow', clickhouse_settings: { max_execution_time: 1 } })
        .then((rs) => rs.json())
        .catch((err: Error) => (timeout = err));
      expect(timeout?.message).toMatch(/Timeout exceeded/);

      const app = await api(failingStore(timeout as Error).conn, 1_000);
      for (const path of ENDPOINTS) {
        const res = await app.inject({ method: 'GET', url: `${path}?window=30d` });
        expect(res.statusCode).toBe(503);
        expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
        expect(res.json()).toEqual({ error: 'query_timeout', message: expect.stringMatching(/narrow/) });
        expect(res.body).not.toMatch(/Timeout exceeded|elapsed|TIMEOUT_EXCEEDED/);
      }
      await app.close();
    });
  });
});

function req(host: string, over: Partial<MeshRequest> = {}): MeshRequest {
  const [service = '', namespace = ''] = host.split('.');
  return {
    ...emptyRequest(),
    reporter: 'source',
    sourceWorkload: 'productpage-v1',
    sourceNamespace: 'default',
    destinationHost: host,
    destinationService: service,
    destinationNamespace: namespace,
    responseCode: 200,
    outcome: 'ok',
    durationMs: 12,
    ...over,
  };
}

describe('mesh metrics from aggregated state', () => {
  it('exports CONTRACT §5 labels, cumulative histogram buckets in seconds, and "unknown" for missing workloads', async () => {
    const registry = new Registry();
    const m = new MeshMetrics(registry, 1000);
    m.addRequests([
      req('reviews.default.svc.cluster.local', { destinationSubset: 'v3', responseCode: 503, outcome: 'error', durationMs: 3 }),
      req('reviews.default.svc.cluster.local', { destinationSubset: 'v3', responseCode: 503, outcome: 'error', durationMs: 700 }),
      req('reviews.default.svc.cluster.local', { destinationSubset: 'v3', sourceWorkload: '', durationMs: 20 }),
    ]);
    const text = await registry.metrics();
    expect(text).toContain(
      'meshlens_requests_total{reporter="source",source_workload="productpage-v1",source_workload_namespace="default",destination_service="reviews.default.svc.cluster.local",destination_service_name="reviews",destination_service_namespace="default",destination_subset="v3",response_code="503",response_flags="-",outcome="error"} 2',
    );
    expect(text).toContain('source_workload="unknown"');
    const labels = 'reporter="source",destination_service="reviews.default.svc.cluster.local",destination_service_name="reviews",destination_service_namespace="default",destination_subset="v3"';
    expect(text).toContain(`meshlens_request_duration_seconds_bucket{${labels},le="0.005"} 1`);
    expect(text).toContain(`meshlens_request_duration_seconds_bucket{${labels},le="0.025"} 2`);
    expect(text).toContain(`meshlens_request_duration_seconds_bucket{${labels},le="1"} 3`);
    expect(text).toContain(`meshlens_request_duration_seconds_bucket{${labels},le="+Inf"} 3`);
    expect(text).toContain(`meshlens_request_duration_seconds_count{${labels}} 3`);
    expect(text).toMatch(new RegExp(`meshlens_request_duration_seconds_sum\\{${labels.replace(/[.]/g, '\\.')}\\} 0\\.723`));
  });

  it('caps label sets per metric: new sets fold into __overflow__, the total stays exact, and a counter says how many folded', async () => {
    const registry = new Registry();
    const m = new MeshMetrics(registry, 3);
    const hosts = ['a', 'b', 'c', 'd', 'e'].map((s) => `${s}.default.svc.cluster.local`);
    m.addRequests(hosts.flatMap((h) => [req(h), req(h)]));
    expect(m.seriesCounts().requests).toBe(4); // 3 + the overflow series
    const text = await registry.metrics();
    // Every label folds: no value taken from a request can add a series past the cap.
    expect(text).toMatch(/meshlens_requests_total\{reporter="__overflow__",source_workload="__overflow__",source_workload_namespace="__overflow__",destination_service="__overflow__",destination_service_name="__overflow__",destination_service_namespace="__overflow__",destination_subset="__overflow__",response_code="__overflow__",response_flags="__overflow__",outcome="__overflow__"\} 4/);
    expect(text).toContain('meshlens_series_overflow_total{metric="meshlens_requests_total"} 4');
    const total = [...text.matchAll(/^meshlens_requests_total\{.*\} (\d+)$/gm)].reduce((n, x) => n + Number(x[1]), 0);
    expect(total).toBe(10);

    // Past the cap, label sets that differ in any label (here response codes and outcomes) still fold into one.
    m.addRequests([503, 504, 403].map((code) => ({ ...req('z.default.svc.cluster.local'), responseCode: code, outcome: code === 403 ? 'denied' : 'error' })));
    expect(m.seriesCounts().requests).toBe(4);
  });
});

describe('flows ledger folding', () => {
  it('folds verdict rows into one entry per flow with deny reasons and policies', () => {
    const base = {
      layer: 'L7' as const,
      sourceNamespace: 'default',
      sourceWorkload: 'sleep',
      destinationNamespace: 'default',
      destinationService: 'ratings',
      destinationHost: 'ratings.default.svc.cluster.local',
      subset: 'v1',
      port: 9080,
      denyReason: '',
      policy: '',
      rule: -1,
    };
    const entries = foldLedger([
      { ...base, denied: false, count: 5 },
      { ...base, denied: true, denyReason: 'rbac', policy: 'default/deny-sleep', rule: 0, count: 3 },
      { ...base, denied: true, denyReason: 'rbac', policy: 'default/deny-sleep', rule: 1, count: 4 },
      { ...base, denied: true, denyReason: 'ext_authz', count: 1 },
      { ...base, layer: 'L4', port: 3306, denied: false, count: 2 },
    ]);
    expect(entries).toEqual([
      {
        source: { namespace: 'default', workload: 'sleep' },
        destination: { namespace: 'default', service: 'ratings', host: 'ratings.default.svc.cluster.local', subset: 'v1', port: 9080 },
        layer: 'L7',
        allowed: 5,
        denied: 8,
        deny_reasons: { rbac: 7, ext_authz: 1 },
        policies: [
          { policy: 'default/deny-sleep', rule: 1, count: 4 },
          { policy: 'default/deny-sleep', rule: 0, count: 3 },
        ],
      },
      expect.objectContaining({ layer: 'L4', allowed: 2, denied: 0, deny_reasons: {}, policies: [] }),
    ]);
  });
});
