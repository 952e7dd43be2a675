/**
 * Forward-only schema migrations: `clickhouse/migrations/NNN_<verb>_<object>.sql`, applied in order at
 * start and recorded in `<database>.schema_migrations`. Statements use `IF NOT EXISTS`, so two replicas
 * starting together converge. An applied file must not change: its checksum is checked on every start.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Connection } from './client';
import { StoreError } from './errors';

export const MIGRATIONS_DIR = join(__dirname, '..', '..', 'clickhouse', 'migrations');

export interface Migration {
  version: number;
  name: string;
  checksum: string;
  statements: string[];
}

const FILE = /^(\d{3})_([a-z0-9_]+)\.sql$/;

/** Splits a migration into statements: `--` comment lines dropped, statements end with `;` at a line end. */
export function splitStatements(sql: string): string[] {
  const body = sql
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('--'))
    .join('\n');
  return body
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

export function readMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const files = readdirSync(dir).filter((f) => f.endsWith('.sql')).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const m = FILE.exec(file);
    if (!m) throw new Error(`migration file ${file} is not named NNN_<verb>_<object>.sql`);
    const sql = readFileSync(join(dir, file), 'utf8');
    const version = Number(m[1]);
    if (migrations.some((x) => x.version === version)) throw new Error(`two migrations share version ${version}`);
    migrations.push({
      version,
      name: file,
      checksum: createHash('sha256').update(sql).digest('hex'),
      statements: splitStatements(sql),
    });
  }
  return migrations;
}

export interface Retention {
  rawDays: number;
  rollupDays: number;
}

/** Tables whose TTL follows the configured retention, and the column expression the TTL is on. */
const TTL_TABLES: { table: string; expr: string; kind: keyof Retention }[] = [
  { table: 'requests', expr: 'toDateTime(timestamp)', kind: 'rawDays' },
  { table: 'flows', expr: 'toDateTime(timestamp)', kind: 'rawDays' },
  { table: 'spans', expr: 'toDateTime(timestamp)', kind: 'rawDays' },
  { table: 'requests_rollup_1m', expr: 'minute', kind: 'rollupDays' },
  { table: 'flows_1m', expr: 'minute', kind: 'rollupDays' },
  { table: 'span_edges_1m', expr: 'minute', kind: 'rollupDays' },
];

/** Applies pending migrations, then aligns table TTLs with the configured retention. Returns applied names. */
export async function migrate(conn: Connection, retention: Retention, migrations = readMigrations()): Promise<string[]> {
  const { client, database } = conn;
  const sub = (s: string): string => s.replaceAll('{{database}}', database);
  await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}` });
  await client.command({
    query: `CREATE TABLE IF NOT EXISTS ${database}.schema_migrations
      (version UInt32, name String, checksum String, appliedAt DateTime64(3, 'UTC') DEFAULT now64(3))
      ENGINE = MergeTree ORDER BY version`,
  });
  const rs = await client.query({ query: `SELECT version, name, checksum FROM ${database}.schema_migrations`, format: 'JSONEachRow' });
  const applied = new Map((await rs.json<{ version: number; name: string; checksum: string }>()).map((r) => [Number(r.version), r]));

  const done: string[] = [];
  for (const m of migrations) {
    const prior = applied.get(m.version);
    if (prior) {
      if (prior.checksum !== m.checksum) {
        throw new StoreError(`migration ${m.name} changed after it was applied (was ${prior.name}); add a new migration instead`, {
          retriable: false,
          type: 'MIGRATION_CHANGED',
          code: '',
        });
      }
      continue;
    }
    for (const statement of m.statements) await client.command({ query: sub(statement) });
    await client.insert({
      table: `${database}.schema_migrations`,
      values: [{ version: m.version, name: m.name, checksum: m.checksum }],
      format: 'JSONEachRow',
    });
    done.push(m.name);
  }
  await applyRetention(conn, retention);
  return done;
}

async function applyRetention(conn: Connection, retention: Retention): Promise<void> {
  const { client, database } = conn;
  const rs = await client.query({
    query: `SELECT name, engine_full FROM system.tables WHERE database = {db:String}`,
    query_params: { db: database },
    format: 'JSONEachRow',
  });
  const engines = new Map((await rs.json<{ name: string; engine_full: string }>()).map((r) => [r.name, r.engine_full]));
  for (const { table, expr, kind } of TTL_TABLES) {
    const days = retention[kind];
    // A table a later migration creates is not there yet when only earlier migrations were applied.
    if (!engines.has(table)) continue;
    const current = /toIntervalDay\((\d+)\)/.exec(engines.get(table) ?? '');
    if (current && Number(current[1]) === days) continue;
    // Parts older than the new TTL are dropped by background merges; no rewrite of existing parts.
    await client.command({
      query: `ALTER TABLE ${database}.${table} MODIFY TTL ${expr} + INTERVAL ${days} DAY`,
      clickhouse_settings: { materialize_ttl_after_modify: 0 },
    });
  }
}
