/**
 * From parsed records to the bus: bound event time, group accepted records by key into batches, keep every
 * rejected input on the dead-letter topic with its raw bytes and reason, count both once the bus has them
 * durably (in the all-in-one: stored in ClickHouse), and build the caller's reply (CONTRACT.md §3). A bus
 * refusal propagates as a retriable BusError: nothing is counted and the receiver tells the caller to retry,
 * so no record is dropped silently.
 *
 * Event time is bounded here, once for every receiver: a record older than the raw retention would be
 * accepted and then vanish with its partition's TTL, and one far in the future would be stored in a wrapped
 * partition and never queried. Both are rejected with a reason (`too_old`, `too_new`) instead.
 */
import { TOPICS, type Bus, type BusMessage, type DeadLetter, type Topic } from '../../lib/bus';
import type { IngestFormat, MeshRequest, RejectReason, Result } from '../../lib/model';
import { DAY_MS, type BodyChunks } from '../../lib/runtime';
import { MAX_DEAD_LETTER_RAW_BYTES } from './deadletters';
import type { Batch } from './formats/batch';
import { isObject, jsonForDeadLetter, type JsonObject } from './formats/json-values';
import type { IngestMetrics, ReceiverName } from './metrics';

/** How many rejections a reply lists (CONTRACT.md §3: "first errors only"). */
export const MAX_REPLY_ERRORS = 10;

/**
 * Rejections of one request kept as dead letters one by one, with their raw bytes; past it they are counted
 * (metrics, the reply's totals) and stand in one more letter. Bounds the memory and the bus weight of a body
 * of millions of bad lines.
 */
export const MAX_DEAD_LETTERS_PER_REQUEST = 1_000;

/**
 * The bus key of a request record: its destination service, which the client's and the server's records of one
 * hop share (the host may be spelled differently on each side), so with Kafka both reach the same aggregator
 * consumer and pair there (the joined view, lib/store/pairing.ts).
 */
export const requestKey = (r: MeshRequest): string => r.destinationService;

export interface ReplyError {
  /** 1-based line (or record) number within the body; 0 for the body as a whole. */
  line: number;
  reason: RejectReason;
  message: string;
}

export interface IngestReply {
  accepted: number;
  rejected: number;
  errors: ReplyError[];
}

/** The reply's first errors as one line: OTLP's `partialSuccess.errorMessage`. */
export function describeRejections(reply: IngestReply): string {
  return reply.errors.map((e) => `record ${e.line}: ${e.reason}: ${e.message}`).join('; ');
}

export type LineParser<T> = (line: string) => { format: IngestFormat; result: Result<T> };

/** A line parser's counterpart for a record already decoded from JSON (an element of a JSON-array body). */
export type ObjectParser<T> = (record: JsonObject) => { format: IngestFormat; result: Result<T> };

/** Every record carries its event time (CONTRACT.md §4 "Time"). */
interface Timed {
  startTimeMs: number;
}

export interface EventTimeBounds {
  /** Oldest event time accepted, as an age: MESHLENS_RAW_RETENTION_DAYS. */
  maxAgeMs: number;
  /** Furthest ahead of the receiver's clock accepted: MESHLENS_MAX_CLOCK_SKEW. */
  maxAheadMs: number;
}

export interface PipelineOptions {
  bounds: EventTimeBounds;
  now?: () => number;
}

/** Accumulates one request's outcome before anything is published. */
class Tally<T extends Timed> {
  readonly byKey = new Map<string, T[]>();
  readonly deadLetters: DeadLetter[] = [];
  readonly errors: ReplyError[] = [];
  readonly rejectedBy = new Map<string, { format: IngestFormat | 'unknown'; reason: RejectReason; n: number }>();
  accepted = 0;
  rejected = 0;

