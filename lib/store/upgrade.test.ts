/**
 * Migrations 009 and 010 on embedded ClickHouse: a store upgraded in place keeps every count its three request
 * rollups held (requests_1m's count states finalized, requests_joined_1m's and requests_ledger_1m's sums), also where
 * the three disagree (a minute older than the ledger, a minute from before the latency histogram, a ledger row whose
 * RED row is gone), the query API answers whole minutes from requests_rollup_1m as the raw rows answer them, a rerun
 * of 009 adds nothing, and the old tables are gone.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MeshRequest } from '../model';
import type { Connection } from './client';
import { migrate, readMigrations } from './migrations';
import { queryEdges, queryLedger, querySubsets } from './queries';
import type { QueryScope, ReporterFilter } from './queries';
import { reviewsRequest as request, TEST_RETENTION, testConnect, removeTestStore } from './store.testutil';
import { StoreWriter } from './writer';

const RETENTION = TEST_RETENTION;
const A = Date.UTC(2026, 10, 25, 10, 0, 0); // a whole minute: raw rows, requests_1m, joined view and ledger
const B = A + 60_000; // requests_1m only: its raw rows had expired when migrations 006 and 007 ran
const C = A + 120_000; // requests_1m from before migration 004: counts and a DDSketch state, no histogram
const D = A + 180_000; // requests_ledger_1m only: a row whose requests_1m part had expired first

const RED_KEY = 'minute, reporter, sourceWorkload, sourceNamespace, destinationHost, destinationService, destinationNamespace, destinationSubset';
const LEDGER_KEY = `${RED_KEY}, destinationPort, protocol, outcome, denyReason, policy, rule`;


/** A minute of traffic from `t0`: both sidecars' records, an RBAC denial only the server saw as such, a mesh failure, retries, TCP. */
function traffic(t0: number, tag: string): MeshRequest[] {
  const server = { reporter: 'destination' as const, sourceWorkload: 'unknown', sourceNamespace: 'unknown', destinationSubset: '' };
  const out: MeshRequest[] = [];
  let t = t0 + 1000;
  for (let i = 0; i < 30; i++) {
    const id = `${tag}-ok-${i}`;
    const durationMs = 5 + ((i * 37) % 200);
    out.push(request({ startTimeMs: t++, requestId: id, destinationSubset: i % 3 === 0 ? 'v2' : 'v1', durationMs }));
    out.push(request({ ...server, startTimeMs: t++, requestId: id, durationMs: durationMs - 1 }));
  }
  for (let i = 0; i < 4; i++) {
    const id = `${tag}-rbac-${i}`;
    out.push(request({ startTimeMs: t++, requestId: id, sourceWorkload: 'sleep', responseCode: 403, durationMs: 2 }));
    out.push(request({ ...server, startTimeMs: t++, requestId: id, responseCode: 403, outcome: 'denied', denyReason: 'rbac', policy: 'default/deny-sleep', rule: i % 2 }));
  }
  out.push(request({ startTimeMs: t++, requestId: `${tag}-retried`, responseCode: 503, responseFlags: 'URX', outcome: 'error', durationMs: 900 }));
  for (let a = 0; a < 2; a++) out.push(request({ ...server, startTimeMs: t++, requestId: `${tag}-retried`, responseCode: 503, outcome: 'error', durationMs: 400 }));
  out.push(request({ startTimeMs: t++, requestId: `${tag}-app`, responseCode: 500, outcome: 'error', durationMs: 30 }));
  for (let i = 0; i < 3; i++) {
    out.push(request({ startTimeMs: t++, destinationHost: 'mysql.default.svc.cluster.local', destinationService: 'mysql', destinationPort: 3306, protocol: 'tcp', destinationSubset: '' }));
  }
  return out;
}

/** requests_1m as the aggregator (and before it the view of migration 004) filled it from the raw rows. */
const FILL_REQUESTS_1M = (db: string): string => `
  INSERT INTO ${db}.requests_1m (${RED_KEY}, requests, errors, denied, appErrors, meshFailures, latencyBuckets)
  SELECT toStartOfMinute(toDateTime(timestamp, 'UTC')) AS minute, reporter, sourceWorkload, sourceNamespace,
    destinationHost, destinationService, destinationNamespace, destinationSubset,
    countState(), countIfState(outcome = 'error'), countIfState(outcome = 'denied'),
    countIfState(outcome = 'error' AND NOT meshFailure), countIfState(meshFailure),
    sumMap(map(if(durationMs > 0, toInt16(greatest(-32767, least(32767, ceil(log(durationMs) / log(1.01 / 0.99))))), toInt16(-32768)), toUInt64(1)))
  FROM ${db}.requests
  GROUP BY ${RED_KEY}`;

