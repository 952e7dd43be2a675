/**
 * The Native encoder against real ClickHouse (embedded chDB): blocks it writes read back exactly, for every
 * type the tables use (edge values, non-ASCII, long strings, dictionaries past 256 and 65,536 keys, maps, states),
 * and the column lists of lib/store/tables.ts match the migrated tables, so an insert names every stored column.
 */
import type { Connection } from './client';
import { openTestStore, removeTestStore } from './store.testutil';
import { encodeNativeBlock, EncodeError } from './native';
import type { NativeColumn } from './native';
import { TABLE_COLUMNS } from './tables';

let dir: string;
let conn: Connection;

beforeAll(async () => {
  ({ dir, conn } = await openTestStore('meshlens-native-'));
}, 60_000);

afterAll(async () => {
  await removeTestStore({ dir, conn });
});

async function roundTrip(table: string, ddl: string, columns: NativeColumn[], rows: object[], select = '*'): Promise<unknown[]> {
  await conn.client.command({ query: `CREATE OR REPLACE TABLE ${conn.database}.${table} (${ddl}) ENGINE = MergeTree ORDER BY tuple()` });
  await conn.insertBlock(table, columns.map((c) => c.name), encodeNativeBlock(columns, rows), {});
  const rs = await conn.client.query({ query: `SELECT ${select} FROM ${conn.database}.${table} ORDER BY i`, format: 'JSONEachRow' });
  return rs.json();
}

