/**
 * The writer on real ClickHouse (embedded chDB): a batch ClickHouse refuses for good is split until the refused
 * rows stand alone, the rest is stored once (also when the batch comes again), a batch spanning many days is
 * taken, and errors are classified as retriable or not.
 */
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { emptyRequest } from '../model';
import type { MeshRequest } from '../model';
import { connect } from './client';
import type { Connection } from './client';
import { STORE_UNDER_TEST, openTestStore, removeTestStore } from './store.testutil';
import { classifyStoreError, StoreError } from './errors';
import { StoreWriter } from './writer';

const DAY_MS = 86_400_000;
const NOW = Date.UTC(2026, 11, 2, 12, 0, 0);

function request(i: number, over: Partial<MeshRequest> = {}): MeshRequest {
  return {
    ...emptyRequest(),
    startTimeMs: NOW + i,
    reporter: 'source',
    destinationHost: 'reviews.default.svc.cluster.local',
    destinationService: 'reviews',
    destinationNamespace: 'default',
    requestId: `req-${i}`,
    responseCode: 200,
    ...over,
  };
}

/** A row no column can hold: a duration that is not a number (a bug upstream, not something ingest lets in). */
const poison = (i: number): MeshRequest => request(i, { durationMs: 'not a number' as unknown as number });
/** A row ClickHouse itself refuses, once the test has added a CHECK on durations. */
const negative = (i: number): MeshRequest => request(i, { durationMs: -1 });

async function count(conn: Connection, where = '1'): Promise<number> {
  const rs = await conn.client.query({ query: `SELECT count() AS n FROM ${conn.database}.requests WHERE ${where}`, format: 'JSONEachRow' });
  return Number((await rs.json<{ n: number }>())[0]?.n);
}

async function rollupCount(conn: Connection): Promise<number> {
  const rs = await conn.client.query({ query: `SELECT sum(requests) AS n FROM ${conn.database}.requests_rollup_1m WHERE reporter != 'all'`, format: 'JSONEachRow' });
  return Number((await rs.json<{ n: number }>())[0]?.n);
}

describe(`StoreWriter on ${STORE_UNDER_TEST}`, () => {
  let dir: string;
  let conn: Connection;

  beforeAll(async () => {
    ({ dir, conn } = await openTestStore('meshlens-writer-'));
  }, 60_000);

  afterAll(async () => {
    await removeTestStore({ dir, conn });
  });

  beforeEach(async () => {
    for (const t of ['requests', 'requests_rollup_1m']) await conn.client.command({ query: `TRUNCATE TABLE meshlens.${t}` });
  });

  it('isolates the rows ClickHouse refuses for good, stores the rest, and stores nothing twice when the batch comes again', async () => {
    await conn.client.command({ query: `ALTER TABLE ${conn.database}.requests ADD CONSTRAINT non_negative CHECK durationMs >= 0` });
    try {
      const writer = new StoreWriter(conn);
      const rows = Array.from({ length: 100 }, (_, i) => (i === 17 || i === 80 ? negative(i) : request(i)));
      const first = await writer.storeRecords('requests', rows, 'g/meshlens.requests/0/1-100');
      expect(first.stored).toHaveLength(98);
      expect(first.refused.map((r) => (r.row as MeshRequest).requestId)).toEqual(['req-17', 'req-80']);
      expect(first.refused[0]?.error).toMatch(/^VIOLATED_CONSTRAINT \(469\): .*non_negative/);
      expect(await count(conn)).toBe(98);
      expect(await rollupCount(conn)).toBe(98);

      // The same batch again (the commit was lost): the same halving, the same tokens, nothing stored twice.
      const again = await writer.storeRecords('requests', rows, 'g/meshlens.requests/0/1-100');
      expect(again.refused).toHaveLength(2);
      expect(await count(conn)).toBe(98);
      expect(await rollupCount(conn)).toBe(98);
    } finally {
      await conn.client.command({ query: `ALTER TABLE ${conn.database}.requests DROP CONSTRAINT non_negative` });
    }
  });

  it('refuses rows no column can hold before inserting, each alone, and stores the rest once', async () => {
    const writer = new StoreWriter(conn);
    const rows = Array.from({ length: 100 }, (_, i) => (i === 3 || i === 99 ? poison(i) : request(i)));
    const first = await writer.storeRecords('requests', rows, 'g/meshlens.requests/0/101-200');
    expect(first.refused.map((r) => (r.row as MeshRequest).requestId)).toEqual(['req-3', 'req-99']);
    expect(first.refused[0]?.error).toMatch(/durationMs.*not a number/);
    expect(first).toMatchObject({ rollupRefused: [] });
    await writer.storeRecords('requests', rows, 'g/meshlens.requests/0/101-200');
    expect(await count(conn)).toBe(98);
    expect(await rollupCount(conn)).toBe(98);
  });

  it('takes a batch whose rows span 150 days (ClickHouse refuses more than 100 partitions per insert by default)', async () => {
    const rows = Array.from({ length: 150 }, (_, i) => request(i, { startTimeMs: NOW - i * DAY_MS }));
    const narrow = await new StoreWriter(conn).insert('requests', rows, 'span-days-default');
    // Without the bound raised the writer still stores every row, by halving until each insert fits.
    expect(narrow.refused).toEqual([]);
    expect(await count(conn)).toBe(150);

    await conn.client.command({ query: `TRUNCATE TABLE ${conn.database}.requests` });
    const wide = await new StoreWriter(conn, { maxPartitionsPerInsert: 160 }).insert('requests', rows, 'span-days-wide');
    expect(wide).toMatchObject({ stored: 150, refused: [], inserts: 1 });
    expect(await count(conn)).toBe(150);
  });
});

describe('classifyStoreError', () => {
  it('calls row errors refused for good, "too many partitions" too, and everything else retriable', () => {
    expect(classifyStoreError(Object.assign(new Error('x'), { code: '72', type: 'CANNOT_PARSE_NUMBER' }))).toEqual({
      retriable: false,
      type: 'CANNOT_PARSE_NUMBER',
      code: '72',
    });
    const partitions = Object.assign(new Error('Too many partitions for single INSERT block (more than 100).'), { code: '252', type: 'TOO_MANY_PARTS' });
    expect(classifyStoreError(partitions).retriable).toBe(false);
    const merges = Object.assign(new Error('Too many parts (3001 with average size of 1.2 KiB) in table. Merges are processing significantly slower than inserts'), {
      code: '252',
      type: 'TOO_MANY_PARTS',
    });
    expect(classifyStoreError(merges).retriable).toBe(true);
    expect(classifyStoreError(Object.assign(new Error('x'), { code: '241', type: 'MEMORY_LIMIT_EXCEEDED' })).retriable).toBe(true);
    expect(classifyStoreError(Object.assign(new Error('x'), { code: '60', type: 'UNKNOWN_TABLE' })).retriable).toBe(true);
    expect(classifyStoreError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }))).toEqual({
      retriable: true,
      type: 'ECONNREFUSED',
      code: '',
    });
    expect(classifyStoreError(undefined).retriable).toBe(true);
  });

  it('throws a retriable StoreError when the server is not there', async () => {
    // A port that accepts and closes at once: the request fails at the transport, never reaching a ClickHouse.
    const server: Server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const conn = connect({ clickhouseUrl: `http://127.0.0.1:${port}/meshlens`, dataDir: tmpdir() });
    try {
      const err = await new StoreWriter(conn).insert('requests', [request(0)], 'unreachable').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreError);
      expect(err).toMatchObject({ retriable: true });
    } finally {
      await conn.client.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
