/**
 * Graph edges only traces saw (`GET /api/v1/graph`, edges `from: spans`), decided as records arrive, into
 * span_edges_1m (migration 008): a CLIENT span whose hop — request id and destination service — no access log
 * reported is a call the logs do not show (its sidecar's logs are not shipped, say). The query API used to decide
 * this per query, looking the span's hop up among the raw request rows; with MESHLENS_RAW_REQUESTS below 1 most
 * logged hops have no raw row, and over a long window the lookup read every raw request row. Here the decision needs
 * no raw row, and a long window reads minutes.
 *
 * Spans and access logs of a hop arrive in either order, on different topics. So a span counts at once, as if
 * only traced, and waits PAIRING_WINDOW_MS for a log of its hop: when one comes, the span's count is taken back
 * (the rows hold signed sums, like the joined view's). A span whose hop was logged before it came counts nothing:
 * the hops of every stored request record (kept as a raw row or not) are remembered for PAIRING_WINDOW_MS after
 * they arrive. A span without a request id cannot be matched and always counts. Both bounds (remembered hops,
 * waiting spans) drop the oldest first and count what they dropped.
 *
 * Hops are remembered as 53-bit hashes, not strings, at about 65 bytes each (measured with 200,000; the default
 * bound of 2 million hops, 10,000 requests per second for over three minutes, holds about 130 MB): two different hops
 * share a hash with probability 2^-53, so with the bound full a span-only call is taken for a logged one about once
 * in 4·10^9 spans.
 *
 * Both consumers (requests and spans) change this state, concurrently, so each plans, stores its rows and commits
 * under one lock (`exclusive`): a span batch planned before a request batch marked its hops is committed (its spans
 * waiting) before the request batch looks for waiting spans. Marking hops logged needs no lock and is done as soon
 * as a request batch is stored. As in lib/store/pairing.ts, a plan changes nothing until its rows are stored, so a
 * retried batch gets the same rows under the same token. Everything lives in this process: a graceful stop saves it
 * (`save`), a start loads it (`load`); after kill -9 a span whose hop is logged across the crash counts as
 * span-only. Spans are keyed on the bus by trace id and requests by destination service, so with several aggregator
 * replicas a span and the logs of its hop may be consumed by different replicas, and the span then counts as
 * span-only: this decision is exact with one aggregator (the all-in-one, or one distributed aggregator).
 */
import type { MeshRequest, Span } from '../model';
import { PAIRING_WINDOW_MS } from './pairing';
import { latencyBucket } from './queries';
import { loadState, saveState } from './state-file';
import { Waiters, type Waiter } from './waiters';

/** Default bound on remembered logged hops. */
export const DEFAULT_MAX_LOGGED_HOPS = 2_000_000;
/** Default bound on spans waiting for a log of their hop (about 280 bytes each, measured with 200,000). */
export const DEFAULT_MAX_WAITING_SPANS = 200_000;

const MINUTE_MS = 60_000;

/** A row of span_edges_1m: signed sums per minute, caller and destination. */
export interface SpanEdgeRollupRow {
  minute: number;
  /** The caller's tracing name (`service.name`, Zipkin `localEndpoint.serviceName`). */
  serviceName: string;
  destinationHost: string;
  destinationService: string;
  destinationNamespace: string;
  destinationSubset: string;
  requests: number;
  errors: number;
  /** Latency bucket (lib/store latencyBucket) → spans. */
  latencyBuckets: Map<number, number>;
}

/** What one span adds to its edge. */
interface SpanContribution {
  minute: number;
  serviceName: string;
  destinationHost: string;
  destinationService: string;
  destinationNamespace: string;
  destinationSubset: string;
  error: boolean;
  bucket: number;
}

interface WaitingSpan extends Waiter {
  hop: number;
  counted: SpanContribution;
}

/** Hops logged in one stretch of arrival time. */
interface LoggedBucket {
  /** Arrival time of the first and the last hop added. */
  since: number;
  last: number;
  hops: Set<number>;
}

export interface SpanEdgePlan {
  rows: SpanEdgeRollupRow[];
  /** Spans counted now that wait for a log of their hop. */
  added: WaitingSpan[];
  /** Waiting spans whose hop a log reported: their count is taken back. */
  takenBack: WaitingSpan[];
}

const noPlan = (): SpanEdgePlan => ({ rows: [], added: [], takenBack: [] });

/**
 * A 53-bit hash of a hop (request id, destination service), without building a key string: FNV-1a and a
 * multiply-xorshift lane with another seed over the same characters, the request id's length mixed in first so the
 * two strings cannot trade characters. 32 bits of the first lane and 21 of the second.
 */
