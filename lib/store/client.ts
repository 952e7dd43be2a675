/**
 * The ClickHouse connection: embedded (chDB in `<dataDir>/clickhouse`, plugged into @clickhouse/client as
 * its `connection`) or a server (`MESHLENS_CLICKHOUSE_URL`). Everything above this file is one code path
 * and one SQL dialect for both (DESIGN.md "One binary, two ways to run").
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createClient } from '@clickhouse/client';
import type { ClickHouseClient, ClickHouseSettings } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';

/** Database used when the server URL names none, and always in embedded mode. */
export const DEFAULT_DATABASE = 'meshlens';

export interface ConnectOptions {
  /** `http://user:pass@host:8123/db`; undefined → embedded chDB. */
  clickhouseUrl: string | undefined;
  /** Embedded mode keeps its data in `<dataDir>/clickhouse`. */
  dataDir: string;
  /**
   * Server mode: how long the client waits for any answer before it gives up (default 60 s). Kept above the
   * query API's `max_execution_time`, so a slow query is ended by ClickHouse with its own error, not cut by the client.
   */
  requestTimeoutMs?: number;
}

export interface Connection {
  client: ClickHouseClient;
  /** Validated identifier; SQL names tables `<database>.<table>` (chDB ignores the client's database option). */
  database: string;
  kind: 'embedded' | 'server';
  /** Where the data lives: the embedded directory or the server URL without credentials. */
  location: string;
}

type ClientConnection = NonNullable<NonNullable<Parameters<typeof createClient>[0]>['connection']>;

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Settings on every statement. 64-bit integers as JSON numbers: counts stay below 2^53 for any realistic
 * history, and the query API hands out numbers, not strings (the server quotes them by default, chDB not).
 */
const SESSION_SETTINGS: ClickHouseSettings = {
  output_format_json_quote_64bit_integers: 0,
  // Queries alias aggregates with their column names (`any(x) AS x`); WHERE and GROUP BY mean the column.
  prefer_column_name_to_alias: 1,
};

export function connect(opts: ConnectOptions): Connection {
  if (opts.clickhouseUrl === undefined) {
    const dir = resolve(join(opts.dataDir, 'clickhouse'));
    mkdirSync(dir, { recursive: true });
    // One engine per process: chDB rejects a second live path (tests close one before opening another).
    // chdb types its connection against @clickhouse/client-common, which @clickhouse/client vendors as a copy
    // of the same declarations; the shapes are identical, the nominal types are not.
    const connection = createChdbConnection({ path: dir }) as unknown as ClientConnection;
    const client = createClient({ connection, clickhouse_settings: SESSION_SETTINGS });
    return { client, database: DEFAULT_DATABASE, kind: 'embedded', location: dir };
  }
  const url = new URL(opts.clickhouseUrl);
  const database = url.pathname.replace(/^\/+|\/+$/g, '') || DEFAULT_DATABASE;
  if (!IDENTIFIER.test(database)) throw new Error(`ClickHouse database ${JSON.stringify(database)} must be a plain identifier`);
  const username = decodeURIComponent(url.username) || 'default';
  const password = decodeURIComponent(url.password);
  url.username = '';
  url.password = '';
  url.pathname = '/';
  const client = createClient({
    url: url.toString(),
    username,
    password,
    clickhouse_settings: SESSION_SETTINGS,
    compression: { request: true, response: true },
    request_timeout: opts.requestTimeoutMs ?? 60_000,
  });
  return { client, database, kind: 'server', location: url.toString() };
}