  private readonly oldestMs: number;
  private readonly newestMs: number;
  /** Accepted records per format, counted in runs (a body is one format, or a few): no map update per record. */
  private readonly acceptedByFormat = new Map<IngestFormat, number>();
  private runFormat: IngestFormat | undefined;
  private runLength = 0;
  /** Rejections past MAX_DEAD_LETTERS_PER_REQUEST: counted, and summed up in one more dead letter. */
  private unkept = 0;
  private firstUnkept: DeadLetter | undefined;

  constructor(
    readonly receiver: ReceiverName,
    private readonly keyOf: (record: T) => string,
    private readonly receivedAtMs: number,
    private readonly bounds: EventTimeBounds,
  ) {
    this.oldestMs = receivedAtMs - bounds.maxAgeMs;
    this.newestMs = receivedAtMs + bounds.maxAheadMs;
  }

  /**
   * Takes a parsed record, or rejects it when its event time is out of bounds. `raw` is what a dead letter
   * keeps: the line as received, the element of a JSON-array body (kept as JSON), or undefined for a whole-body
   * format's record (kept as the record, as JSON).
   */
  accept(format: IngestFormat, record: T, line: number, raw: string | JsonObject | undefined): void {
    const t = record.startTimeMs;
    if (t < this.oldestMs) {
      const days = Math.round(this.bounds.maxAgeMs / DAY_MS);
      this.reject(format, line, 'too_old', `event time ${iso(t)} is older than the ${days}-day raw retention (MESHLENS_RAW_RETENTION_DAYS)`, raw ?? record);
      return;
    }
    if (t > this.newestMs) {
      const ahead = Math.round(this.bounds.maxAheadMs / 1000);
      this.reject(format, line, 'too_new', `event time ${iso(t)} is more than ${ahead} s ahead of this receiver's clock (MESHLENS_MAX_CLOCK_SKEW)`, raw ?? record);
      return;
    }
    const key = this.keyOf(record);
    const group = this.byKey.get(key);
    if (group) group.push(record);
    else this.byKey.set(key, [record]);
    this.accepted++;
    if (format === this.runFormat) {
      this.runLength++;
    } else {
      this.endRun();
      this.runFormat = format;
      this.runLength = 1;
    }
  }

  /** `raw`: the input as received, or (a record parsed from a whole body) the record, kept as JSON. */
  reject(format: IngestFormat | 'unknown', line: number, reason: RejectReason, message: string, raw: string | Buffer | object): void {
    this.rejected++;
    if (this.errors.length < MAX_REPLY_ERRORS) this.errors.push({ line, reason, message });
    const k = format + '\u0000' + reason;
    const entry = this.rejectedBy.get(k);
    if (entry) entry.n++;
    else this.rejectedBy.set(k, { format, reason, n: 1 });
    if (this.deadLetters.length >= MAX_DEAD_LETTERS_PER_REQUEST) {
      // A body of 16 MiB can hold millions of bad lines: each stays counted and in the reply's totals, but
      // only the first ones are kept whole; the rest are summed up in one letter (see letters()).
      if (this.unkept++ === 0) this.firstUnkept = this.letter(format, line, reason, message, raw);
      return;
    }
    this.deadLetters.push(this.letter(format, line, reason, message, raw));
  }

  private letter(format: IngestFormat | 'unknown', line: number, reason: RejectReason, message: string, raw: string | Buffer | object): DeadLetter {
    // A whole rejected body can be 16 MiB: a dead letter keeps its beginning and says how long it was.
    // jsonForDeadLetter: a decoded element may be nested deeper than JSON.stringify can write.
    const bytes = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : Buffer.isBuffer(raw) ? raw : Buffer.from(jsonForDeadLetter(raw), 'utf8');
    const truncated = bytes.length > MAX_DEAD_LETTER_RAW_BYTES;
    return {
      receivedAtMs: this.receivedAtMs,
      receiver: this.receiver,
      format,
      reason,
      message,
      line,
      rawBase64: (truncated ? bytes.subarray(0, MAX_DEAD_LETTER_RAW_BYTES) : bytes).toString('base64'),
      ...(truncated ? { rawBytes: bytes.length, truncated } : {}),
    };
  }

