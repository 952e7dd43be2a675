/**
 * lib/store on real ClickHouse: embedded chDB in a temporary data dir (DESIGN.md: real components).
 * One chDB engine per process, so the suite shares one connection and reopens it for the restart case.
 */
import { RESPONSE_FLAGS } from '../model';
import type { Flow, MeshRequest, Span } from '../model';
import type { Connection } from './client';
import { testConnect, STORE_UNDER_TEST, reviewsRequest, TEST_RETENTION, openTestStore, removeTestStore, reviewsSpan } from './store.testutil';
import { migrate, readMigrations, splitStatements } from './migrations';
import {
  LATENCY_BUCKET_SQL,
  bucketValue,
  latencyBucket,
  nearestRank,
  queryEdges,
  queryLatencyShifts,
  queryLedger,
  querySpanEdges,
  querySubsets,
  splitWindow,
} from './queries';
import type { LedgerRow, QueryScope } from './queries';
import { StoreWriter } from './writer';

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0); // a whole minute

/** The store-wide productpage → reviews request, with no subset unless the case gives one. */
const request = (over: Partial<MeshRequest>): MeshRequest => reviewsRequest({ destinationSubset: '', ...over });

function flow(over: Partial<Flow>): Flow {
  return {
    startTimeMs: T0,
    reporter: 'destination',
    sourceWorkload: 'sleep',
    sourceNamespace: 'default',
    sourceAddress: '10.0.0.1:40000',
    destinationHost: 'mysql.default.svc.cluster.local',
    destinationService: 'mysql',
    destinationNamespace: 'default',
    destinationWorkload: 'mysql-v1',
    destinationAddress: '10.0.0.2:3306',
    destinationPort: 3306,
    transport: 'tcp',
    verdict: 'allowed',
    denyReason: '',
    detail: '',
    policy: '',
    rule: -1,
    count: 1,
    bytes: 0,
    packets: 0,
    attributes: {},
    ...over,
  };
}

const scope = (over: Partial<QueryScope> = {}): QueryScope => ({
  fromMs: T0,
  toMs: T0 + 10 * 60_000,
  namespace: '',
  service: '',
  reporter: 'source',
  ...over,
});

describe('latency quantiles by nearest rank from the histogram', () => {
  const histogram = (ds: number[]): Record<string, number> => {
    const h: Record<string, number> = {};
    for (const d of ds) h[latencyBucket(d)] = (h[latencyBucket(d)] ?? 0) + 1;
    return h;
  };

  it('answers the bucket of rank ceil(q·n), within 1 % of the exact value; nothing for no durations', () => {
    const rel = (v: number | null, exact: number): number => Math.abs((v as number) - exact) / exact;
    expect(rel(nearestRank(histogram([84, 10_273]), 99), 10_273)).toBeLessThanOrEqual(0.01);
    expect(rel(nearestRank(histogram([84, 10_273]), 90), 10_273)).toBeLessThanOrEqual(0.01);
    expect(rel(nearestRank(histogram([84, 10_273]), 50), 84)).toBeLessThanOrEqual(0.01);
    expect(nearestRank({}, 99)).toBeNull();
    expect(nearestRank(histogram([0, 0, 5]), 50)).toBe(0);
    let seed = 7;
    const next = (): number => (seed = (seed * 48271) % 2147483647) / 2147483647;
    for (const n of [1, 2, 3, 10, 99, 100, 101, 1000, 12345]) {
      const ds = Array.from({ length: n }, () => Math.exp(next() * 14) / 10);
      const sorted = [...ds].sort((a, b) => a - b);
      for (const p of [50, 90, 99]) {
        const exact = sorted[Math.ceil((p * n) / 100) - 1] as number;
        const got = nearestRank(histogram(ds), p) as number;
        expect([n, p, Math.abs(got - exact) / exact <= 0.01]).toEqual([n, p, true]);
      }
    }
  });
});