describe('migrations 009 and 010: the three request rollups into requests_rollup_1m', () => {
  let dir: string;
  let conn: Connection;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'meshlens-upgrade-'));
    conn = testConnect(dir);
  });
  afterAll(async () => {
    await removeTestStore({ dir, conn });
  });

  const rows = async <T = Record<string, unknown>>(query: string): Promise<T[]> => (await conn.client.query({ query, format: 'JSONEachRow' })).json<T>();
  const command = (query: string): Promise<unknown> => conn.client.command({ query });
  /** Histograms without zero counts, keys in order: signed sums may leave a bucket at 0. */
  const histogram = (h: unknown): Record<string, number> =>
    Object.fromEntries(
      Object.entries(h as Record<string, number | string>)
        .map(([k, n]) => [k, Number(n)] as const)
        .filter(([, n]) => n !== 0)
        .sort((a, b) => Number(a[0]) - Number(b[0])),
    );
  const numbers = (r: Record<string, unknown>): Record<string, unknown> =>
    Object.fromEntries(Object.entries(r).map(([k, v]) => [k, k === 'h' ? histogram(v) : ['requests', 'errors', 'denied', 'appErrors', 'meshFailures', 'destinationPort', 'rule'].includes(k) ? Number(v) : v]));

  /** RED counts per minute, reporter (`all`: the joined view) and names, and ledger counts per ledger key, as the old tables hold them. */
  const oldCounts = async (db: string) => ({
    red: (
      await rows(`
        SELECT * FROM (
          SELECT ${RED_KEY}, toInt64(countMerge(requests)) AS requests, toInt64(countIfMerge(errors)) AS errors, toInt64(countIfMerge(denied)) AS denied,
            toInt64(countIfMerge(appErrors)) AS appErrors, toInt64(countIfMerge(meshFailures)) AS meshFailures, CAST(sumMap(latencyBuckets), 'Map(Int16, Int64)') AS h
          FROM ${db}.requests_1m GROUP BY ${RED_KEY}
          UNION ALL
          SELECT minute, 'all' AS reporter, sourceWorkload, sourceNamespace, destinationHost, destinationService, destinationNamespace, destinationSubset,
            sum(requests) AS requests, sum(errors) AS errors, sum(denied) AS denied, sum(appErrors) AS appErrors, sum(meshFailures) AS meshFailures,
            sumMap(latencyBuckets) AS h
          FROM ${db}.requests_joined_1m GROUP BY minute, sourceWorkload, sourceNamespace, destinationHost, destinationService, destinationNamespace, destinationSubset
        )
        WHERE requests != 0 OR errors != 0 OR denied != 0 OR appErrors != 0 OR meshFailures != 0 OR arrayExists(n -> n != 0, mapValues(h))
        ORDER BY ${RED_KEY}`)
    ).map(numbers),
    ledger: (await rows(`SELECT ${LEDGER_KEY}, sum(requests) AS requests FROM ${db}.requests_ledger_1m GROUP BY ${LEDGER_KEY} HAVING sum(requests) != 0 ORDER BY ${LEDGER_KEY}`)).map(numbers),
  });

  /** The same from requests_rollup_1m, as the query API reads it: RED from every row, the ledger from rows with an outcome. */
  const newCounts = async (db: string) => ({
    red: (
      await rows(`
        SELECT * FROM (
          SELECT ${RED_KEY}, sum(requests) AS requests, sum(errors) AS errors, sum(denied) AS denied, sum(appErrors) AS appErrors, sum(meshFailures) AS meshFailures,
            sumMap(latencyBuckets) AS h
          FROM ${db}.requests_rollup_1m GROUP BY ${RED_KEY}
        )
        WHERE requests != 0 OR errors != 0 OR denied != 0 OR appErrors != 0 OR meshFailures != 0 OR arrayExists(n -> n != 0, mapValues(h))
        ORDER BY ${RED_KEY}`)
    ).map(numbers),
    ledger: (
      await rows(`SELECT ${LEDGER_KEY}, sum(requests) AS requests FROM ${db}.requests_rollup_1m WHERE outcome != '' GROUP BY ${LEDGER_KEY} HAVING sum(requests) != 0 ORDER BY ${LEDGER_KEY}`)
    ).map(numbers),
  });

  const scope = (reporter: ReporterFilter, fromMs: number, toMs: number): QueryScope => ({ fromMs, toMs, namespace: '', service: '', reporter });
  const answers = async (reporter: ReporterFilter, fromMs: number, toMs: number) => {
    const s = scope(reporter, fromMs, toMs);
    const sort = <T>(xs: T[]): string[] => xs.map((x) => JSON.stringify(x)).sort();
    return { subsets: sort(await querySubsets(conn, s)), edges: sort(await queryEdges(conn, s)), ledger: sort(await queryLedger(conn, s)) };
  };

  it('keeps every count, where the old tables disagree too, and the API answers whole minutes as the raw rows answer them', async () => {
    const db = conn.database;
    const writer = new StoreWriter(conn);
    await migrate(conn, RETENTION, readMigrations().filter((m) => m.version <= 5));
    // Minute B: raw rows rolled up into requests_1m, then expired before 006 and 007 could fill the joined view and the ledger.
    await writer.insert('requests', traffic(B, 'b'), 'raw-b');
    await command(FILL_REQUESTS_1M(db));
    await command(`TRUNCATE TABLE ${db}.requests`);
    await writer.insert('requests', traffic(A, 'a'), 'raw-a');
    await command(FILL_REQUESTS_1M(db));
    await command(`
      INSERT INTO ${db}.requests_1m (${RED_KEY}, requests, errors, denied, appErrors, meshFailures, latencyMs)
      SELECT toDateTime(${C / 1000}, 'UTC'), 'source', 'productpage-v1', 'default', 'reviews.default.svc.cluster.local', 'reviews', 'default', 'v1',
        countState(), countIfState(number = 0), countIfState(number = 1), countIfState(number = 0), countIfState(false),
        quantilesDDState(0.01, 0.5, 0.9, 0.99)(toFloat64(number))
      FROM numbers(5)`);
    // 006 and 007 fill the joined view and the ledger from minute A's raw rows.
    await migrate(conn, RETENTION, readMigrations().filter((m) => m.version <= 8));
    await command(`
      INSERT INTO ${db}.requests_ledger_1m (${LEDGER_KEY}, requests)
      VALUES (toDateTime(${D / 1000}, 'UTC'), 'destination', 'unknown', 'unknown', 'ratings.default.svc.cluster.local', 'ratings', 'default', '', 9080, 'http', 'denied', 'rbac', 'default/deny', 0, 2)`);
    const before = await oldCounts(db);
    // Every case is there: both minutes of requests_1m, the joined view and the ledger of minute A, C's counts, D's ledger row.
    const minutes = (xs: Record<string, unknown>[]): string[] => [...new Set(xs.map((r) => `${String(r.reporter)}@${String(r.minute)}`))].sort();
    expect(minutes(before.red)).toEqual(
      ['all@2026-11-25 10:00:00', 'destination@2026-11-25 10:00:00', 'destination@2026-11-25 10:01:00', 'source@2026-11-25 10:00:00', 'source@2026-11-25 10:01:00', 'source@2026-11-25 10:02:00'],
    );
    expect(minutes(before.ledger)).toEqual(['all@2026-11-25 10:00:00', 'destination@2026-11-25 10:00:00', 'destination@2026-11-25 10:03:00', 'source@2026-11-25 10:00:00']);

    expect(await migrate(conn, RETENTION, readMigrations().filter((m) => m.version <= 9))).toEqual(['009_create_requests_rollup.sql']);
    expect(await newCounts(db)).toEqual(before);
    // A start that stopped after 009's insert, before the migration was recorded, runs it again: nothing is added.
    const rollupRows = await rows<{ n: string }>(`SELECT count() AS n FROM ${db}.requests_rollup_1m`);
    const backfill = readMigrations().find((m) => m.version === 9)?.statements.find((s) => s.startsWith('INSERT')) as string;
    await command(backfill.replaceAll('{{database}}', db));
    expect(await rows(`SELECT count() AS n FROM ${db}.requests_rollup_1m`)).toEqual(rollupRows);

    expect(await migrate(conn, RETENTION)).toEqual(['010_drop_request_rollups.sql']);
    expect(await rows(`SELECT name FROM system.tables WHERE database = '${db}' AND name IN ('requests_1m', 'requests_joined_1m', 'requests_ledger_1m')`)).toEqual([]);
    expect(await newCounts(db)).toEqual(before);

    // The query API: minute A whole (requests_rollup_1m alone) as its raw rows answer (a window inside the minute reads
    // them alone); C's requests count, their latency unknown; C is not in the ledger, D is.
    for (const reporter of ['source', 'destination', 'all'] as const) {
      expect([reporter, await answers(reporter, A, A + 60_000)]).toEqual([reporter, await answers(reporter, A + 500, A + 59_500)]);
    }
    const [c] = await querySubsets(conn, scope('source', C, C + 60_000));
    expect(c).toMatchObject({ subset: 'v1', requests: 5, errors: 1, denied: 1, appErrors: 1, latencySamples: 0 });
    expect(await queryLedger(conn, scope('source', C, C + 60_000))).toEqual([]);
    expect((await queryLedger(conn, scope('destination', D, D + 60_000))).map((r) => [r.destinationService, r.policy, r.count])).toEqual([['ratings', 'default/deny', 2]]);

    // Written on from here by one insert a batch, read alike.
    await writer.storeRecords('requests', traffic(A + 240_000, 'e'), 'after-010');
    for (const reporter of ['source', 'destination', 'all'] as const) {
      expect([reporter, await answers(reporter, A + 240_000, A + 300_000)]).toEqual([reporter, await answers(reporter, A + 240_500, A + 299_500)]);
    }
  }, 60_000);
});
