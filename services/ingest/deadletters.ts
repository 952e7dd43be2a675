/**
 * The all-in-one's dead-letter sink: with the in-memory bus nothing else keeps rejected input, so it is appended
 * as NDJSON (one dead letter per line, raw bytes base64) to `<dataDir>/deadletters/<UTC day>.ndjson`. In
 * distributed mode the Kafka topic `meshlens.deadletters` itself is the store.
 *
 * Bounded and counted (CONTRACT.md §9, issue 9): it used to append every letter forever, and a whole-body
 * rejection carried the whole body (a 16 MiB body became a 21 MiB base64 line).
 * - Each letter keeps at most the first `maxRawBytes` (64 KiB) of its raw input, with the original length in
 *   `rawBytes` and `truncated: true` when cut: enough to see what was sent, not a copy of every bad upload.
 * - A day file is deleted once its newest possible letter is older than `retentionDays`, so every letter is
 *   kept at least that long.
 * - The files never hold more than `maxBytes` together: to make room, whole day files are deleted, oldest first,
 *   but never the file being written or a newer one. When even that is not enough, letters are not written.
 * - `meshlens_deadletters_written_total` counts letters written, `meshlens_deadletters_dropped_total{reason}`
 *   counts letters not kept (`size`: not written at the bound, or deleted with a day file to make room; `age`:
 *   deleted with a day file past the retention), `meshlens_deadletters_truncated_total` letters whose raw bytes
 *   were cut, and `meshlens_deadletters_disk_bytes` is what the files hold. Every unit is one dead letter
 *   (a line), except the gauge (bytes).
 *
 * The bus commits a batch only when the handler resolved. A failure to write (disk full, permissions) is thrown,
 * not swallowed: the letters stay on the bus, which redelivers the same batch, and with the end-to-end
 * acknowledging memory bus the receivers answer 503 meanwhile. It is logged once per streak of failures.
 */
import { createReadStream } from 'node:fs';
import { mkdir, readdir, stat, truncate, unlink, appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Counter, Gauge, type Metric, type Registry } from 'prom-client';
import { TOPICS, type Bus, type DeadLetter, type DeliveredMessage, type Subscription } from '../../lib/bus';
import { DAY_MS, type Logger } from '../../lib/runtime';

/** Raw bytes kept per dead letter when the options do not say. */
export const MAX_DEAD_LETTER_RAW_BYTES = 64 * 1024;
/** A letter's message is the parser's; this only bounds a pathological one. */
const MAX_MESSAGE_CHARS = 4096;
const DAY_FILE = /^(\d{4}-\d{2}-\d{2})\.ndjson$/;
const GROUP = 'meshlens-deadletter-file';

/** A dead letter as the file keeps it: the bus's letter with its raw input capped. */
export interface StoredDeadLetter extends DeadLetter {
  /** Length of the raw input as received (after decompression), before any cut. */
  rawBytes: number;
  /** True when `rawBase64` holds only the first `maxRawBytes` of it. */
  truncated: boolean;
}

export interface DeadLetterSinkOptions {
  /** `MESHLENS_DATA_DIR`; the files go to its `deadletters/` folder. */
  dataDir: string;
  /** `MESHLENS_DEADLETTER_MAX_BYTES`: most bytes the day files may hold together. */
  maxBytes: number;
  /** `MESHLENS_DEADLETTER_RETENTION_DAYS`: how long a letter is kept at least. */
  retentionDays: number;
  /** The process registry the counters and the gauge are registered in. */
  registry: Registry;
  logger: Pick<Logger, 'error' | 'warn' | 'info'>;
  /** Clock for retention (tests pass a fake one). Default Date.now. */
  now?: () => number;
  /** Raw bytes kept per letter. Default MAX_DEAD_LETTER_RAW_BYTES. */
  maxRawBytes?: number;
  /** How often retention runs even when no letter arrives. Default one hour. */
  sweepIntervalMs?: number;
}

