/**
 * Calls only traces saw (span_edges_1m): a CLIENT span counts unless an access log of its hop (request id,
 * destination service) came before it or comes within the pairing window after it, whatever raw request rows are
 * kept; both consumers may run at once; the state is bounded and survives a save and load. Then the same through the
 * writer on real ClickHouse (embedded chDB), and migration 008 filling the table from a store upgraded in place.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { emptyRequest } from '../model';
import type { MeshRequest, Span } from '../model';
import type { Connection } from './client';
import { openTestStore, removeTestStore, STORE_UNDER_TEST, TEST_RETENTION, testConnect, reviewsSpan } from './store.testutil';
import { migrate, readMigrations } from './migrations';
import { PAIRING_WINDOW_MS } from './pairing';
import { querySpanEdges } from './queries';
import type { QueryScope } from './queries';
import { hopOf, SpanEdges } from './spanedges';
import type { SpanEdgeRollupRow } from './spanedges';
import { StoreWriter } from './writer';

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0); // a whole minute
const RETENTION = TEST_RETENTION;

function span(requestId: string, over: Partial<Span> = {}): Span {
  return reviewsSpan({ startTimeMs: T0 + 5000, requestId, ...over });
}

function request(requestId: string, over: Partial<MeshRequest> = {}): MeshRequest {
  return {
    ...emptyRequest(),
    startTimeMs: T0 + 5000,
    reporter: 'source',
    requestId,
    sourceWorkload: 'productpage-v1',
    sourceNamespace: 'default',
    destinationHost: 'reviews.default.svc.cluster.local',
    destinationService: 'reviews',
    destinationNamespace: 'default',
    destinationSubset: 'v2',
    responseCode: 200,
    outcome: 'ok',
    ...over,
  };
}

/** Net spans per (caller, service, subset), as the query API sums the rows; zero sums left out. */
function totals(rows: SpanEdgeRollupRow[]): Record<string, { requests: number; errors: number }> {
  const out: Record<string, { requests: number; errors: number }> = {};
  for (const r of rows) {
    const t = (out[`${r.serviceName} ${r.destinationService} ${r.destinationSubset}`] ??= { requests: 0, errors: 0 });
    t.requests += r.requests;
    t.errors += r.errors;
  }
  for (const [k, t] of Object.entries(out)) if (t.requests === 0 && t.errors === 0) delete out[k];
  return out;
}

type Batch = { spans: Span[] } | { requests: MeshRequest[] };

/** Feeds batches through plan and commit as the writer does (one at a time), returning every row written. */
function run(edges: SpanEdges, batches: Batch[], now = T0): SpanEdgeRollupRow[] {
  const rows: SpanEdgeRollupRow[] = [];
  for (const b of batches) {
    const plan = 'spans' in b ? edges.planSpans(b.spans, now) : edges.planLogs(edges.markLogged(b.requests, now), now);
    rows.push(...plan.rows);
    edges.commit(plan, now);
  }
  return rows;
}

