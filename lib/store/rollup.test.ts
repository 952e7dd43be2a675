/**
 * The request rollup (requests_rollup_1m) and the ledger on real ClickHouse (embedded chDB): the ledger the query API
 * reads from the rollup for whole minutes is the one it pairs from raw rows for partial minutes, per reporter and
 * joined, with every raw row kept or only errors and denials; and migrations 007 and 009 fill it from the raw rows of
 * a store upgraded in place.
 */
import type { MeshRequest } from '../model';
import type { Connection } from './client';
import { migrate, readMigrations } from './migrations';
import { latencyBucket, queryLedger } from './queries';
import type { LedgerRow, QueryScope, ReporterFilter } from './queries';
import { contributionOf, RequestRollup } from './rollup';
import type { RequestRollupRow } from './rollup';
import { reviewsRequest as request, TEST_RETENTION, testConnect, STORE_UNDER_TEST, openTestStore, removeTestStore } from './store.testutil';
import { StoreWriter } from './writer';

const T0 = Date.UTC(2026, 10, 25, 10, 0, 0); // a whole minute
const RETENTION = TEST_RETENTION;


/**
 * Traffic of one minute (T0 + 1 s ... T0 + 50 s) with every case the ledger tells apart: both sidecars' records of a
 * request (in either order), the server's RBAC denial of a request the client saw as a plain 403, retries the server
 * logged per attempt, a client-side blackhole, TCP without a request id on another port, a record of an unknown
 * reporter, requests only one side logged.
 */
function traffic(): MeshRequest[] {
  const server = { reporter: 'destination' as const, sourceWorkload: 'unknown', sourceNamespace: 'unknown', destinationSubset: '' };
  const out: MeshRequest[] = [];
  let t = T0 + 1000;
  for (let i = 0; i < 40; i++) {
    const id = `ok-${i}`;
    const client = request({ startTimeMs: t++, requestId: id, destinationSubset: i % 4 === 0 ? 'v2' : 'v1' });
    const srv = request({ ...server, startTimeMs: t++, requestId: id });
    out.push(...(i % 2 === 0 ? [client, srv] : [srv, client]));
  }
  for (let i = 0; i < 5; i++) {
    const id = `rbac-${i}`;
    out.push(request({ startTimeMs: t++, requestId: id, sourceWorkload: 'sleep', responseCode: 403 }));
    out.push(
      request({ ...server, startTimeMs: t++, requestId: id, responseCode: 403, outcome: 'denied', denyReason: 'rbac', policy: 'default/deny-sleep', rule: i % 2 }),
    );
  }
  // One client line, three server attempts: one request paired, two attempts only the server saw.
  out.push(request({ startTimeMs: t++, requestId: 'retried', responseCode: 503, responseFlags: 'URX', outcome: 'error' }));
  for (let a = 0; a < 3; a++) out.push(request({ ...server, startTimeMs: t++, requestId: 'retried', responseCode: 503, outcome: 'error' }));
  out.push(
    request({
      startTimeMs: t++,
      destinationHost: 'BlackHoleCluster',
      destinationService: 'BlackHoleCluster',
      destinationNamespace: 'unknown',
      destinationSubset: '',
      destinationPort: 0,
      protocol: 'tcp',
      outcome: 'denied',
      denyReason: 'blackhole',
    }),
  );
  for (let i = 0; i < 3; i++) {
    out.push(request({ startTimeMs: t++, destinationHost: 'mysql.default.svc.cluster.local', destinationService: 'mysql', destinationPort: 3306, protocol: 'tcp', destinationSubset: '' }));
  }
  out.push(request({ startTimeMs: t++, requestId: 'unknown-side', reporter: 'unknown' }));
  out.push(request({ startTimeMs: t++, requestId: 'client-only', destinationSubset: 'v3' }));
  out.push(request({ ...server, startTimeMs: t++, requestId: 'server-only', destinationPort: 9081 }));
  return out;
}

/** The ledger as a sorted list of strings, one per row, to compare answers from rollups and raw rows. */
const spelled = (rows: LedgerRow[]): string[] =>
  rows
    .map((r) => [r.layer, r.sourceNamespace, r.sourceWorkload, r.destinationNamespace, r.destinationService, r.subset, r.port, r.denied, r.denyReason, r.policy, r.rule, r.count].join('|'))
    .sort();

const scope = (reporter: ReporterFilter, fromMs: number, toMs: number): QueryScope => ({ fromMs, toMs, namespace: '', service: '', reporter });
/** Whole minutes: read from requests_rollup_1m alone. */
const WHOLE = [T0, T0 + 60_000] as const;
/** Inside the minute, around every record: read from raw rows alone (splitWindow leaves no whole minute). */
const PARTIAL = [T0 + 500, T0 + 59_500] as const;