export interface DeadLetterSink extends Subscription {
  /** Applies retention now (it also runs before every write and every `sweepIntervalMs`). */
  sweep(): Promise<void>;
  /** False while writing fails: the all-in-one then takes no new requests (a rejected line could not be kept). */
  ready(): boolean;
}

/** Decoded length of a base64 string, without decoding it. */
function base64Bytes(b64: string): number {
  const pad = b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0;
  return Math.floor((b64.length * 3) / 4) - pad;
}

/**
 * A letter with its raw bytes cut to the first `maxRawBytes`, its original length in `rawBytes`, and its message
 * bounded. Only the kept prefix of the base64 text is decoded. The receivers already keep only the first
 * 64 KiB of what they refuse (services/ingest/pipeline.ts); this bounds every other letter the sink is given
 * (rows the store refused, messages Kafka could not decode).
 */
export function capDeadLetter(letter: DeadLetter, maxRawBytes: number = MAX_DEAD_LETTER_RAW_BYTES): StoredDeadLetter {
  const prior = letter as Partial<StoredDeadLetter>;
  const length = base64Bytes(letter.rawBase64);
  // A letter capped upstream already says how long its input was.
  const rawBytes = typeof prior.rawBytes === 'number' ? prior.rawBytes : length;
  const message = letter.message.length > MAX_MESSAGE_CHARS ? letter.message.slice(0, MAX_MESSAGE_CHARS) + '…' : letter.message;
  if (length <= maxRawBytes) return { ...letter, message, rawBytes, truncated: prior.truncated === true };
  const prefix = Buffer.from(letter.rawBase64.slice(0, Math.ceil(maxRawBytes / 3) * 4), 'base64').subarray(0, maxRawBytes);
  return { ...letter, message, rawBase64: prefix.toString('base64'), rawBytes, truncated: true };
}

interface DayFile {
  day: string;
  bytes: number;
  letters: number;
}

/** Letters and bytes of a day file; a last line without its newline (a crash mid-append) is cut off. */
async function inspect(path: string): Promise<{ bytes: number; letters: number }> {
  let letters = 0;
  let offset = 0;
  let lastNewline = -1;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    let i = chunk.indexOf(10);
    while (i >= 0) {
      letters++;
      lastNewline = offset + i;
      i = chunk.indexOf(10, i + 1);
    }
    offset += chunk.length;
  }
  if (lastNewline + 1 !== offset) {
    // The bus had not committed the batch of that line (offsets move after the append), so nothing is lost.
    await truncate(path, lastNewline + 1);
  }
  return { bytes: lastNewline + 1, letters };
}

function dayOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

function dayStartMs(day: string): number {
  return Date.parse(day + 'T00:00:00Z');
}

function metric<T extends Metric>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

