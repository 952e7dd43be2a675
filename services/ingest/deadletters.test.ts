import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { createMemoryBus, TOPICS, type BatchHandler, type Bus, type DeadLetter, type DeliveredMessage, type Subscription } from '../../lib/bus';
import { capDeadLetter, MAX_DEAD_LETTER_RAW_BYTES, startDeadLetterFileSink, type DeadLetterSinkOptions, type StoredDeadLetter } from './deadletters';

const DAY = 86_400_000;
const T0 = Date.parse('2026-03-10T12:00:00Z');

/** A bus that only hands the test the sink's handler, so each delivery (and redelivery) is explicit. */
function handBus(): { bus: Bus; deliver: (letters: DeadLetter[][], offset?: number) => Promise<void> } {
  let handler: BatchHandler<DeadLetter[]> | undefined;
  let next = 0;
  const bus = {
    subscribe: async (topic: { name: string }, _group: string, h: BatchHandler<DeadLetter[]>): Promise<Subscription> => {
      expect(topic.name).toBe(TOPICS.deadLetters.name);
      handler = h;
      return { stop: async () => undefined };
    },
  } as unknown as Bus;
  return {
    bus,
    // `offset` repeats a delivery: the memory bus redelivers exactly the failed batch, with its offsets.
    deliver: (batches, offset) => {
      let at = offset ?? next;
      const messages: DeliveredMessage<DeadLetter[]>[] = batches.map((value) => ({ key: 'r', value, partition: 0, offset: String(at++) }));
      if (offset === undefined) next = at;
      return handler!(messages);
    },
  };
}

function letter(receivedAtMs: number, raw: Buffer | string = 'a bad line', line = 1): DeadLetter {
  return {
    receivedAtMs,
    receiver: 'accesslog',
    format: 'istio_text',
    reason: 'unknown_layout',
    message: 'line does not start with [%START_TIME%]',
    line,
    rawBase64: (typeof raw === 'string' ? Buffer.from(raw) : raw).toString('base64'),
  };
}

interface Logged {
  level: 'error' | 'warn' | 'info';
  msg: string;
}

function recorder(): { logger: DeadLetterSinkOptions['logger']; logs: Logged[] } {
  const logs: Logged[] = [];
  const at = (level: Logged['level']) => (_fields: unknown, msg?: string) => void logs.push({ level, msg: msg ?? '' });
  return { logs, logger: { error: at('error'), warn: at('warn'), info: at('info') } as unknown as DeadLetterSinkOptions['logger'] };
}

async function value(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) throw new Error(`${name} is not registered`);
  const found = (await m.get()).values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x));
  return found?.value ?? 0;
}

async function linesOf(path: string): Promise<StoredDeadLetter[]> {
  const text = await readFile(path, 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  return text
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as StoredDeadLetter);
}

async function diskSize(dir: string): Promise<number> {
  let n = 0;
  for (const f of await readdir(dir)) n += (await stat(join(dir, f))).size;
  return n;
}