describe('RequestRollup rows', () => {
  it('group by the RED key and the ledger details (port, protocol, verdict); a record added and taken back leaves no row', () => {
    const rollup = new RequestRollup(true);
    const a = contributionOf(request({ startTimeMs: T0, requestId: 'a', durationMs: 10 }));
    const b = contributionOf(request({ startTimeMs: T0, requestId: 'b', destinationPort: 9081 }));
    const c = contributionOf(request({ startTimeMs: T0, requestId: 'c', outcome: 'denied', denyReason: 'rbac', policy: 'default/p', rule: 3, responseCode: 403 }));
    const e = contributionOf(request({ startTimeMs: T0, requestId: 'e', outcome: 'error', responseCode: 503, responseFlags: 'UF' }));
    for (const x of [a, a, b, c, e]) rollup.add(x, 1);
    const cut = (r: RequestRollupRow): unknown[] => [r.reporter, r.destinationPort, r.protocol, r.outcome, r.denyReason, r.policy, r.rule, r.requests, r.errors, r.denied, r.appErrors, r.meshFailures];
    expect(rollup.rows().map(cut)).toEqual([
      ['source', 9080, 'http', 'ok', '', '', -1, 2, 0, 0, 0, 0],
      ['source', 9081, 'http', 'ok', '', '', -1, 1, 0, 0, 0, 0],
      ['source', 9080, 'http', 'denied', 'rbac', 'default/p', 3, 1, 0, 1, 0, 0],
      ['source', 9080, 'http', 'error', '', '', -1, 1, 1, 0, 0, 1],
    ]);
    expect(rollup.rows()[0]?.latencyBuckets).toEqual(new Map([[latencyBucket(10), 2]]));
    rollup.add(b, -1);
    expect(rollup.rows().map((r) => r.destinationPort)).toEqual([9080, 9080, 9080]);
    const joined = new RequestRollup(false);
    joined.add(a, 1);
    expect(joined.rows()).toEqual([expect.objectContaining({ reporter: 'all', outcome: 'ok', requests: 1 })]);
    // Not for the ledger: the RED counts as the record says, under RED_ONLY's details.
    joined.add(c, 1, false);
    expect(joined.rows().map(cut)[1]).toEqual(['all', 0, '', '', '', '', 0, 1, 0, 1, 0, 0]);
  });
});