  /** The dead letters to keep: the first ones whole, then one standing for every rejection past the cap. */
  letters(): DeadLetter[] {
    if (this.firstUnkept === undefined) return this.deadLetters;
    const first = this.firstUnkept;
    const summary = {
      ...first,
      message: `${this.unkept} more rejected records of this request (past the first ${MAX_DEAD_LETTERS_PER_REQUEST}) are counted but not kept one by one; this is the first of them: ${first.message}`,
    };
    return [...this.deadLetters, summary];
  }

  private endRun(): void {
    if (this.runFormat !== undefined) this.acceptedByFormat.set(this.runFormat, (this.acceptedByFormat.get(this.runFormat) ?? 0) + this.runLength);
    this.runFormat = undefined;
    this.runLength = 0;
  }

  /** Accepted records per format (call once, after the body). */
  acceptedFormats(): Map<IngestFormat, number> {
    this.endRun();
    return this.acceptedByFormat;
  }

  reply(): IngestReply {
    return { accepted: this.accepted, rejected: this.rejected, errors: this.errors };
  }
}

export class IngestPipeline {
  private readonly now: () => number;
  private readonly bounds: EventTimeBounds;

  constructor(
    private readonly bus: Bus,
    private readonly metrics: IngestMetrics,
    options: PipelineOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.bounds = options.bounds;
  }

  /**
   * A newline-delimited body, as the chunks it arrived in: one record per line; blank lines are not records.
   * `\r\n` endings are accepted. Newlines are found in the bytes and each line decoded on its own: decoding a
   * whole body at once makes one string per body, and a string that large costs V8 about 4 µs per line to
   * allocate (measured: 2 ms for a 444 KB body against 0.07 ms in 1 KB lines); a line's string also no longer
   * pins the body's. A line split across chunks is joined from its pieces first, as bytes: a UTF-8 sequence
   * never contains byte 0x0A, but a chunk may end inside one.
   */
  async lines<T extends Timed>(receiver: ReceiverName, body: Buffer | BodyChunks, parse: LineParser<T>, topic: Topic<T[]>, keyOf: (r: T) => string): Promise<IngestReply> {
    const tally = new Tally<T>(receiver, keyOf, this.now(), this.bounds);
    let lineNo = 0;
    /** The start of a line that continues in the next chunk, piece by piece (joined once, when it ends). */
    let pending: Buffer[] = [];
    for (const chunk of Buffer.isBuffer(body) ? [body] : body) {
      let start = 0;
      for (;;) {
        const end = chunk.indexOf(10 /* \n */, start);
        if (end < 0) {
          if (start < chunk.length) pending.push(chunk.subarray(start));
          break;
        }
        if (pending.length > 0) {
          pending.push(chunk.subarray(start, end));
          const joined = Buffer.concat(pending);
          pending = [];
          oneLine(tally, parse, ++lineNo, joined, 0, joined.length);
        } else {
          oneLine(tally, parse, ++lineNo, chunk, start, end);
        }
        start = end + 1;
      }
    }
    if (pending.length > 0) {
      const joined = Buffer.concat(pending);
      oneLine(tally, parse, ++lineNo, joined, 0, joined.length);
    }
    await this.commit(tally, topic);
    return tally.reply();
  }

