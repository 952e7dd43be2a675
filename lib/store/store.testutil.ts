/**
 * Records, settings and connections the lib/store tests share. They run on embedded ClickHouse (chDB), and on a
 * ClickHouse server instead when MESHLENS_TEST_CLICKHOUSE_URL is set (e.g. the compose stack's), each data dir
 * a database of its own there.
 */
import { createHash } from 'node:crypto';
import { emptyRequest } from '../model';
import type { MeshRequest } from '../model';
import { connect, type Connection } from './client';

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