export function hopOf(requestId: string, service: string): number {
  let a = 0x811c9dc5 ^ requestId.length;
  let b = 0x9747b28c ^ requestId.length;
  for (let i = 0; i < requestId.length; i++) {
    const c = requestId.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  for (let i = 0; i < service.length; i++) {
    const c = service.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  b ^= b >>> 13;
  b = Math.imul(b, 0x5bd1e995);
  b ^= b >>> 15;
  return (a >>> 0) * 0x200000 + (b >>> 11);
}

/** Whether a span is a call to a known destination: a CLIENT span whose upstream cluster named the service. */
export function isCall(s: Span): boolean {
  return s.kind === 'client' && s.destinationService !== '';
}

function contributionOf(s: Span): SpanContribution {
  return {
    minute: Math.floor(s.startTimeMs / MINUTE_MS) * 60,
    serviceName: s.serviceName,
    destinationHost: s.destinationHost,
    destinationService: s.destinationService,
    destinationNamespace: s.destinationNamespace,
    destinationSubset: s.destinationSubset,
    error: s.error,
    bucket: latencyBucket(s.durationMs),
  };
}

/** Sums span contributions (added, or taken back) into span_edges_1m rows. */
class SpanEdgeRollup {
  private readonly byKey = new Map<string, SpanEdgeRollupRow>();

  add(c: SpanContribution, sign: 1 | -1): void {
    // Spans are few beside access logs (traces are sampled), so a joined key is cheap enough here.
    const key = `${c.minute}\u0000${c.serviceName}\u0000${c.destinationHost}\u0000${c.destinationService}\u0000${c.destinationNamespace}\u0000${c.destinationSubset}`;
    let row = this.byKey.get(key);
    if (row === undefined) {
      row = {
        minute: c.minute,
        serviceName: c.serviceName,
        destinationHost: c.destinationHost,
        destinationService: c.destinationService,
        destinationNamespace: c.destinationNamespace,
        destinationSubset: c.destinationSubset,
        requests: 0,
        errors: 0,
        latencyBuckets: new Map(),
      };
      this.byKey.set(key, row);
    }
    row.requests += sign;
    if (c.error) row.errors += sign;
    const n = (row.latencyBuckets.get(c.bucket) ?? 0) + sign;
    if (n === 0) row.latencyBuckets.delete(c.bucket);
    else row.latencyBuckets.set(c.bucket, n);
  }

  rows(): SpanEdgeRollupRow[] {
    return [...this.byKey.values()].filter((r) => r.requests !== 0 || r.errors !== 0 || r.latencyBuckets.size > 0);
  }
}

export class SpanEdges {
  /** Logged hops, oldest stretch first; a stretch spans at most a minute and holds at most maxLogged / 8 hops. */
  private logged: LoggedBucket[] = [];
  private loggedCount = 0;
  private readonly waiting: Waiters<number, WaitingSpan>;
  private lock: Promise<unknown> = Promise.resolve();
  /** Logged hops forgotten because of the bound, not the window. */
  forgotten = 0;

  constructor(
    private readonly maxLogged = DEFAULT_MAX_LOGGED_HOPS,
    maxWaiting = DEFAULT_MAX_WAITING_SPANS,
  ) {
    this.waiting = new Waiters((w) => w.hop, PAIRING_WINDOW_MS, maxWaiting);
  }

  get waitingSpans(): number {
    return this.waiting.size;
  }

  /** Spans that gave up waiting because of the bound, not the window. */
  get evicted(): number {
    return this.waiting.evicted;
  }

  get loggedHops(): number {
    return this.loggedCount;
  }

  /**
   * Runs `fn` (plan, store the rows, commit) when no other batch is between its plan and its commit. Resolves or
   * rejects with `fn`; a rejection does not block the next caller.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  /**
   * Remembers the hops of stored request records as logged, at once (a span planned after this counts nothing for
   * them), and returns them for `planLogs`. Records without a request id have no hop.
   */
  markLogged(records: readonly MeshRequest[], now: number): number[] {
    this.forget(now);
    const hops: number[] = [];
    let bucket = this.logged[this.logged.length - 1];
    const cap = Math.max(1, Math.floor(this.maxLogged / 8));
    for (const r of records) {
      if (r.requestId === '') continue;
      const hop = hopOf(r.requestId, r.destinationService);
      hops.push(hop);
      if (bucket === undefined || now - bucket.since >= MINUTE_MS || bucket.hops.size >= cap) {
        bucket = { since: now, last: now, hops: new Set() };
        this.logged.push(bucket);
      }
      if (bucket.hops.has(hop)) continue;
      bucket.hops.add(hop);
      bucket.last = now;
      this.loggedCount++;
    }
    // The bound: whole stretches go, oldest first (never the one being filled).
    while (this.loggedCount > this.maxLogged && this.logged.length > 1) {
      const gone = this.logged.shift() as LoggedBucket;
      this.loggedCount -= gone.hops.size;
      this.forgotten += gone.hops.size;
    }
    return hops;
  }

  /** Whether a log of `hop` came within the window before `now` (stretches past it may not be forgotten yet). */
  private isLogged(hop: number, now: number): boolean {
    for (let i = this.logged.length - 1; i >= 0; i--) {
      const b = this.logged[i] as LoggedBucket;
      if (now - b.last >= PAIRING_WINDOW_MS) break;
      if (b.hops.has(hop)) return true;
    }
    return false;
  }

  /**
   * The take-back rows for spans waiting on `hops` (logged by a request batch at `now`). Spans whose wait ended by
   * `now` have given up, even if no commit has let them go yet. Changes nothing (plans are pure; `commit` applies).
   */
  planLogs(hops: readonly number[], now: number): SpanEdgePlan {
    if (this.waiting.size === 0 || hops.length === 0) return noPlan();
    const rollup = new SpanEdgeRollup();
    const takenBack: WaitingSpan[] = [];
    const seen = new Set<number>();
    for (const hop of hops) {
      const list = this.waiting.get(hop);
      if (list === undefined || seen.has(hop)) continue;
      seen.add(hop);
      for (const w of list) {
        if (now - w.since >= PAIRING_WINDOW_MS) continue;
        rollup.add(w.counted, -1);
        takenBack.push(w);
      }
    }
    return takenBack.length === 0 ? noPlan() : { rows: rollup.rows(), added: [], takenBack };
  }

  /** The rows of a span batch: calls whose hop no log reported yet count, and wait for one. Changes nothing. */
  planSpans(spans: readonly Span[], now: number): SpanEdgePlan {
    const rollup = new SpanEdgeRollup();
    const added: WaitingSpan[] = [];
    for (const s of spans) {
      if (!isCall(s)) continue;
      const counted = contributionOf(s);
      if (s.requestId === '') {
        rollup.add(counted, 1);
        continue;
      }
      const hop = hopOf(s.requestId, s.destinationService);
      if (this.isLogged(hop, now)) continue;
      rollup.add(counted, 1);
      added.push({ hop, counted, since: now, done: false });
    }
    return { rows: rollup.rows(), added, takenBack: [] };
  }

  /** Applies a plan whose rows are stored, then lets spans and logged hops past the window or the bound go. */
  commit(plan: SpanEdgePlan, now: number): void {
    this.forget(now);
    for (const w of plan.takenBack) this.waiting.remove(w);
    for (const w of plan.added) this.waiting.add(w);
    // Spans past the window or the bound give up waiting: they stay counted, as calls no log showed.
    this.waiting.expire(now);
  }

  /** Forgets logged hops past the window. */
  private forget(now: number): void {
    while (this.logged.length > 0 && now - (this.logged[0] as LoggedBucket).last >= PAIRING_WINDOW_MS) {
      const gone = this.logged.shift() as LoggedBucket;
      this.loggedCount -= gone.hops.size;
    }
  }

  /** Writes the remembered hops and the waiting spans to `file` (a graceful stop), atomically. */
  async save(file: string): Promise<void> {
    const state = {
      version: 1,
      logged: this.logged.map((b) => ({ since: b.since, last: b.last, hops: [...b.hops] })),
      waiting: this.waiting.pending(),
    };
    await saveState(file, state);
  }

  /** Loads what `save` wrote (a missing file: nothing); returns how many spans wait. */
  async load(file: string, now: number): Promise<number> {
    const saved = (await loadState(file)) as { version: number; logged: { since: number; last: number; hops: number[] }[]; waiting: WaitingSpan[] } | undefined;
    if (saved === undefined) return 0;
    if (saved.version !== 1 || !Array.isArray(saved.logged) || !Array.isArray(saved.waiting)) throw new Error(`${file}: not a span-edge state this version knows`);
    this.logged = saved.logged.map((b) => ({ since: b.since, last: b.last, hops: new Set(b.hops) }));
    this.loggedCount = this.logged.reduce((n, b) => n + b.hops.size, 0);
    this.forget(now);
    this.commit({ rows: [], added: saved.waiting.map((w) => ({ ...w, done: false })), takenBack: [] }, now);
    return this.waiting.size;
  }
}