describe(`lib/store on ${STORE_UNDER_TEST}`, () => {
  let dir: string;
  let conn: Connection;
  let writer: StoreWriter;

  beforeAll(async () => {
    ({ dir, conn } = await openTestStore('meshlens-store-'));
    writer = new StoreWriter(conn);
  });
  afterAll(async () => {
    await removeTestStore({ dir, conn });
  });

  const count = async (sql: string): Promise<number> => {
    const rs = await conn.client.query({ query: sql, format: 'JSONEachRow' });
    return Number(Object.values((await rs.json<Record<string, number>>())[0] ?? {})[0] ?? 0);
  };
  const clear = async (): Promise<void> => {
    for (const t of ['requests', 'flows', 'spans', 'requests_rollup_1m', 'flows_1m', 'span_edges_1m']) await conn.client.command({ query: `TRUNCATE TABLE ${conn.database}.${t}` });
    // A fresh writer: records of earlier cases must not wait for partners in this one.
    writer = new StoreWriter(conn);
  };
  beforeEach(clear);

  it('splits statements and applies migrations once, in order, with retention TTLs; an edited migration stops the start', async () => {
    expect(splitStatements('-- c\nCREATE TABLE a (x UInt8) ENGINE = Memory;\n\nSELECT 1;\n')).toEqual(['CREATE TABLE a (x UInt8) ENGINE = Memory', 'SELECT 1']);
    expect(await migrate(conn, TEST_RETENTION)).toEqual([]);
    expect(await count(`SELECT count() FROM ${conn.database}.schema_migrations`)).toBe(readMigrations().length);

    await migrate(conn, { rawDays: 5, rollupDays: 30 });
    const rs = await conn.client.query({ query: `SELECT name, engine_full FROM system.tables WHERE database = '${conn.database}' AND name IN ('requests', 'requests_rollup_1m')`, format: 'JSONEachRow' });
    const engines = Object.fromEntries((await rs.json<{ name: string; engine_full: string }>()).map((r) => [r.name, r.engine_full]));
    expect(engines.requests).toMatch(/toIntervalDay\(5\)/);
    expect(engines.requests_rollup_1m).toMatch(/toIntervalDay\(30\)/);
    await migrate(conn, TEST_RETENTION);

    const edited = readMigrations().map((m, i) => (i === 0 ? { ...m, checksum: 'edited' } : m));
    await expect(migrate(conn, TEST_RETENTION, edited)).rejects.toThrow(/changed after it was applied/);
  });

  it('counts a batch delivered twice once, in the raw table and in every rollup; another token counts again', async () => {
    const batch = Array.from({ length: 300 }, (_, i) =>
      request({ startTimeMs: T0 + i * 1000, requestId: `r${i}`, outcome: i % 10 === 0 ? 'error' : 'ok', responseCode: i % 10 === 0 ? 503 : 200, durationMs: i }),
    );
    const flows = [flow({ count: 3 }), flow({ verdict: 'denied', denyReason: 'network_policy', policy: 'default/deny-sleep', rule: 0 })];
    await writer.storeRecords('requests', batch, 'g/meshlens.requests/0/10-12');
    await writer.storeRecords('requests', batch, 'g/meshlens.requests/0/10-12');
    await writer.storeRecords('flows', flows, 'g/meshlens.flows/0/4-4');
    await writer.storeRecords('flows', flows, 'g/meshlens.flows/0/4-4');
    const db = conn.database;
    expect(await count(`SELECT count() FROM ${db}.requests`)).toBe(300);
    expect(await count(`SELECT sum(requests) FROM ${db}.requests_rollup_1m WHERE reporter = 'source'`)).toBe(300);
    expect(await count(`SELECT sum(errors) FROM ${db}.requests_rollup_1m WHERE reporter = 'source'`)).toBe(30);
    expect(await count(`SELECT sum(requests) FROM ${db}.requests_rollup_1m WHERE reporter = 'all'`)).toBe(300);
    expect(await count(`SELECT count() FROM ${db}.flows`)).toBe(2);
    expect(await count(`SELECT sumMerge(connections) FROM ${db}.flows_1m`)).toBe(4);
    const [subset] = await querySubsets(conn, scope());
    expect(subset).toMatchObject({ requests: 300, errors: 30 });

    await writer.storeRecords('requests', batch, 'g/meshlens.requests/0/13-15');
    expect(await count(`SELECT count() FROM ${db}.requests`)).toBe(600);
    expect(await count(`SELECT sum(requests) FROM ${db}.requests_rollup_1m WHERE reporter = 'source'`)).toBe(600);
  });

  it('answers any window exactly: whole minutes from rollups, the partial minutes at the edges from raw rows', async () => {
    const rows: MeshRequest[] = [];
    for (let i = 0; i < 2400; i++) {
      const subset = i % 20 === 0 ? 'v3' : 'v1';
      const error = subset === 'v3' ? i % 3 === 0 : i % 97 === 0;
      rows.push(request({ startTimeMs: T0 + i * 125, requestId: `w${i}`, destinationSubset: subset, outcome: error ? 'error' : 'ok', durationMs: 1 + ((i * 7919) % 500) }));
    }
    await writer.storeRecords('requests', rows, 'window-test');
    const windows: [number, number][] = [
      [T0, T0 + 300_000], // aligned
      [T0 + 15_500, T0 + 250_250], // both edges partial
      [T0 + 61_000, T0 + 62_000], // inside one minute
      [T0 - 30_000, T0 + 30_000],
    ];
    expect(splitWindow(T0 + 15_500, T0 + 250_250)).toEqual({ rollupFrom: (T0 + 60_000) / 1000, rollupTo: (T0 + 240_000) / 1000, rawA: T0 + 60_000, rawB: T0 + 240_000 });
    for (const [fromMs, toMs] of windows) {
      const inWindow = rows.filter((r) => r.startTimeMs >= fromMs && r.startTimeMs < toMs);
      const got = await querySubsets(conn, scope({ fromMs, toMs }));
      for (const subset of ['v1', 'v3']) {
        const want = inWindow.filter((r) => r.destinationSubset === subset);
        const row = got.find((g) => g.subset === subset);
        expect({ subset, requests: row?.requests ?? 0, errors: row?.errors ?? 0 }).toEqual({
          subset,
          requests: want.length,
          errors: want.filter((r) => r.outcome === 'error').length,
        });
        // The stated error of the query API's quantiles (docs/api.md): within 1 % of the exact nearest-rank value,
        // the duration at rank ceil(q·n) of the sorted durations.
        const d = want.map((r) => r.durationMs).sort((a, b) => a - b);
        expect(row?.latencySamples ?? 0).toBe(d.length);
        for (const [q, v] of d.length === 0 ? [] : ([[0.5, row?.latencyMs.p50], [0.9, row?.latencyMs.p90], [0.99, row?.latencyMs.p99]] as const)) {
          const exact = d[Math.ceil(q * d.length) - 1] as number;
          const error = Math.abs((v as number) - exact) / exact;
          expect([subset, q, error <= 0.01 ? 'within 1 %' : error]).toEqual([subset, q, 'within 1 %']);
        }
      }
    }
  });

  it('takes quantiles by nearest rank, rank ceil(q·n): the p99 of {84 ms, 10,273 ms} is 10,273 ms, from rollups, raw edges and reporter=all', async () => {
    const hop = { destinationSubset: 'v1' };
    await writer.storeRecords(
      'requests',
      [
        request({ ...hop, startTimeMs: T0 + 10_000, requestId: 'q1', durationMs: 84 }),
        request({ ...hop, startTimeMs: T0 + 20_000, requestId: 'q2', durationMs: 10_273 }),
      ],
      'nearest-rank',
    );
    const near = (v: number | null | undefined, exact: number): boolean => v !== null && v !== undefined && Math.abs(v - exact) / exact <= 0.01;
    const windows: [string, QueryScope][] = [
      ['whole minute (rollup)', scope({ toMs: T0 + 60_000 })],
      ['partial minute (raw)', scope({ fromMs: T0 + 5_000, toMs: T0 + 30_000 })],
      ['reporter=all', scope({ reporter: 'all' })],
    ];
    for (const [name, s] of windows) {
      const [row] = await querySubsets(conn, s);
      expect([name, row?.latencySamples, near(row?.latencyMs.p50, 84), near(row?.latencyMs.p90, 10_273), near(row?.latencyMs.p99, 10_273)]).toEqual([
        name, 2, true, true, true,
      ]);
      const [edge] = await queryEdges(conn, s);
      expect([name, near(edge?.p99Ms, 10_273)]).toEqual([name, true]);
    }
  });

  it('answers the latency of minutes rolled up before the histogram existed as unknown, and counts their requests', async () => {
    const db = conn.database;
    // A minute as migration 003 left it (counts and a DDSketch state, no histogram), as migration 009 brought it
    // over: counts, an empty histogram, no ledger details (lib/store/upgrade.test.ts checks 009 on such a minute).
    await conn.client.command({
      query: `INSERT INTO ${db}.requests_rollup_1m (minute, reporter, sourceWorkload, sourceNamespace, destinationHost, destinationService, destinationNamespace,
          destinationSubset, destinationPort, protocol, outcome, denyReason, policy, rule, requests, errors, denied, appErrors, meshFailures)
        VALUES (toDateTime(${T0 / 1000}, 'UTC'), 'source', 'productpage-v1', 'default', 'reviews.default.svc.cluster.local', 'reviews', 'default', 'v1',
          0, '', '', '', '', 0, 5, 1, 0, 1, 0)`,
    });
    let [row] = await querySubsets(conn, scope({ toMs: T0 + 120_000 }));
    expect(row).toMatchObject({ requests: 5, errors: 1, latencySamples: 0, latencyMs: { p50: null, p90: null, p99: null } });
    // A later minute with a histogram: the quantiles rest on its durations alone, and say how many.
    await writer.storeRecords('requests', [request({ startTimeMs: T0 + 61_000, requestId: 'new', destinationSubset: 'v1', durationMs: 40 })], 'after-migration');
    [row] = await querySubsets(conn, scope({ toMs: T0 + 120_000 }));
    expect(row).toMatchObject({ requests: 6, latencySamples: 1 });
    expect(Math.abs((row?.latencyMs.p99 as number) - 40) / 40).toBeLessThanOrEqual(0.01);
  });

  it('maps durations to histogram buckets the same way in SQL (migration 004, raw rows) and in TypeScript', async () => {
    const sql = readMigrations().find((m) => m.version === 4)?.statements.join(';\n') ?? '';
    expect(sql).toContain(LATENCY_BUCKET_SQL('durationMs'));
    const values = [0, -1, 1e-9, 0.001, 0.5, 1, 1.0202, 3.7, 84, 999.99, 10_273, 86_400_000, 1e300];
    // Literals, not parameters: the client refuses to bind 1e300 (beyond 2^53).
    const xs = values.map((v) => `toFloat64('${String(v)}')`).join(', ');
    const rs = await conn.client.query({ query: `SELECT ${LATENCY_BUCKET_SQL('x')} AS b FROM (SELECT arrayJoin([${xs}]) AS x)`, format: 'JSONEachRow' });
    expect((await rs.json<{ b: number }>()).map((r) => r.b)).toEqual(values.map(latencyBucket));
    for (const x of values.filter((v) => v > 1e-6 && v < 1e12)) {
      expect(Math.abs(bucketValue(latencyBucket(x)) - x) / x).toBeLessThanOrEqual(0.01);
    }
    expect(bucketValue(latencyBucket(0))).toBe(0);
  });

  it('counts a request both sidecars reported once for reporter=all, with the destination verdict; per reporter otherwise', async () => {
    const denied = { responseCode: 403, responseCodeDetails: '' };
    await writer.storeRecords(
      'requests',
      [
        // sleep → ratings: the client sidecar sees a plain 403, the server sidecar's RBAC filter denied it.
        request({ startTimeMs: T0 + 1000, requestId: 'a', sourceWorkload: 'sleep', destinationService: 'ratings', destinationHost: 'ratings.default.svc.cluster.local', destinationSubset: 'v1', ...denied }),
        request({ startTimeMs: T0 + 1001, requestId: 'a', reporter: 'destination', sourceWorkload: 'unknown', destinationService: 'ratings', destinationHost: 'ratings.default.svc.cluster.local', ...denied, outcome: 'denied', denyReason: 'rbac', policy: 'default/deny-sleep', rule: 0 }),
        // The same x-request-id one hop further is another request.
        request({ startTimeMs: T0 + 1002, requestId: 'a', sourceWorkload: 'reviews-v2', destinationService: 'mysql', destinationHost: 'mysql.default.svc.cluster.local', protocol: 'tcp', destinationPort: 3306 }),
        // Only the destination reported this one.
        request({ startTimeMs: T0 + 2000, requestId: 'b', reporter: 'destination', sourceWorkload: 'sleep', destinationService: 'ratings', destinationHost: 'ratings.default.svc.cluster.local', destinationSubset: 'v1' }),
      ],
      'dedup-test',
    );
    await writer.storeRecords('flows', [flow({ verdict: 'denied', denyReason: 'network_policy', policy: 'default/db-only', rule: 1, count: 2 })], 'dedup-flows');

    const ledger = await queryLedger(conn, scope({ reporter: 'all' }));
    const ratings = ledger.filter((r) => r.destinationService === 'ratings');
    expect(ratings).toHaveLength(2);
    expect(ratings).toEqual(
      expect.arrayContaining([
        // Request b: only the destination saw it, allowed.
        expect.objectContaining({ layer: 'L7', sourceWorkload: 'sleep', subset: 'v1', denied: false, count: 1 }),
        // Request a: named by the source side (caller, subset), judged by the destination side (denied by RBAC).
        expect.objectContaining({ layer: 'L7', sourceWorkload: 'sleep', subset: 'v1', denied: true, denyReason: 'rbac', policy: 'default/deny-sleep', rule: 0, count: 1 }),
      ]),
    );
    expect(ratings.reduce((n, r) => n + r.count, 0)).toBe(2);
    expect(ledger.filter((r) => r.destinationService === 'mysql')).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ layer: 'L4', sourceWorkload: 'reviews-v2', denied: false, count: 1 }),
        expect.objectContaining({ layer: 'L4', sourceWorkload: 'sleep', denied: true, denyReason: 'network_policy', policy: 'default/db-only', rule: 1, count: 2 }),
      ]),
    );

    const bySource = await queryLedger(conn, scope({ reporter: 'source' }));
    expect(bySource.filter((r) => r.destinationService === 'ratings')).toEqual([expect.objectContaining({ denied: false, count: 1 })]);
    const subsets = await querySubsets(conn, scope({ reporter: 'all', service: 'ratings' }));
    expect(subsets).toEqual([expect.objectContaining({ service: 'ratings', subset: 'v1', requests: 2, denied: 1 })]);
    const edges = await queryEdges(conn, scope({ reporter: 'destination', service: 'ratings' }));
    expect(edges.map((e) => [e.sourceWorkload, e.requests, e.denied])).toEqual([
      ['sleep', 1, 0],
      ['unknown', 1, 1],
    ]);
  });

  it('pairs the i-th source record with the i-th destination record of a request id on a hop: retries are requests of their own', async () => {
    const hop = { destinationService: 'ratings', destinationHost: 'ratings.default.svc.cluster.local' };
    const server = { ...hop, reporter: 'destination' as const, sourceWorkload: 'unknown', sourceNamespace: 'unknown' };
    await writer.storeRecords(
      'requests',
      [
        // Envoy retried twice: one client line (the last answer, URX), three server lines (one per attempt).
        request({ ...hop, startTimeMs: T0 + 1000, requestId: 'r', destinationSubset: 'v1', responseCode: 503, responseFlags: 'URX', outcome: 'error', durationMs: 90 }),
        request({ ...server, startTimeMs: T0 + 1001, requestId: 'r', responseCode: 503, outcome: 'error', durationMs: 20 }),
        request({ ...server, startTimeMs: T0 + 1030, requestId: 'r', responseCode: 503, outcome: 'error', durationMs: 20 }),
        request({ ...server, startTimeMs: T0 + 1060, requestId: 'r', responseCode: 503, outcome: 'error', durationMs: 20 }),
        // The application retried with the id it was given: both sidecars logged two requests; the second was denied.
        request({ ...hop, startTimeMs: T0 + 2000, requestId: 'a', destinationSubset: 'v1' }),
        request({ ...server, startTimeMs: T0 + 2001, requestId: 'a' }),
        request({ ...hop, startTimeMs: T0 + 3000, requestId: 'a', destinationSubset: 'v1', responseCode: 403 }),
        request({ ...server, startTimeMs: T0 + 3001, requestId: 'a', responseCode: 403, outcome: 'denied', denyReason: 'rbac', policy: 'default/deny', rule: 0 }),
      ],
      'pairing-test',
    );
    // The server's attempts keep no subset of their own: unpaired, they count under ''. Paired ones take the client's.
    expect(await querySubsets(conn, scope({ reporter: 'all', service: 'ratings' }))).toEqual([
      expect.objectContaining({ subset: '', requests: 2, errors: 2, denied: 0 }),
      expect.objectContaining({ subset: 'v1', requests: 3, errors: 1, denied: 1, meshFailures: 1 }),
    ]);
    const ledger = await queryLedger(conn, scope({ reporter: 'all', service: 'ratings' }));
    expect(ledger.reduce((n, r) => n + r.count, 0)).toBe(5);
    expect(ledger.filter((r) => r.denied)).toEqual([expect.objectContaining({ subset: 'v1', sourceWorkload: 'productpage-v1', denyReason: 'rbac', policy: 'default/deny', count: 1 })]);
  });

  it('spells an unknown namespace, workload or service "unknown" as /metrics does, whichever spelling is stored, and filters on it', async () => {
    const blackhole = { destinationHost: 'BlackHoleCluster', destinationService: 'BlackHoleCluster', protocol: 'tcp', outcome: 'denied', denyReason: 'blackhole' } as const;
    await writer.storeRecords(
      'requests',
      [
        // Stored before and after the normalizer said `unknown`: one destination either way.
        request({ ...blackhole, startTimeMs: T0 + 1000, destinationNamespace: '', sourceWorkload: '', sourceNamespace: '' }),
        request({ ...blackhole, startTimeMs: T0 + 2000, destinationNamespace: 'unknown', sourceWorkload: 'unknown', sourceNamespace: 'unknown' }),
        request({ startTimeMs: T0 + 3000, requestId: 'x', destinationHost: 'httpbin.org', destinationService: 'httpbin.org', destinationNamespace: '' }),
      ],
      'unknown-spelling',
    );
    await writer.storeRecords('flows', [flow({ destinationHost: '93.184.216.34', destinationService: '93.184.216.34', destinationNamespace: '', sourceNamespace: '' })], 'unknown-flows');

    for (const reporter of ['source', 'all'] as const) {
      const subsets = await querySubsets(conn, scope({ reporter, namespace: 'unknown' }));
      expect(subsets.map((s) => [s.namespace, s.service, s.host, s.subset, s.requests])).toEqual([
        ['unknown', 'BlackHoleCluster', 'BlackHoleCluster', '', 2],
        ['unknown', 'httpbin.org', 'httpbin.org', '', 1],
      ]);
      const edges = await queryEdges(conn, scope({ reporter, service: 'BlackHoleCluster' }));
      expect(edges.map((e) => [e.sourceNamespace, e.sourceWorkload, e.destinationNamespace, e.requests])).toEqual([['unknown', 'unknown', 'unknown', 2]]);
    }
    expect(await querySubsets(conn, scope({ namespace: 'default' }))).toEqual([]);
    const ledger = await queryLedger(conn, scope({ reporter: 'all', namespace: 'unknown' }));
    expect(ledger.map((r) => [r.layer, r.sourceNamespace, r.sourceWorkload, r.destinationNamespace, r.destinationService, r.count]).sort()).toEqual([
      ['L4', 'unknown', 'sleep', 'unknown', '93.184.216.34', 1],
      ['L4', 'unknown', 'unknown', 'unknown', 'BlackHoleCluster', 2],
      ['L7', 'default', 'productpage-v1', 'unknown', 'httpbin.org', 1],
    ]);
  });

  it('counts flow records of both nodes once per (flow, minute) for reporter=all: the destination verdict wins, the surplus counts as its side saw it', async () => {
    // frontend → reviews: the source node names the Service, the destination node only the pod (no Service).
    const src = { reporter: 'source' as const, sourceWorkload: 'frontend', destinationService: 'reviews', destinationHost: 'reviews.default.svc.cluster.local', destinationWorkload: 'reviews-v1', destinationPort: 9080 };
    const dst = { ...src, reporter: 'destination' as const, destinationService: 'reviews-v1', destinationHost: 'reviews-v1.default.svc.cluster.local' };
    const denied = { verdict: 'denied', denyReason: 'network_policy', policy: 'default/reviews-ingress', rule: 0 } as const;
    const batch = (minute: number): Flow[] => [
      // 5 connections left the source node; the destination node saw 4 of them, refused 1.
      flow({ ...src, startTimeMs: minute + 1000, count: 5 }),
      flow({ ...dst, startTimeMs: minute + 1500, count: 3 }),
      flow({ ...dst, ...denied, startTimeMs: minute + 1600, count: 1 }),
      // 2 refused by the source's own egress policy: the destination never saw them.
      flow({ ...src, verdict: 'denied', denyReason: 'network_policy', policy: 'default/frontend-egress', rule: 1, startTimeMs: minute + 2000, count: 2 }),
      // No reporter known: counted as it is.
      flow({ ...src, reporter: 'unknown', startTimeMs: minute + 3000, count: 1 }),
    ];
    await writer.storeRecords('flows', [...batch(T0), ...batch(T0 + 60_000)], 'both-nodes');
    // Reported in different minutes: no pair, each counted.
    await writer.storeRecords('flows', [flow({ ...src, startTimeMs: T0 + 120_000 + 59_000 }), flow({ ...dst, ...denied, startTimeMs: T0 + 180_000 + 500 })], 'split-minute');

    const summary = (rows: LedgerRow[]) => {
      const out: Record<string, number> = {};
      for (const r of rows.filter((x) => x.layer === 'L4')) {
        const k = `${r.destinationService} ${r.denied ? `denied ${r.policy}` : 'allowed'}`;
        out[k] = (out[k] ?? 0) + r.count;
      }
      return out;
    };
    // Minute 1 from raw rows (partial window), minute 2 from the rollup.
    expect(summary(await queryLedger(conn, scope({ reporter: 'all', fromMs: T0 + 500, toMs: T0 + 120_000 })))).toEqual({
      'reviews allowed': 2 * (3 + 1 + 1),
      'reviews denied default/reviews-ingress': 2,
      'reviews denied default/frontend-egress': 4,
    });
    // Alone in its minute, the destination's record keeps the name it gave (the pod's workload, no Service).
    expect(summary(await queryLedger(conn, scope({ reporter: 'all', fromMs: T0 + 120_000, toMs: T0 + 240_000 })))).toEqual({
      'reviews allowed': 1,
      'reviews-v1 denied default/reviews-ingress': 1,
    });
    expect(summary(await queryLedger(conn, scope({ reporter: 'destination', toMs: T0 + 120_000 })))).toEqual({
      'reviews-v1 allowed': 6,
      'reviews-v1 denied default/reviews-ingress': 2,
    });
  });

  it('adds graph edges that only traces saw: CLIENT spans of hops no access log reported', async () => {
    const span = (over: Partial<Span>): Span => reviewsSpan({ startTimeMs: T0 + 5000, ...over });
    await writer.storeRecords('requests', [request({ startTimeMs: T0 + 5000, requestId: 'logged', destinationSubset: 'v2' })], 'span-edges-requests');
    await writer.storeRecords(
      'spans',
      [
        span({ requestId: 'logged' }), // its hop is in the access logs: no extra edge
        span({ requestId: 'logged', destinationService: 'ratings', destinationHost: 'ratings.default.svc.cluster.local', destinationSubset: 'v1' }), // same id, another hop
        span({ requestId: 'only-traced', error: true, responseCode: 503 }),
        span({ requestId: 'x', kind: 'server' }), // server spans name no callee
      ],
      'span-edges-spans',
    );
    const edges = await querySpanEdges(conn, scope());
    expect(edges.map((e) => [e.caller, e.destinationService, e.subset, e.requests, e.errors])).toEqual([
      ['productpage.default', 'ratings', 'v1', 1, 0],
      ['productpage.default', 'reviews', 'v2', 1, 1],
    ]);
  });

  it('tells application 5xx from mesh-generated failures and denials, in rollups, raw edges and reporter=all', async () => {
    const rows = [
      request({ startTimeMs: T0 + 1_000, requestId: 'a', responseCode: 500, outcome: 'error' }),
      request({ startTimeMs: T0 + 2_000, requestId: 'b', responseCode: 503, responseFlags: 'UF,URX', outcome: 'error' }),
      request({ startTimeMs: T0 + 3_000, requestId: 'c', responseCode: 0, responseFlags: 'UH', outcome: 'error' }),
      request({ startTimeMs: T0 + 4_000, requestId: 'd', responseCode: 404, responseFlags: 'NR', outcome: 'ok' }),
      request({ startTimeMs: T0 + 5_000, requestId: 'e', responseCode: 403, outcome: 'denied', denyReason: 'rbac' }),
      request({ startTimeMs: T0 + 6_000, requestId: 'f', responseCode: 200, responseFlags: 'DC', outcome: 'ok' }),
      request({ startTimeMs: T0 + 61_000, requestId: 'g', responseCode: 502, outcome: 'error' }),
    ];
    await writer.storeRecords('requests', rows, 'classes-test');
    const want = { requests: 7, errors: 4, appErrors: 2, meshFailures: 3, denied: 1 };
    for (const [fromMs, toMs] of [[T0, T0 + 120_000], [T0 + 500, T0 + 90_000]] as const) {
      for (const reporter of ['source', 'all'] as const) {
        expect((await querySubsets(conn, scope({ fromMs, toMs, reporter })))[0]).toMatchObject(want);
      }
    }
  });

  it('classifies mesh failures in SQL with the same flag list as lib/model', () => {
    const sql = readMigrations().find((m) => m.version === 3)?.statements.join(';\n') ?? '';
    const listed = /hasAny\(splitByChar\(',', responseFlags\),\s*\[([^\]]*)\]\)/.exec(sql)?.[1] ?? '';
    const codes = [...listed.matchAll(/'([A-Z]+)'/g)].map((m) => m[1]);
    expect(codes.sort()).toEqual(RESPONSE_FLAGS.filter((f) => f.category === 'upstream_failure').map((f) => f.code).sort());
  });

  it('runs Mann-Whitney U per canary/baseline pair: a slower canary has a small p-value, an equal one does not', async () => {
    const rows: MeshRequest[] = [];
    for (let i = 0; i < 400; i++) {
      const jitter = (i * 7919) % 100;
      rows.push(request({ startTimeMs: T0 + i * 100, requestId: `m${i}`, destinationSubset: 'v1', durationMs: 10 + jitter }));
      if (i % 4 === 0) rows.push(request({ startTimeMs: T0 + i * 100, requestId: `s${i}`, destinationSubset: 'v2', durationMs: 10 + jitter }));
      if (i % 4 === 1) rows.push(request({ startTimeMs: T0 + i * 100, requestId: `l${i}`, destinationSubset: 'v3', durationMs: 40 + jitter }));
    }
    await writer.storeRecords('requests', rows, 'latency-test');
    const host = 'reviews.default.svc.cluster.local';
    const pairs = [
      { host, baseline: 'v1', canary: 'v2' },
      { host, baseline: 'v1', canary: 'v3' },
      { host, baseline: 'v1', canary: 'v9' },
    ];
    const [same, slower, missing] = await queryLatencyShifts(conn, scope(), pairs);
    expect(same).toMatchObject({ ...pairs[0], baselineCount: 400, canaryCount: 100 });
    expect(same?.pValue).toBeGreaterThan(0.05);
    expect(slower).toMatchObject({ ...pairs[1], baselineCount: 400, canaryCount: 100 });
    expect(slower?.pValue).toBeLessThan(1e-6);
    expect(slower?.canaryMedianMs).toBeGreaterThan(slower?.baselineMedianMs ?? Infinity);
    expect(missing).toMatchObject({ canaryCount: 0, pValue: 1 });
  });

  it('upgrades a store at migration 003 in place: its history stays, later minutes get latency histograms and flow workloads', async () => {
    await conn.client.close();
    const old = await openTestStore('meshlens-store-003-', 3);
    conn = old.conn;
    try {
      writer = new StoreWriter(conn);
      // Raw rows only: at migration 003 the materialized views wrote the rollups, as older versions relied on.
      await writer.insert('requests', [request({ startTimeMs: T0 + 1000, requestId: 'before', durationMs: 12 })], 'before-004');
      await writer.insert('flows', [flow({ count: 2 })], 'before-004-flows');
      expect(await migrate(conn, TEST_RETENTION)).toEqual(readMigrations().filter((m) => m.version > 3).map((m) => m.name));
      await writer.storeRecords('requests', [request({ startTimeMs: T0 + 61_000, requestId: 'after', durationMs: 30 })], 'after-004');
      await writer.storeRecords('flows', [flow({ startTimeMs: T0 + 61_000, count: 3 })], 'after-004-flows');
      const [row] = await querySubsets(conn, scope());
      expect(row).toMatchObject({ requests: 2, latencySamples: 1 });
      expect(Math.abs((row?.latencyMs.p99 as number) - 30) / 30).toBeLessThanOrEqual(0.01);
      const rs = await conn.client.query({
        query: `SELECT toUnixTimestamp(minute) * 1000 AS m, destinationWorkload AS w, sumMerge(connections) AS n FROM ${conn.database}.flows_1m GROUP BY m, w ORDER BY m`,
        format: 'JSONEachRow',
      });
      expect(await rs.json()).toEqual([
        { m: T0, w: '', n: 2 },
        { m: T0 + 60_000, w: 'mysql-v1', n: 3 },
      ]);
    } finally {
      await removeTestStore(old);
      conn = testConnect(dir);
      writer = new StoreWriter(conn);
    }
  });

  it('keeps history across a restart on the same data dir, unchanged', async () => {
    const rows = Array.from({ length: 500 }, (_, i) => request({ startTimeMs: T0 + i * 500, requestId: `h${i}`, durationMs: i % 50, outcome: i % 25 === 0 ? 'error' : 'ok' }));
    await writer.storeRecords('requests', rows, 'restart-test');
    const before = { subsets: await querySubsets(conn, scope()), ledger: await queryLedger(conn, scope({ reporter: 'all' })) };
    await conn.client.close();

    conn = testConnect(dir);
    expect(await migrate(conn, TEST_RETENTION)).toEqual([]);
    writer = new StoreWriter(conn);
    const after = { subsets: await querySubsets(conn, scope()), ledger: await queryLedger(conn, scope({ reporter: 'all' })) };
    expect(after).toEqual(before);
    expect(after.subsets[0]).toMatchObject({ requests: 500, errors: 20 });
    // The dedup log survives too: the same batch after the restart still counts once.
    await writer.storeRecords('requests', rows, 'restart-test');
    expect((await querySubsets(conn, scope()))[0]).toMatchObject({ requests: 500 });
  });
});