  /**
   * Records given as a list of JSON values (a JSON-array body), decoded once with the body: an object goes to
   * `parseObject` as it is, and gets the answer its JSON text would get as an NDJSON line (issue 10: each element
   * used to be written back out and parsed again); a string element is a line. Anything else is written out and
   * handed to `parse` as a line, which refuses it as it always has.
   */
  async jsonArray<T extends Timed>(
    receiver: ReceiverName,
    items: unknown[],
    parse: LineParser<T>,
    parseObject: ObjectParser<T>,
    topic: Topic<T[]>,
    keyOf: (r: T) => string,
  ): Promise<IngestReply> {
    const tally = new Tally<T>(receiver, keyOf, this.now(), this.bounds);
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      if (isObject(item)) {
        const { format, result } = parseObject(item);
        if (result.ok) tally.accept(format, result.value, i + 1, item);
        else tally.reject(format, i + 1, result.reason, result.message, item);
        continue;
      }
      const line = typeof item === 'string' ? item : jsonForDeadLetter(item);
      const { format, result } = parse(line);
      if (result.ok) tally.accept(format, result.value, i + 1, line);
      else tally.reject(format, i + 1, result.reason, result.message, line);
    }
    await this.commit(tally, topic);
    return tally.reply();
  }

  /** A body decoded by a whole-body parser (OTLP, Zipkin): its records and per-record rejections. */
  async batch<T extends Timed>(receiver: ReceiverName, format: IngestFormat, batch: Batch<T>, topic: Topic<T[]>, keyOf: (r: T) => string): Promise<IngestReply> {
    const tally = new Tally<T>(receiver, keyOf, this.now(), this.bounds);
    // A whole-body format's records do not keep their place in the body: an out-of-bounds one is reported by
    // its place among the records parsed, and dead-lettered as the record meshlens made of it.
    for (let i = 0; i < batch.records.length; i++) tally.accept(format, batch.records[i] as T, i + 1, undefined);
    for (const r of batch.rejects) tally.reject(format, r.index, r.reason, r.message, r.raw);
    await this.commit(tally, topic);
    return tally.reply();
  }

  /** A body that could not be decoded at all (bad protobuf, not JSON): kept whole as one dead letter. */
  async rejectBody(receiver: ReceiverName, format: IngestFormat, reason: RejectReason, message: string, raw: Buffer): Promise<IngestReply> {
    const tally = new Tally<never>(receiver, () => '', this.now(), this.bounds);
    tally.reject(format, 0, reason, message, raw);
    await this.commit(tally, TOPICS.deadLetters as unknown as Topic<never[]>);
    return tally.reply();
  }

  /**
   * Dead letters first: if the records' publish is then refused, the caller retries the body and the only
   * duplicates are diagnostic dead letters, never counted records.
   */
  private async commit<T extends Timed>(tally: Tally<T>, topic: Topic<T[]>): Promise<void> {
    if (tally.rejected > 0) await this.bus.publish(TOPICS.deadLetters, [{ key: tally.receiver, value: tally.letters() }]);
    if (tally.byKey.size > 0) {
      const messages: BusMessage<T[]>[] = [];
      for (const [key, value] of tally.byKey) messages.push({ key, value });
      await this.bus.publish(topic, messages);
    }
    const receiver = tally.receiver;
    for (const [format, n] of tally.acceptedFormats()) this.metrics.records.inc({ receiver, format, outcome: 'accepted' }, n);
    for (const { format, reason, n } of tally.rejectedBy.values()) {
      this.metrics.records.inc({ receiver, format, outcome: 'rejected' }, n);
      this.metrics.rejected.inc({ receiver, format, reason }, n);
    }
  }
}

function iso(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString();
}

/** Line `lineNo` of a body, `bytes[start, end)` without its `\n`: a record, a rejection, or nothing when blank. */
function oneLine<T extends Timed>(tally: Tally<T>, parse: LineParser<T>, lineNo: number, bytes: Buffer, start: number, end: number): void {
  if (end > start && bytes[end - 1] === 13 /* \r */) end--;
  if (isBlank(bytes, start, end)) return;
  const text = bytes.toString('utf8', start, end);
  const { format, result } = parse(text);
  if (result.ok) tally.accept(format, result.value, lineNo, text);
  else tally.reject(format, lineNo, result.reason, result.message, text);
}

function isBlank(bytes: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = bytes[i];
    if (c !== 32 && c !== 9) return false;
  }
  return true;
}