describe('dead-letter file sink', () => {
  let dataDir: string;
  let dir: string;
  let clock: number;
  const now = (): number => clock;

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'meshlens-deadletters-'));
    dir = join(dataDir, 'deadletters');
    clock = T0;
  });
  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  const start = async (over: Partial<DeadLetterSinkOptions> = {}) => {
    const { bus, deliver } = handBus();
    const registry = new Registry();
    const { logger, logs } = recorder();
    const sink = await startDeadLetterFileSink(bus, { dataDir, maxBytes: 1024 ** 3, retentionDays: 7, registry, logger, now, ...over });
    return { sink, deliver, registry, logs };
  };

  it('appends letters to the UTC day file of their arrival, with rawBytes and truncated, and counts them', async () => {
    const { sink, deliver, registry } = await start();
    await deliver([[letter(T0), letter(T0, 'second', 2)], [letter(T0 + DAY)]]);
    const today = await linesOf(join(dir, '2026-03-10.ndjson'));
    expect(today.map((l) => [l.line, Buffer.from(l.rawBase64, 'base64').toString(), l.rawBytes, l.truncated])).toEqual([
      [1, 'a bad line', 10, false],
      [2, 'second', 6, false],
    ]);
    expect(today[0]).toMatchObject({ receiver: 'accesslog', format: 'istio_text', reason: 'unknown_layout', receivedAtMs: T0 });
    expect(await linesOf(join(dir, '2026-03-11.ndjson'))).toHaveLength(1);
    expect(await value(registry, 'meshlens_deadletters_written_total')).toBe(3);
    expect(await value(registry, 'meshlens_deadletters_disk_bytes')).toBe(await diskSize(dir));
    await sink.stop();
  });

  it('keeps only the first 64 KiB of a 16 MiB body, with its length, and counts the cut', async () => {
    const body = Buffer.alloc(16 * 1024 * 1024, 0x41);
    body.write('HEAD', 0);
    const { sink, deliver, registry } = await start();
    await deliver([[{ ...letter(T0, body, 0), receiver: 'otlp_http', format: 'otlp_logs', reason: 'malformed_protobuf' }]]);
    const [stored] = await linesOf(join(dir, '2026-03-10.ndjson'));
    const raw = Buffer.from(stored!.rawBase64, 'base64');
    expect(raw.length).toBe(MAX_DEAD_LETTER_RAW_BYTES);
    expect(raw.subarray(0, 4).toString()).toBe('HEAD');
    expect(stored).toMatchObject({ rawBytes: 16 * 1024 * 1024, truncated: true, line: 0 });
    // The whole line stays near the cap instead of 21 MiB of base64.
    expect((await stat(join(dir, '2026-03-10.ndjson'))).size).toBeLessThan(100 * 1024);
    expect(await value(registry, 'meshlens_deadletters_truncated_total')).toBe(1);
    await sink.stop();
  });

  it('capDeadLetter: exact at the cap, cut one byte past it, for every base64 padding', () => {
    for (const extra of [0, 1, 2, 3]) {
      const raw = Buffer.alloc(1000 + extra, 7);
      const at = capDeadLetter(letter(T0, raw), 1000 + extra);
      expect(at).toMatchObject({ rawBytes: 1000 + extra, truncated: false, rawBase64: raw.toString('base64') });
      const cut = capDeadLetter(letter(T0, raw), 999);
      expect(cut).toMatchObject({ rawBytes: 1000 + extra, truncated: true });
      expect(Buffer.from(cut.rawBase64, 'base64')).toEqual(raw.subarray(0, 999));
    }
    expect(capDeadLetter({ ...letter(T0), message: 'x'.repeat(100_000) }).message.length).toBeLessThan(5000);
  });

  it('stays under maxBytes by deleting whole day files, oldest first, and counts their letters as dropped size', async () => {
    const line = Buffer.byteLength(JSON.stringify(capDeadLetter(letter(T0))) + '\n');
    // Room for five letters.
    const { sink, deliver, registry } = await start({ maxBytes: 5 * line });
    await deliver([[letter(T0 - 2 * DAY), letter(T0 - 2 * DAY)]]);
    await deliver([[letter(T0 - DAY), letter(T0 - DAY)]]);
    await deliver([[letter(T0), letter(T0)]]);
    // The oldest file went to make room for today's two letters; yesterday's stayed.
    expect((await readdir(dir)).sort()).toEqual(['2026-03-09.ndjson', '2026-03-10.ndjson']);
    expect(await value(registry, 'meshlens_deadletters_dropped_total', { reason: 'size' })).toBe(2);
    expect(await value(registry, 'meshlens_deadletters_written_total')).toBe(6);
    expect(await diskSize(dir)).toBeLessThanOrEqual(5 * line);
    expect(await value(registry, 'meshlens_deadletters_disk_bytes')).toBe(await diskSize(dir));
    await sink.stop();
  });

  it("when today's file alone reaches the bound it stops writing, counts what it did not write, warns once, and writes again the next day", async () => {
    const line = Buffer.byteLength(JSON.stringify(capDeadLetter(letter(T0))) + '\n');
    const { sink, deliver, registry, logs } = await start({ maxBytes: 3 * line });
    await deliver([[letter(T0), letter(T0)]]);
    await deliver([[letter(T0), letter(T0)]]);
    await deliver([[letter(T0)]]);
    expect(await linesOf(join(dir, '2026-03-10.ndjson'))).toHaveLength(3);
    expect(await value(registry, 'meshlens_deadletters_dropped_total', { reason: 'size' })).toBe(2);
    expect(logs.filter((l) => l.level === 'warn')).toHaveLength(1);
    expect(logs[0]!.msg).toContain('MESHLENS_DEADLETTER_MAX_BYTES');
    // Next day: yesterday's file is older than the one being written, so it makes room.
    clock = T0 + DAY;
    await deliver([[letter(T0 + DAY)]]);
    expect(await readdir(dir)).toEqual(['2026-03-11.ndjson']);
    expect(await value(registry, 'meshlens_deadletters_dropped_total', { reason: 'size' })).toBe(5);
    expect(logs.map((l) => l.level)).toEqual(['warn', 'info']);
    await sink.stop();
  });

  it('deletes day files once their last letter is older than the retention, on the next write or sweep, and counts them as dropped age', async () => {
    const { sink, deliver, registry } = await start({ retentionDays: 2 });
    await deliver([[letter(T0), letter(T0)]]);
    // 2026-03-10 ends at 03-11T00:00; two days later it is 03-13T00:00.
    clock = Date.parse('2026-03-12T23:59:59Z');
    await sink.sweep();
    expect(await readdir(dir)).toEqual(['2026-03-10.ndjson']);
    clock = Date.parse('2026-03-13T00:00:00Z');
    await sink.sweep();
    expect(await readdir(dir)).toEqual([]);
    expect(await value(registry, 'meshlens_deadletters_dropped_total', { reason: 'age' })).toBe(2);
    expect(await value(registry, 'meshlens_deadletters_disk_bytes')).toBe(0);
    // Letters that waited on the bus past the retention are not written to be deleted at once.
    await deliver([[letter(T0)]]);
    expect(await readdir(dir)).toEqual([]);
    expect(await value(registry, 'meshlens_deadletters_dropped_total', { reason: 'age' })).toBe(3);
    await sink.stop();
  });

  it('at start, counts the files already there, applies both bounds, and cuts a half-written last line', async () => {
    await mkdir(dir, { recursive: true });
    const full = JSON.stringify(capDeadLetter(letter(T0))) + '\n';
    await writeFile(join(dir, '2026-02-01.ndjson'), full.repeat(4)); // past a 7-day retention
    await writeFile(join(dir, '2026-03-09.ndjson'), full.repeat(3));
    await writeFile(join(dir, '2026-03-10.ndjson'), full.repeat(2) + full.slice(0, 40)); // a crash mid-append
    await writeFile(join(dir, 'notes.txt'), 'not a day file');
    const { sink, deliver, registry } = await start({ maxBytes: 4 * Buffer.byteLength(full) });
    expect(await value(registry, 'meshlens_deadletters_dropped_total', { reason: 'age' })).toBe(4);
    // 3 + 2 letters do not fit in 4: the older file goes.
    expect(await value(registry, 'meshlens_deadletters_dropped_total', { reason: 'size' })).toBe(3);
    expect((await readdir(dir)).sort()).toEqual(['2026-03-10.ndjson', 'notes.txt']);
    expect(await linesOf(join(dir, '2026-03-10.ndjson'))).toHaveLength(2);
    expect(await value(registry, 'meshlens_deadletters_disk_bytes')).toBe(2 * Buffer.byteLength(full));
    await deliver([[letter(T0)]]);
    expect(await linesOf(join(dir, '2026-03-10.ndjson'))).toHaveLength(3);
    await sink.stop();
  });

  it('a write that fails is thrown, not swallowed, logged once per streak, and its redelivery writes nothing twice', async () => {
    const { sink, deliver, registry, logs } = await start();
    // A directory where the next day's file belongs makes its append fail (EISDIR), whoever runs the test.
    await mkdir(join(dir, '2026-03-11.ndjson'));
    const batch = [[letter(T0)], [letter(T0 + DAY)]];
    await expect(deliver(batch, 0)).rejects.toThrow();
    await expect(deliver(batch, 0)).rejects.toThrow();
    expect(logs.filter((l) => l.level === 'error')).toHaveLength(1);
    await rm(join(dir, '2026-03-11.ndjson'), { recursive: true });
    await deliver(batch, 0);
    // The first day was appended before the failure: the redelivery did not append it again.
    expect(await linesOf(join(dir, '2026-03-10.ndjson'))).toHaveLength(1);
    expect(await linesOf(join(dir, '2026-03-11.ndjson'))).toHaveLength(1);
    expect(await value(registry, 'meshlens_deadletters_written_total')).toBe(2);
    expect(logs.map((l) => l.level)).toEqual(['error', 'info']);
    await sink.stop();
  });

  it('a letter with a corrupt receivedAtMs goes to the current day instead of failing every redelivery', async () => {
    const { sink, deliver } = await start();
    await deliver([[{ ...letter(T0), receivedAtMs: Number.NaN }, { ...letter(T0), receivedAtMs: 1e300 }]]);
    expect(await linesOf(join(dir, '2026-03-10.ndjson'))).toHaveLength(2);
    await sink.stop();
  });

  it('takes letters from the real memory bus and registers its metrics once per registry', async () => {
    const bus = createMemoryBus();
    const registry = new Registry();
    const { logger } = recorder();
    const sink = await startDeadLetterFileSink(bus, { dataDir, maxBytes: 1024 ** 3, retentionDays: 7, registry, logger });
    await bus.publish(TOPICS.deadLetters, [{ key: 'zipkin', value: [letter(Date.now())] }]);
    expect(await bus.drain(5000)).toBe(true);
    const [file] = await readdir(dir);
    expect(await linesOf(join(dir, file!))).toHaveLength(1);
    const text = await registry.metrics();
    for (const name of ['meshlens_deadletters_written_total', 'meshlens_deadletters_dropped_total', 'meshlens_deadletters_truncated_total', 'meshlens_deadletters_disk_bytes']) {
      expect(text).toContain(`# TYPE ${name}`);
    }
    expect(text).toContain('meshlens_deadletters_dropped_total{reason="size"} 0');
    await sink.stop();
    await bus.close();
  });
});
