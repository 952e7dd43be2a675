/**
 * Records, settings and connections the lib/store tests share. They run on embedded ClickHouse (chDB), and on a
 * ClickHouse server instead when MESHLENS_TEST_CLICKHOUSE_URL is set (e.g. the compose stack's), each data dir
 * a database of its own there.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { emptyRequest } from '../model';
import type { MeshRequest, Span } from '../model';
import { connect, type Connection } from './client';
import { migrate, readMigrations } from './migrations';

const SERVER = process.env.MESHLENS_TEST_CLICKHOUSE_URL?.trim() || undefined;

/** Where the storage tests run, for their titles. */
export const STORE_UNDER_TEST = SERVER === undefined ? 'embedded ClickHouse' : 'a ClickHouse server (MESHLENS_TEST_CLICKHOUSE_URL)';

/**
 * A connection for a test's data dir: chDB in it, or on the server a database named after it, so reopening the
 * same dir (a restart) finds the same data and two dirs never share tables.
 */
export function testConnect(dataDir: string): Connection {
  if (SERVER === undefined) return connect({ clickhouseUrl: undefined, dataDir });
  const url = new URL(SERVER);
  url.pathname = `/meshlens_test_${createHash('sha256').update(dataDir).digest('hex').slice(0, 16)}`;
  return connect({ clickhouseUrl: url.toString(), dataDir });
}

/** Closes a test connection; on a server its database is dropped first (chDB's goes with the data dir). */
export async function closeTestConnection(conn: Connection): Promise<void> {
  if (conn.kind === 'server') await conn.client.command({ query: `DROP DATABASE IF EXISTS ${conn.database}` });
  await conn.client.close();
}

/** Retention long enough for any fixture time. */
export const TEST_RETENTION = { rawDays: 3650, rollupDays: 3650 };

/** A client-side request from productpage-v1 to reviews v1 (HTTP, 200, ok), with `over` on top. */
export function reviewsRequest(over: Partial<MeshRequest>): MeshRequest {
  return {
    ...emptyRequest(),
    reporter: 'source',
    sourceWorkload: 'productpage-v1',
    sourceNamespace: 'default',
    destinationHost: 'reviews.default.svc.cluster.local',
    destinationService: 'reviews',
    destinationNamespace: 'default',
    destinationSubset: 'v1',
    destinationPort: 9080,
    protocol: 'http',
    responseCode: 200,
    outcome: 'ok',
    ...over,
  };
}

/** productpage's client span of a call to reviews v2 (200, 12.5 ms), with `over` on top. */
export function reviewsSpan(over: Partial<Span>): Span {
  return {
    traceId: '0'.repeat(31) + '1',
    spanId: '0'.repeat(15) + '1',
    parentSpanId: '',
    name: 'reviews.default.svc.cluster.local:9080/*',
    kind: 'client',
    startTimeMs: 0,
    durationMs: 12.5,
    serviceName: 'productpage.default',
    requestId: '',
    upstreamCluster: 'outbound|9080|v2|reviews.default.svc.cluster.local',
    destinationHost: 'reviews.default.svc.cluster.local',
    destinationService: 'reviews',
    destinationNamespace: 'default',
    destinationSubset: 'v2',
    responseCode: 200,
    responseFlags: '-',
    error: false,
    attributes: {},
    ...over,
  };
}

/** A test's store: its data dir and the connection to it. */
export interface TestStore {
  dir: string;
  conn: Connection;
}

/**
 * A fresh data dir (`<tmp>/<prefix>XXXXXX`) and its connection, migrated to the last migration, or only up to
 * migration `upTo` (a store of an older version, for the upgrade cases).
 */
export async function openTestStore(prefix: string, upTo?: number): Promise<TestStore> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const conn = testConnect(dir);
  await migrate(conn, TEST_RETENTION, upTo === undefined ? readMigrations() : readMigrations().filter((m) => m.version <= upTo));
  return { dir, conn };
}

/** Closes a test store's connection (dropping its database on a server) and removes its data dir. */
export async function removeTestStore(store: Partial<TestStore>): Promise<void> {
  if (store.conn) await closeTestConnection(store.conn);
  if (store.dir !== undefined) rmSync(store.dir, { recursive: true, force: true });
}