export async function startDeadLetterFileSink(bus: Bus, opts: DeadLetterSinkOptions): Promise<DeadLetterSink> {
  const { registry, logger, maxBytes } = opts;
  const now = opts.now ?? Date.now;
  const maxRawBytes = opts.maxRawBytes ?? MAX_DEAD_LETTER_RAW_BYTES;
  const retentionMs = opts.retentionDays * DAY_MS;
  const dir = join(opts.dataDir, 'deadletters');

  const written = metric(registry, 'meshlens_deadletters_written_total', () =>
    new Counter({ name: 'meshlens_deadletters_written_total', help: 'Dead letters appended to the data dir (all-in-one).', registers: [registry] }),
  );
  const dropped = metric(registry, 'meshlens_deadletters_dropped_total', () =>
    new Counter({
      name: 'meshlens_deadletters_dropped_total',
      help:
        'Dead letters not kept in the data dir: reason="size" not written at MESHLENS_DEADLETTER_MAX_BYTES or deleted with an older day file to make room, reason="age" deleted with a day file past MESHLENS_DEADLETTER_RETENTION_DAYS.',
      labelNames: ['reason'],
      registers: [registry],
    }),
  );
  const truncatedCount = metric(registry, 'meshlens_deadletters_truncated_total', () =>
    new Counter({ name: 'meshlens_deadletters_truncated_total', help: 'Dead letters whose raw input was cut to its first 64 KiB.', registers: [registry] }),
  );
  const diskBytes = metric(registry, 'meshlens_deadletters_disk_bytes', () =>
    new Gauge({ name: 'meshlens_deadletters_disk_bytes', help: 'Bytes the dead-letter day files hold (all-in-one).', registers: [registry] }),
  );
  // Both reasons are exported from the start, so an alert on their rate has a series to read.
  dropped.inc({ reason: 'size' }, 0);
  dropped.inc({ reason: 'age' }, 0);

  await mkdir(dir, { recursive: true });
  /** Day files by day; ISO days sort as strings. */
  const files = new Map<string, DayFile>();
  let total = 0;
  for (const name of await readdir(dir)) {
    const m = DAY_FILE.exec(name);
    if (!m || !(await stat(join(dir, name))).isFile()) continue;
    const { bytes, letters } = await inspect(join(dir, name));
    files.set(m[1]!, { day: m[1]!, bytes, letters });
    total += bytes;
  }

  const pathOf = (day: string): string => join(dir, `${day}.ndjson`);
  const sortedDays = (): string[] => [...files.keys()].sort();
  const expired = (day: string, at: number): boolean => dayStartMs(day) + DAY_MS + retentionMs <= at;

  async function remove(day: string, reason: 'size' | 'age'): Promise<void> {
    const f = files.get(day)!;
    await unlink(pathOf(day)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    files.delete(day);
    total -= f.bytes;
    dropped.inc({ reason }, f.letters);
    diskBytes.set(total);
  }

  async function applyRetention(at: number): Promise<void> {
    for (const day of sortedDays()) if (expired(day, at)) await remove(day, 'age');
  }

  /** Deletes whole day files older than `day`, oldest first, until `needed` more bytes fit. */
  async function makeRoom(day: string, needed: number): Promise<void> {
    for (const d of sortedDays()) {
      if (total + needed <= maxBytes || d >= day) return;
      await remove(d, 'size');
    }
  }

  // A configuration lowered since the last run: trim at start, as a write would.
  await applyRetention(now());
  const days = sortedDays();
  if (days.length > 0) await makeRoom(days[days.length - 1]!, 0);
  diskBytes.set(total);

  /** Letters of the batch being redelivered that are already on disk (the bus redelivers exactly that batch). */
  const done = new Set<string>();
  let failing = false;
  let dropping = false;
  let chain: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = chain.then(fn, fn);
    chain = run.catch(() => undefined);
    return run;
  };

  async function write(messages: DeliveredMessage<DeadLetter[]>[]): Promise<void> {
    const at = now();
    // Again on every write: an operator who removed the folder (or a disk that was remounted) is not fatal.
    await mkdir(dir, { recursive: true });
    await applyRetention(at);
    // Per day, in arrival order: the lines and the keys of the messages whose letters all belong to that day.
    const byDay = new Map<string, { lines: string[]; sizes: number[]; truncated: number; keys: string[] }>();
    const spread = new Map<string, Set<string>>();
    for (const m of messages) {
      const key = `${m.partition}:${m.offset}`;
      if (done.has(key)) continue;
      const daysOfMessage = new Set<string>();
      for (const letter of m.value) {
        // A letter's own time names its file; a corrupt one must not make every redelivery throw.
        const day = dayOf(Number.isFinite(letter.receivedAtMs) && Math.abs(letter.receivedAtMs) < 8.64e15 ? letter.receivedAtMs : at);
        const stored = capDeadLetter(letter, maxRawBytes);
        const line = JSON.stringify(stored) + '\n';
        let group = byDay.get(day);
        if (!group) byDay.set(day, (group = { lines: [], sizes: [], truncated: 0, keys: [] }));
        group.lines.push(line);
        group.sizes.push(Buffer.byteLength(line));
        // Cut here or already by the receiver (which keeps only the first 64 KiB of what it refused): counted once, here.
        if (stored.truncated) group.truncated++;
        daysOfMessage.add(day);
      }
      spread.set(key, daysOfMessage);
      if (daysOfMessage.size === 1) byDay.get([...daysOfMessage][0]!)!.keys.push(key);
    }

    const finished = new Set<string>();
    let droppedForSize = 0;
    for (const day of [...byDay.keys()].sort()) {
      const group = byDay.get(day)!;
      if (expired(day, at)) {
        // Letters that waited on the bus past the retention would be deleted at the next sweep anyway.
        dropped.inc({ reason: 'age' }, group.lines.length);
        finished.add(day);
        for (const key of group.keys) done.add(key);
        continue;
      }
      const needed = group.sizes.reduce((a, b) => a + b, 0);
      await makeRoom(day, needed);
      let chunk = '';
      let bytes = 0;
      let kept = 0;
      let cut = 0;
      for (let i = 0; i < group.lines.length; i++) {
        if (total + bytes + group.sizes[i]! > maxBytes) {
          cut++;
          continue;
        }
        chunk += group.lines[i]!;
        bytes += group.sizes[i]!;
        kept++;
      }
      if (kept > 0) {
        const file = files.get(day);
        const before = file?.bytes ?? 0;
        try {
          await appendFile(pathOf(day), chunk);
        } catch (err) {
          // Leave no half line behind: the redelivery appends the whole chunk again.
          await truncate(pathOf(day), before).catch(() => undefined);
          throw err;
        }
        if (file) {
          file.bytes += bytes;
          file.letters += kept;
        } else {
          files.set(day, { day, bytes, letters: kept });
        }
        total += bytes;
        diskBytes.set(total);
        written.inc(kept);
      }
      if (group.truncated > 0) truncatedCount.inc(group.truncated);
      if (cut > 0) {
        dropped.inc({ reason: 'size' }, cut);
        droppedForSize += cut;
      }
      finished.add(day);
      for (const key of group.keys) done.add(key);
    }
    // A message whose letters span days is done once all its days are.
    for (const [key, daysOfMessage] of spread) if ([...daysOfMessage].every((d) => finished.has(d))) done.add(key);

    if (droppedForSize > 0 && !dropping) {
      dropping = true;
      logger.warn(
        { maxBytes, diskBytes: total, dropped: droppedForSize },
        'dead-letter files are at MESHLENS_DEADLETTER_MAX_BYTES: dead letters are counted in meshlens_deadletters_dropped_total{reason="size"} and not written',
      );
    } else if (droppedForSize === 0 && dropping) {
      dropping = false;
      logger.info({ diskBytes: total }, 'dead letters are written again');
    }
  }

  const subscription = await bus.subscribe(TOPICS.deadLetters, GROUP, (messages) =>
    exclusive(async () => {
      try {
        await write(messages);
      } catch (err) {
        if (!failing) {
          failing = true;
          logger.error({ err, dir }, 'cannot write dead letters; they stay on the bus and are retried (receivers answer 503 meanwhile)');
        }
        throw err;
      }
      // Committed once this resolves: nothing of this batch is redelivered any more.
      done.clear();
      if (failing) {
        failing = false;
        logger.info({ dir }, 'dead letters are written again');
      }
    }),
  );

  let sweepFailing = false;
  const sweep = (): Promise<void> =>
    exclusive(async () => {
      try {
        await applyRetention(now());
        sweepFailing = false;
      } catch (err) {
        if (!sweepFailing) logger.error({ err, dir }, 'cannot delete expired dead-letter files');
        sweepFailing = true;
        throw err;
      }
    });
  const timer = setInterval(() => void sweep().catch(() => undefined), opts.sweepIntervalMs ?? 3_600_000);
  timer.unref();

  return {
    sweep,
    ready: () => !failing,
    async stop() {
      clearInterval(timer);
      await subscription.stop();
      await chain;
    },
  };
}