describe(`the ledger from requests_rollup_1m on ${STORE_UNDER_TEST}`, () => {
  let dir: string;
  let conn: Connection;

  beforeAll(async () => {
    ({ dir, conn } = await openTestStore('meshlens-ledger-'));
  }, 60_000);
  afterAll(async () => {
    await removeTestStore({ dir, conn });
  });
  beforeEach(async () => {
    for (const t of ['requests', 'requests_rollup_1m']) await conn.client.command({ query: `TRUNCATE TABLE ${conn.database}.${t}` });
  });

  const ledger = async (reporter: ReporterFilter, [fromMs, toMs]: readonly [number, number]): Promise<string[]> =>
    spelled(await queryLedger(conn, scope(reporter, fromMs, toMs)));

  it('answers whole minutes from the rollup as the raw rows answer them, per reporter and joined, however batches cut the records', async () => {
    const records = traffic();
    const writer = new StoreWriter(conn);
    // Three batches, cutting some requests' two records apart: the joined rows pair across batches.
    for (const [i, cut] of [[0, 25], [25, 60], [60, records.length]].entries()) {
      await writer.storeRecords('requests', records.slice(cut[0], cut[1]), `ledger-${i}`);
    }
    for (const reporter of ['source', 'destination', 'all'] as const) {
      const raw = await ledger(reporter, PARTIAL);
      expect(raw.length).toBeGreaterThan(3);
      expect([reporter, await ledger(reporter, WHOLE)]).toEqual([reporter, raw]);
    }
    // The joined view: each request once, the server's RBAC verdict with its policy and rule, retries' extra attempts apart.
    const all = await queryLedger(conn, scope('all', ...WHOLE));
    const count = (keep: (r: LedgerRow) => boolean): number => all.filter(keep).reduce((n, r) => n + r.count, 0);
    expect(count(() => true)).toBe(40 + 5 + 1 + 2 + 1 + 3 + 1 + 1 + 1);
    expect(count((r) => r.denyReason === 'rbac' && r.sourceWorkload === 'sleep')).toBe(5);
    expect(count((r) => r.policy === 'default/deny-sleep' && r.rule === 1)).toBe(2);
    expect(count((r) => r.layer === 'L4')).toBe(4);
    expect(count((r) => r.port === 9081)).toBe(1);
  });

  it('counts every request from the rollup when only error and denied rows are kept raw (MESHLENS_RAW_REQUESTS=0)', async () => {
    const records = traffic();
    await new StoreWriter(conn).storeRecords('requests', records, 'every-row');
    const want = { source: await ledger('source', WHOLE), destination: await ledger('destination', WHOLE), all: await ledger('all', WHOLE) };
    for (const t of ['requests', 'requests_rollup_1m']) await conn.client.command({ query: `TRUNCATE TABLE ${conn.database}.${t}` });

    await new StoreWriter(conn).storeRecords('requests', records, 'sampled', (r) => r.outcome !== 'ok');
    const rs = await conn.client.query({ query: `SELECT count() AS n FROM ${conn.database}.requests`, format: 'JSONEachRow' });
    expect((await rs.json<{ n: number }>())[0]?.n).toBe(records.filter((r) => r.outcome !== 'ok').length);
    expect({ source: await ledger('source', WHOLE), destination: await ledger('destination', WHOLE), all: await ledger('all', WHOLE) }).toEqual(want);
  });

  it('reads no raw request row for a 30-day window of whole minutes, and only the raw rows of the edge days for a partial one', async () => {
    const DAY = 86_400_000;
    const end = T0 + 60_000;
    // Hourly bursts over 30 days: 10 requests each, both sidecars logging them.
    const records: MeshRequest[] = [];
    for (let h = 0; h < 30 * 24; h++) {
      for (let i = 0; i < 10; i++) {
        const t = end - 1 - h * 3_600_000 - i * 100;
        records.push(request({ startTimeMs: t, requestId: `h${h}-${i}` }), request({ startTimeMs: t, requestId: `h${h}-${i}`, reporter: 'destination', destinationSubset: '' }));
      }
    }
    await new StoreWriter(conn).storeRecords('requests', records, 'history');
    const count = async (sql: string): Promise<number> => Number((await (await conn.client.query({ query: sql, format: 'JSONEachRow' })).json<{ n: number }>())[0]?.n);
    const selected = (): Promise<number> => count(`SELECT value AS n FROM system.events WHERE event = 'SelectedRows'`);
    const read = async (fromMs: number, toMs: number): Promise<{ rows: number; requests: number }> => {
      const before = await selected();
      const rows = await queryLedger(conn, scope('all', fromMs, toMs));
      return { rows: (await selected()) - before, requests: rows.reduce((n, r) => n + r.count, 0) };
    };
    const rollupRows = await count(`SELECT count() AS n FROM ${conn.database}.requests_rollup_1m`);
    const whole = await read(end - 30 * DAY, end);
    expect(whole.requests).toBe(30 * 24 * 10);
    // The counter's own read of system.events adds about a hundred rows.
    expect(whole.rows).toBeLessThanOrEqual(rollupRows + 200);
    const partial = await read(end - 30 * DAY + 30_000, end + 30_000);
    expect(partial.requests).toBe(30 * 24 * 10);
    const edgeDays = await count(
      `SELECT count() AS n FROM ${conn.database}.requests WHERE toDate(timestamp) IN (toDate(${(end - 30 * DAY) / 1000}), toDate(${(end + 30_000) / 1000}))`,
    );
    expect(partial.rows).toBeLessThanOrEqual(rollupRows + 2 * edgeDays + 200);
    expect(partial.rows).toBeLessThan(records.length);
  });

  it('is filled from the raw rows of a store upgraded from migration 006, as the raw rows answer', async () => {
    await conn.client.close();
    const old = await openTestStore('meshlens-ledger-006-', 6);
    conn = old.conn;
    try {
      // Raw rows only, as the ledger read them before migration 007.
      await new StoreWriter(conn).insert('requests', traffic(), 'before-007');
      expect(await migrate(conn, RETENTION)).toEqual(readMigrations().filter((m) => m.version > 6).map((m) => m.name));
      // The raw rows stay: a window inside the minute still reads them alone, a whole minute reads what 007 filled in.
      const raw = { source: await ledger('source', PARTIAL), destination: await ledger('destination', PARTIAL), all: await ledger('all', PARTIAL) };
      expect(raw.all.length).toBeGreaterThan(3);
      expect({ source: await ledger('source', WHOLE), destination: await ledger('destination', WHOLE), all: await ledger('all', WHOLE) }).toEqual(raw);
    } finally {
      await removeTestStore(old);
      conn = testConnect(dir);
    }
  });
});