describe('SpanEdges', () => {
  const only = { 'productpage.default reviews v2': { requests: 1, errors: 0 } };

  it('counts a call at once and takes it back when a log of its hop comes later; a hop logged before counts nothing', () => {
    const later = new SpanEdges();
    const first = run(later, [{ spans: [span('a')] }]);
    expect(totals(first)).toEqual(only);
    expect(later.waitingSpans).toBe(1);
    // The server's record names the same hop: any reporter's record counts as a log of it.
    expect(totals([...first, ...run(later, [{ requests: [request('a', { reporter: 'destination', sourceWorkload: 'unknown' })] }])])).toEqual({});
    expect(later.waitingSpans).toBe(0);

    const before = new SpanEdges();
    expect(run(before, [{ requests: [request('b')] }, { spans: [span('b'), span('b', { spanId: '0'.repeat(15) + '2' })] }])).toEqual([]);
    expect(before.waitingSpans).toBe(0);
  });

  it('counts calls no log shows: another hop of a logged request id, no request id; never server spans or calls to no known service', () => {
    const edges = new SpanEdges();
    const rows = run(edges, [
      { requests: [request('a')] },
      {
        spans: [
          span('a', { destinationService: 'ratings', destinationHost: 'ratings.default.svc.cluster.local', destinationSubset: 'v1' }),
          span('', { error: true, responseCode: 503 }),
          span('x', { kind: 'server' }),
          span('y', { destinationService: '', destinationHost: '', upstreamCluster: '' }),
        ],
      },
    ]);
    expect(totals(rows)).toEqual({ 'productpage.default ratings v1': { requests: 1, errors: 0 }, 'productpage.default reviews v2': { requests: 1, errors: 1 } });
    // A span without a request id can never be matched, so it does not wait.
    expect(edges.waitingSpans).toBe(1);
  });

  it('takes back every span of a hop once, however many records log it, in one batch or several', () => {
    const edges = new SpanEdges();
    const rows = run(edges, [
      { spans: [span('r'), span('r', { spanId: '0'.repeat(15) + '2', error: true })] },
      { requests: [request('r'), request('r', { reporter: 'destination' }), request('r', { reporter: 'destination' })] },
      { requests: [request('r', { reporter: 'destination' })] },
    ]);
    expect(totals(rows)).toEqual({});
  });

  it('forgets logged hops and lets waiting spans give up after the pairing window: they stay counted', () => {
    const edges = new SpanEdges();
    run(edges, [{ requests: [request('old')] }], T0);
    expect(totals(run(edges, [{ spans: [span('old')] }], T0 + PAIRING_WINDOW_MS))).toEqual(only);
    expect(edges.loggedHops).toBe(0);
    // That span waits from T0 + window; at twice the window it gives up, and a log of its hop takes nothing back.
    expect(totals(run(edges, [{ requests: [request('old')] }], T0 + 2 * PAIRING_WINDOW_MS))).toEqual({});
    expect(edges.waitingSpans).toBe(0);
  });

  it('bounds the hops it remembers and the spans that wait, oldest first, and counts what it dropped', () => {
    const hops = new SpanEdges(16, 100);
    // Stretches hold at most 16 / 8 = 2 hops; the oldest go when more than 16 are remembered.
    run(hops, [{ requests: Array.from({ length: 20 }, (_, i) => request(`h${i}`)) }]);
    expect([hops.loggedHops, hops.forgotten]).toEqual([16, 4]);
    expect(totals(run(hops, [{ spans: [span('h0')] }]))).toEqual(only);
    expect(run(hops, [{ spans: [span('h19')] }])).toEqual([]);

    const spans = new SpanEdges(100, 2);
    run(spans, [{ spans: ['p', 'q', 'r'].map((id) => span(id)) }]);
    expect([spans.waitingSpans, spans.evicted]).toEqual([2, 1]);
    // 'p' gave up: its log takes nothing back; 'q' still waits.
    expect(totals(run(spans, [{ requests: [request('p'), request('q')] }]))).toEqual({ 'productpage.default reviews v2': { requests: -1, errors: 0 } });
  });

  it('changes nothing until a plan is committed: a retried batch gets the same rows', () => {
    const edges = new SpanEdges();
    run(edges, [{ spans: [span('a')] }]);
    const hops = edges.markLogged([request('a')], T0);
    const first = edges.planLogs(hops, T0);
    expect(edges.planLogs(hops, T0).rows).toEqual(first.rows);
    expect(first.rows).toHaveLength(1);
    edges.commit(first, T0);
    expect(edges.planLogs(hops, T0).rows).toEqual([]);
    const spanPlan = new SpanEdges().planSpans([span('b')], T0);
    expect(spanPlan.rows).toHaveLength(1);
  });

  it('runs one batch at a time between plan and commit: a request batch waits for a span batch in flight, and takes its spans back', async () => {
    const edges = new SpanEdges();
    const rows: SpanEdgeRollupRow[] = [];
    let release = (): void => undefined;
    const stored = new Promise<void>((resolve) => (release = resolve));
    let planned = (): void => undefined;
    const spansPlanned = new Promise<void>((resolve) => (planned = resolve));
    // The span batch plans before the request batch marks its hop, and is still storing its rows.
    const spanBatch = edges.exclusive(async () => {
      const plan = edges.planSpans([span('a')], T0);
      rows.push(...plan.rows);
      planned();
      await stored;
      edges.commit(plan, T0);
    });
    await spansPlanned;
    const hops = edges.markLogged([request('a')], T0);
    const requestBatch = edges.exclusive(async () => {
      const plan = edges.planLogs(hops, T0);
      rows.push(...plan.rows);
      edges.commit(plan, T0);
    });
    await new Promise((r) => setTimeout(r, 10));
    expect(rows).toHaveLength(1);
    release();
    await Promise.all([spanBatch, requestBatch]);
    expect(totals(rows)).toEqual({});
    // A batch that fails leaves the lock to the next one.
    await expect(edges.exclusive(() => Promise.reject(new Error('insert failed')))).rejects.toThrow('insert failed');
    await expect(edges.exclusive(() => Promise.resolve(7))).resolves.toBe(7);
  });

  it('keeps the hops it remembers and the spans that wait across a save and a load', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshlens-span-edges-'));
    try {
      const before = new SpanEdges();
      run(before, [{ requests: [request('logged')] }, { spans: [span('waits')] }]);
      await before.save(join(dir, 'span-edges.json'));
      const after = new SpanEdges();
      expect(await after.load(join(dir, 'span-edges.json'), T0)).toBe(1);
      expect(await new SpanEdges().load(join(dir, 'missing.json'), T0)).toBe(0);
      // Without the saved hop the span would count; without the saved span the log would take nothing back.
      const rows = run(after, [{ spans: [span('logged')] }, { requests: [request('waits')] }]);
      expect(totals(rows)).toEqual({ 'productpage.default reviews v2': { requests: -1, errors: 0 } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('hashes hops apart: 53 bits, ids and services do not trade characters, no collision among 100,000 hops', () => {
    expect(hopOf('ab', 'c')).not.toBe(hopOf('a', 'bc'));
    expect(hopOf('a', 'reviews')).not.toBe(hopOf('a', 'ratings'));
    const seen = new Set<number>();
    let unsafe = 0;
    for (let i = 0; i < 50_000; i++) {
      const id = `${i.toString(16).padStart(8, '0')}-4bd2-9a1e-${i % 7}f3c2e1d0b9a`;
      for (const service of ['reviews', 'ratings']) {
        const h = hopOf(id, service);
        if (!Number.isSafeInteger(h) || h < 0) unsafe++;
        seen.add(h);
      }
    }
    expect([unsafe, seen.size]).toEqual([0, 100_000]);
  });
});

describe(`span_edges_1m on ${STORE_UNDER_TEST}`, () => {
  let dir: string;
  let conn: Connection;

  beforeAll(async () => {
    ({ dir, conn } = await openTestStore('meshlens-span-edges-ch-'));
  }, 60_000);
  afterAll(async () => {
    await removeTestStore({ dir, conn });
  });
  beforeEach(async () => {
    for (const t of ['requests', 'spans', 'requests_rollup_1m', 'span_edges_1m']) {
      await conn.client.command({ query: `TRUNCATE TABLE ${conn.database}.${t}` });
    }
  });

  const scope = (fromMs: number, toMs: number): QueryScope => ({ fromMs, toMs, namespace: '', service: '', reporter: 'all' });
  const answer = async (fromMs: number, toMs: number): Promise<unknown[]> =>
    (await querySpanEdges(conn, scope(fromMs, toMs))).map((e) => [e.caller, e.destinationService, e.subset, e.requests, e.errors]);

  /** Spans of logged hops (some logs before them, some after, ok ones not kept raw) and of hops only traced. */
  const spans = [
    span('logged-before'),
    span('logged-after', { error: true }),
    span('logged-after', { spanId: '0'.repeat(15) + '2' }),
    span('only-traced', { startTimeMs: T0 + 6000, durationMs: 40 }),
    span('only-traced-too', { serviceName: 'reviews.default', destinationService: 'ratings', destinationHost: 'ratings.default.svc.cluster.local', destinationSubset: 'v1', error: true }),
    span('', { startTimeMs: T0 + 7000 }),
  ];
  const want = [
    ['productpage.default', 'reviews', 'v2', 2, 0],
    ['reviews.default', 'ratings', 'v1', 1, 1],
  ];

  it('stores through the writer, exact with only error and denied raw rows kept, request and span batches at once in any order', async () => {
    const writer = new StoreWriter(conn);
    const keepRaw = (r: MeshRequest): boolean => r.outcome !== 'ok';
    await writer.storeRecords('requests', [request('logged-before'), request('logged-before', { reporter: 'destination' })], 'requests-1', keepRaw);
    // The span batch and the batch logging 'logged-after' run together (the consumers do).
    await Promise.all([
      writer.storeRecords('spans', spans, 'spans-1'),
      writer.storeRecords('requests', [request('logged-after', { outcome: 'error', responseCode: 503 }), request('elsewhere')], 'requests-2', keepRaw),
    ]);
    const rs = await conn.client.query({ query: `SELECT count() AS n FROM ${conn.database}.requests`, format: 'JSONEachRow' });
    expect((await rs.json<{ n: number }>())[0]?.n).toBe(1);
    expect(await answer(T0, T0 + 60_000)).toEqual(want);
    // A retried batch counts once.
    await writer.storeRecords('spans', spans, 'spans-1');
    expect(await answer(T0, T0 + 60_000)).toEqual(want);
  });

  it('answers whole minutes from the rollup as the raw rows answer partial minutes, with every raw row kept', async () => {
    const writer = new StoreWriter(conn);
    await writer.storeRecords('requests', [request('logged-before')], 'requests-1');
    await writer.storeRecords('spans', spans, 'spans-1');
    await writer.storeRecords('requests', [request('logged-after')], 'requests-2');
    expect(await answer(T0 + 500, T0 + 59_500)).toEqual(want);
    expect(await answer(T0, T0 + 60_000)).toEqual(want);
    // Only the partial minutes at the edges read raw spans: a window from the middle of the minute on.
    expect(await answer(T0 + 5500, T0 + 120_000)).toEqual([['productpage.default', 'reviews', 'v2', 2, 0]]);
  });

  it('reads no raw row for a 30-day window of whole minutes, and only the raw rows of the edge days for a partial one', async () => {
    const writer = new StoreWriter(conn);
    const DAY = 86_400_000;
    const end = T0 + 60_000;
    const requests: MeshRequest[] = [];
    const traced: Span[] = [];
    // Hourly bursts over 30 days: 10 traced calls each, the odd ones logged.
    for (let h = 0; h < 30 * 24; h++) {
      for (let i = 0; i < 10; i++) {
        const t = end - 1 - h * 3_600_000 - i * 100;
        traced.push(span(`h${h}-${i}`, { startTimeMs: t }));
        if (i % 2 === 1) requests.push(request(`h${h}-${i}`, { startTimeMs: t }), request(`h${h}-${i}`, { startTimeMs: t, reporter: 'destination' }));
      }
    }
    await writer.storeRecords('requests', requests, 'history-requests');
    await writer.storeRecords('spans', traced, 'history-spans');
    const count = async (sql: string): Promise<number> => Number((await (await conn.client.query({ query: sql, format: 'JSONEachRow' })).json<{ n: number }>())[0]?.n);
    const selected = (): Promise<number> => count(`SELECT value AS n FROM system.events WHERE event = 'SelectedRows'`);
    const read = async (fromMs: number, toMs: number): Promise<{ rows: number; requests: number }> => {
      const before = await selected();
      const edges = await querySpanEdges(conn, scope(fromMs, toMs));
      return { rows: (await selected()) - before, requests: edges.reduce((n, e) => n + e.requests, 0) };
    };
    const rollupRows = await count(`SELECT count() AS n FROM ${conn.database}.span_edges_1m`);
    const whole = await read(end - 30 * DAY, end);
    expect(whole.requests).toBe(30 * 24 * 5);
    // The counter's own read of system.events adds a few rows.
    expect(whole.rows).toBeLessThanOrEqual(rollupRows + 200);
    const partial = await read(end - 30 * DAY + 30_000, end + 30_000);
    expect(partial.requests).toBe(30 * 24 * 5);
    const edgeDays = await count(
      `SELECT (SELECT count() FROM ${conn.database}.spans WHERE toDate(timestamp) IN (toDate(${(end - 30 * DAY) / 1000}), toDate(${(end + 30_000) / 1000}))) +
        (SELECT count() FROM ${conn.database}.requests WHERE toDate(timestamp) IN (toDate(${(end - 30 * DAY) / 1000}), toDate(${(end + 30_000) / 1000}))) AS n`,
    );
    expect(partial.rows).toBeLessThanOrEqual(rollupRows + 2 * edgeDays + 200);
    expect(partial.rows).toBeLessThan(traced.length + requests.length);
  });

  it('is filled from the raw spans of a store upgraded from migration 007, as the raw rows answer', async () => {
    await conn.client.close();
    const old = await openTestStore('meshlens-span-edges-007-', 7);
    conn = old.conn;
    try {
      // Raw rows only, as the graph read them before migration 008.
      const writer = new StoreWriter(conn);
      await writer.insert('requests', [request('logged-before'), request('logged-after', { reporter: 'destination' })], 'before-008');
      await writer.insert('spans', spans, 'before-008-spans');
      expect(await migrate(conn, RETENTION)).toEqual(readMigrations().filter((m) => m.version > 7).map((m) => m.name));
      expect(await answer(T0 + 500, T0 + 59_500)).toEqual(want);
      expect(await answer(T0, T0 + 60_000)).toEqual(want);
    } finally {
      await removeTestStore(old);
      conn = testConnect(dir);
    }
  });
});