describe('encodeNativeBlock', () => {
  it('writes numbers at the edges of their types exactly', async () => {
    const columns: NativeColumn[] = [
      { name: 'i', type: 'UInt32' },
      { name: 'a', type: 'Int64' },
      { name: 'b', type: 'UInt64' },
      { name: 'c', type: 'Int32' },
      { name: 'd', type: 'UInt16' },
      { name: 'e', type: 'Int16' },
      { name: 'f', type: 'Float64' },
      { name: 'g', type: 'Bool' },
      { name: 'h', type: "DateTime('UTC')" },
      { name: 'u', type: 'UInt8' },
    ];
    const rows = [
      { i: 0, a: -1, b: 0, c: -1, d: 0, e: -32768, f: 0.1, g: true, h: 0, u: 0 },
      { i: 1, a: Number.MIN_SAFE_INTEGER, b: Number.MAX_SAFE_INTEGER, c: 2147483647, d: 65535, e: 32767, f: -1e-300, g: false, h: 1764676800, u: 255 },
      { i: 2, a: 1764676800123, b: 4294967296, c: -2147483648, d: 443, e: 0, f: 1.5e300, g: true, h: 4294967295, u: 7 },
    ];
    const ddl = 'i UInt32, a Int64, b UInt64, c Int32, d UInt16, e Int16, f Float64, g Bool, h UInt32, u UInt8';
    expect(await roundTrip('t_numbers', ddl, columns, rows, 'i, toString(a) AS a, toString(b) AS b, c, d, e, f, g, h, u')).toEqual(
      rows.map((r) => ({ ...r, a: String(r.a), b: String(r.b) })),
    );
  });

  it('writes strings (empty, non-ASCII, longer than one length byte) as String and as LowCardinality', async () => {
    const values = ['', 'reviews', 'ünïcödé ✓ 日本', 'x'.repeat(42), 'é'.repeat(42), 'y'.repeat(200), 'z'.repeat(70_000), 'reviews'];
    const rows = values.map((s, i) => ({ i, s, l: s }));
    const columns: NativeColumn[] = [
      { name: 'i', type: 'UInt32' },
      { name: 's', type: 'String' },
      { name: 'l', type: 'LowCardinality(String)' },
    ];
    expect(await roundTrip('t_strings', 'i UInt32, s String, l LowCardinality(String)', columns, rows)).toEqual(rows);
  });

  it.each([300, 70_000])('writes a LowCardinality dictionary of %i keys (wider indexes)', async (keys) => {
    const rows = Array.from({ length: keys + 5 }, (_, i) => ({ i, l: `key-${i % keys}` }));
    const columns: NativeColumn[] = [
      { name: 'i', type: 'UInt32' },
      { name: 'l', type: 'LowCardinality(String)' },
    ];
    const back = (await roundTrip('t_dict', 'i UInt32, l LowCardinality(String)', columns, rows)) as { l: string }[];
    expect(back.map((r) => r.l)).toEqual(rows.map((r) => r.l));
  });

  it('writes maps: string attributes into Map(LowCardinality(String), String) and histograms into sumMap columns', async () => {
    const rows = [
      { i: 0, m: {}, h: new Map<number, number>() },
      { i: 1, m: { team: 'books', 'ключ': 'значение' }, h: new Map([[-32768, 2], [35, 1]]) },
      { i: 2, m: { a: '' }, h: new Map([[32767, Number.MAX_SAFE_INTEGER]]) },
    ];
    const columns: NativeColumn[] = [
      { name: 'i', type: 'UInt32' },
      { name: 'm', type: 'Map(String, String)' },
      { name: 'h', type: 'Map(Int16, UInt64)' },
    ];
    const back = await roundTrip(
      't_maps',
      'i UInt32, m Map(LowCardinality(String), String), h SimpleAggregateFunction(sumMap, Map(Int16, UInt64))',
      columns,
      rows,
      'i, m, mapApply((k, v) -> (k, toString(v)), h) AS h',
    );
    expect(back).toEqual(rows.map((r) => ({ i: r.i, m: r.m, h: Object.fromEntries([...r.h].map(([k, v]) => [String(k), String(v)])) })));
  });

  it('writes count and sum states that merge with states ClickHouse computed', async () => {
    const columns: NativeColumn[] = [
      { name: 'i', type: 'UInt32' },
      { name: 'n', type: 'AggregateFunction(count)' },
      { name: 'e', type: 'AggregateFunction(countIf, UInt8)' },
      { name: 's', type: 'AggregateFunction(sum, UInt64)' },
    ];
    const ddl = 'i UInt32, n AggregateFunction(count), e AggregateFunction(countIf, UInt8), s AggregateFunction(sum, UInt64)';
    await roundTrip('t_states', ddl, columns, [
      { i: 0, n: 3, e: 0, s: 10 },
      { i: 1, n: 300, e: 200, s: 2 ** 40 },
    ]);
    await conn.client.command({
      query: `INSERT INTO ${conn.database}.t_states SELECT 2, countState(), countIfState(number % 2 = 0), sumState(toUInt64(number)) FROM numbers(5)`,
    });
    const rs = await conn.client.query({
      query: `SELECT countMerge(n) AS n, countIfMerge(e) AS e, toString(sumMerge(s)) AS s FROM ${conn.database}.t_states`,
      format: 'JSONEachRow',
    });
    expect(await rs.json()).toEqual([{ n: 308, e: 203, s: String(10 + 2 ** 40 + 10) }]);
  });

  it('refuses a value its column cannot hold, naming the column and the row', () => {
    const columns: NativeColumn[] = [{ name: 'd', type: 'UInt16' }];
    for (const bad of [70_000, -1, 1.5, Number.NaN, '443']) {
      const err = (() => {
        try {
          encodeNativeBlock(columns, [{ d: 1 }, { d: bad }]);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err).toBeInstanceOf(EncodeError);
      expect(err).toMatchObject({ column: 'd', row: 1 });
    }
  });
});

describe('TABLE_COLUMNS', () => {
  it.each(Object.keys(TABLE_COLUMNS))('names every stored column of %s in table order, with a type ClickHouse takes', async (table) => {
    const rs = await conn.client.query({
      query: `SELECT name, type FROM system.columns WHERE database = 'meshlens' AND table = {table:String} AND default_kind != 'MATERIALIZED' ORDER BY position`,
      query_params: { table },
      format: 'JSONEachRow',
    });
    const stored = (await rs.json<{ name: string; type: string }>()).filter((c) => c.name !== 'latencyMs');
    const ours = TABLE_COLUMNS[table as keyof typeof TABLE_COLUMNS];
    expect(ours.map((c) => c.name)).toEqual(stored.map((c) => c.name));
    const spelled = (type: string): string =>
      type.replace('Map(LowCardinality(String), String)', 'Map(String, String)').replace(/^SimpleAggregateFunction\(\w+, (.*)\)$/, '$1');
    expect(ours.map((c) => c.type)).toEqual(stored.map((c) => spelled(c.type)));
  });
});
