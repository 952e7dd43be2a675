/**
 * The ClickHouse connection: embedded (chDB in `<dataDir>/clickhouse`, plugged into @clickhouse/client as
 * its `connection`) or a server (`MESHLENS_CLICKHOUSE_URL`). Everything above this file is one code path
 * and one SQL dialect for both (DESIGN.md "One binary, two ways to run").
 */
import { mkdirSync, rmSync } from 'node:fs';
import { unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { createClient } from '@clickhouse/client';
import type { ClickHouseClient, ClickHouseSettings, Logger } from '@clickhouse/client';
import type { createChdbConnection } from 'chdb/connection';
import { StartError } from '../runtime';

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
  /**
   * Inserts one Native block (lib/store/native.ts) into `<database>.<table>` (columns in the block's order) with
   * per-insert `settings`. A server takes the bytes as the body of `INSERT ... FORMAT Native`; chDB's client
   * bridge turns every body into a JS string, so embedded the block goes through a file that the INSERT reads
   * with `file(path, 'Native')`. Either way ClickHouse sees one insert of one block, with the same settings
   * (and insert_deduplication_token) and the same errors.
   */
  insertBlock(table: string, columns: readonly string[], block: Buffer, settings: Readonly<Record<string, string | number>>): Promise<void>;
}

/**
 * chDB is an optional dependency (package.json `optionalDependencies`): the default container image leaves it out
 * (`npm ci --omit=optional`) because a ClickHouse server makes it dead weight. So it is loaded only when embedded
 * mode is asked for, and its absence is one line naming what to change.
 */
export const CHDB_MISSING =
  'embedded ClickHouse (the optional chdb package) is not installed; set MESHLENS_CLICKHOUSE_URL to a ClickHouse server, or install chdb (npm install chdb; the all-in-one container image has it)';

function loadChdb(): typeof createChdbConnection {
  let mod: { createChdbConnection: typeof createChdbConnection };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    mod = require('chdb/connection') as typeof mod;
  } catch (err) {
    const e = err as { code?: string; message?: string };
    // Only chdb itself missing is "not installed"; a broken chdb (its native library failing to load) says so itself.
    if (e.code === 'MODULE_NOT_FOUND' && /['"]chdb(\/connection)?['"]/.test(e.message ?? '')) throw new StartError(CHDB_MISSING);
    throw err;
  }
  return mod.createChdbConnection;
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

/** A ClickHouse string literal. */
const quote = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** `INSERT INTO db.t (a, b) SETTINGS k = v, ...`: names are identifiers from lib/store/tables.ts, values quoted. */
function insertPrefix(database: string, table: string, columns: readonly string[], settings: Readonly<Record<string, string | number>>): string {
  for (const name of [table, ...columns, ...Object.keys(settings)]) {
    if (!IDENTIFIER.test(name)) throw new Error(`${JSON.stringify(name)} is not a plain identifier`);
  }
  const set = Object.entries(settings)
    .map(([k, v]) => `${k} = ${typeof v === 'number' ? String(v) : quote(v)}`)
    .join(', ');
  return `INSERT INTO ${database}.${table} (${columns.join(', ')})${set ? ` SETTINGS ${set}` : ''}`;
}

/** @clickhouse/client's logger, silenced: meshlens logs the errors the client hands back (see `connect`). */
class QuietClientLogger implements Logger {
  trace(): void {}
  debug(): void {}
  info(): void {}
  warn(): void {}
  error(): void {}
}

export function connect(opts: ConnectOptions): Connection {
  if (opts.clickhouseUrl === undefined) {
    const dir = resolve(join(opts.dataDir, 'clickhouse'));
    mkdirSync(dir, { recursive: true });
    // Blocks on their way into chDB; a crash can leave some behind, and nothing reads them after a restart.
    const blocks = resolve(join(opts.dataDir, 'insert-blocks'));
    rmSync(blocks, { recursive: true, force: true });
    mkdirSync(blocks, { recursive: true });
    let nextBlock = 0;
    // One engine per process: chDB rejects a second live path (tests close one before opening another).
    // chdb types its connection against @clickhouse/client-common, which @clickhouse/client vendors as a copy
    // of the same declarations; the shapes are identical, the nominal types are not.
    const connection = loadChdb()({ path: dir }) as unknown as ClientConnection;
    const client = createClient({ connection, clickhouse_settings: SESSION_SETTINGS });
    const insertBlock: Connection['insertBlock'] = async (table, columns, block, settings) => {
      const file = join(blocks, `${process.pid}-${nextBlock++}.native`);
      await writeFile(file, block);
      try {
        await client.command({ query: `${insertPrefix(DEFAULT_DATABASE, table, columns, settings)} SELECT * FROM file(${quote(file)}, 'Native')` });
      } finally {
        await unlink(file).catch(() => undefined);
      }
    };
    return { client, database: DEFAULT_DATABASE, kind: 'embedded', location: dir, insertBlock };
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
    // Every failure reaches meshlens as a rejected promise, which it logs once with what to change; the client's own
    // logger would print a multi-line error with a stack on stderr for each retry besides.
    log: { LoggerClass: QuietClientLogger },
  });
  const insertBlock: Connection['insertBlock'] = async (table, columns, block, settings) => {
    const result = await client.exec({ query: `${insertPrefix(database, table, columns, settings)} FORMAT Native`, values: Readable.from([block]) });
    result.stream.resume();
  };
  return { client, database, kind: 'server', location: url.toString(), insertBlock };
}
