/**
 * Sends simulated telemetry to meshlens's receivers over HTTP, the way a log shipper and Envoy's Zipkin tracer
 * would (CONTRACT.md §3): access-log lines to `POST /v1/accesslogs`, flows to `POST /v1/flows` (NDJSON), spans
 * to `POST /api/v2/spans` (a JSON array), at most `maxBatch` records per request.
 *
 * Nothing is lost without being counted: a 429/503 (the pipeline is full) or a connection error is retried
 * after `Retry-After` (or a backoff); what the JSON reply says was accepted or rejected is counted; what could
 * not be delivered (retries exhausted, another status, stopped while waiting) is counted as `failed`.
 */

export interface TelemetrySenderOptions {
  /** meshlens HTTP base URL (access logs, flows), e.g. `http://127.0.0.1:8080`. */
  httpBaseUrl: string;
  /** Zipkin receiver base URL, e.g. `http://127.0.0.1:9411`. */
  zipkinBaseUrl: string;
  /** `MESHLENS_INGEST_TOKEN`, when the receivers require one. */
  token?: string;
  /** Most records per request; the benchmarks use 500 (CONTRACT.md §8). Default 500. */
  maxBatch?: number;
  /** Retries of one request on 429/503/connection errors before its records count as failed. Default 10. */
  maxRetries?: number;
  /** Aborting stops waiting for a retry: the request's records count as failed. */
  signal?: AbortSignal;
  /** Injected for tests; the global `fetch` of Node 20 otherwise. */
  fetch?: typeof fetch;
}

/** One error as the receivers report it in `errors` (CONTRACT.md §3). */
export interface ReceiverError {
  line: number;
  reason: string;
  message: string;
}

export interface DeliveryCounts {
  /** HTTP requests that got a final answer (not counting retried attempts). */
  requests: number;
  /** Records the receiver accepted. */
  accepted: number;
  /** Records the receiver rejected (with a reason: see `errors`). */
  rejected: number;
  /** Attempts answered 429/503 or failed to connect, and retried. */
  retries: number;
  /** Records never delivered: retries exhausted, a status other than 2xx/400, or stopped. */
  failed: number;
  /** The first errors the receivers reported (at most 20). */
  errors: ReceiverError[];
  /** The last delivery failure, e.g. `HTTP 401 ...`; '' when none. */
  lastFailure: string;
}

export interface DeliveryReport {
  accessLogs: DeliveryCounts;
  flows: DeliveryCounts;
  spans: DeliveryCounts;
}

/** What to send; each field optional. The simulator's `TelemetryBatch` fits. */
export interface TelemetryToSend {
  textLines?: readonly string[];
  jsonLines?: readonly string[];
  /** Zipkin v2 span objects, one JSON text each. */
  spans?: readonly string[];
  flowLines?: readonly string[];
}

export interface TelemetrySender {
  /** Send everything in `batch`; resolves with what happened to it (never rejects on HTTP outcomes). */
  send(batch: TelemetryToSend): Promise<DeliveryReport>;
  /** Everything since the sender was created. */
  totals(): DeliveryReport;
}

const DEFAULT_MAX_BATCH = 500;
const DEFAULT_MAX_RETRIES = 10;
const MAX_KEPT_ERRORS = 20;
/** Backoff for connection errors (no Retry-After to honour): 250 ms doubling to 4 s. */
const BACKOFF_START_MS = 250;
const BACKOFF_MAX_MS = 4000;
/** A Retry-After beyond this is capped: the demo should keep moving and count failures rather than stall. */
const RETRY_AFTER_MAX_MS = 30_000;

function emptyCounts(): DeliveryCounts {
  return { requests: 0, accepted: 0, rejected: 0, retries: 0, failed: 0, errors: [], lastFailure: '' };
}

function emptyReport(): DeliveryReport {
  return { accessLogs: emptyCounts(), flows: emptyCounts(), spans: emptyCounts() };
}

function addInto(into: DeliveryCounts, from: DeliveryCounts): void {
  into.requests += from.requests;
  into.accepted += from.accepted;
  into.rejected += from.rejected;
  into.retries += from.retries;
  into.failed += from.failed;
  for (const e of from.errors) if (into.errors.length < MAX_KEPT_ERRORS) into.errors.push(e);
  if (from.lastFailure) into.lastFailure = from.lastFailure;
}

/**
 * `Retry-After` in seconds or as an HTTP date (RFC 9110 §10.2.3), in ms; `fallback` when absent or unreadable.
 */
export function retryAfterMs(header: string | null, fallback: number, nowMs = Date.now()): number {
  if (header === null || header.trim() === '') return fallback;
  const v = header.trim();
  const ms = /^\d+$/.test(v) ? Number(v) * 1000 : Date.parse(v) - nowMs;
  if (!Number.isFinite(ms)) return fallback;
  return Math.min(Math.max(ms, 0), RETRY_AFTER_MAX_MS);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The counts of a receiver's JSON reply, when it is one. Zipkin servers other than meshlens answer 202 with no body. */
function replyCounts(text: string): { accepted: number; rejected: number; errors: ReceiverError[] } | undefined {
  if (text.trim() === '') return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.accepted !== 'number' || typeof o.rejected !== 'number') return undefined;
  const errors = Array.isArray(o.errors)
    ? o.errors
        .filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null)
        .map((e) => ({ line: Number(e.line) || 0, reason: String(e.reason ?? ''), message: String(e.message ?? '') }))
    : [];
  return { accepted: o.accepted, rejected: o.rejected, errors };
}

export function createTelemetrySender(options: TelemetrySenderOptions): TelemetrySender {
  const maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH;
  if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new RangeError(`maxBatch must be a positive integer, got ${maxBatch}`);
  const maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES;
  const doFetch = options.fetch ?? fetch;
  const http = options.httpBaseUrl.replace(/\/+$/, '');
  const zipkin = options.zipkinBaseUrl.replace(/\/+$/, '');
  const totals = emptyReport();

  /** POST one body; `records` is how many records it holds (counted as failed if it cannot be delivered). */
  async function post(url: string, body: string, contentType: string, records: number, counts: DeliveryCounts): Promise<void> {
    const headers: Record<string, string> = { 'content-type': contentType };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    let backoff = BACKOFF_START_MS;
    for (let attempt = 0; ; attempt++) {
      let waitMs: number;
      let why: string;
      try {
        const res = await doFetch(url, { method: 'POST', body, headers });
        const text = await res.text();
        if (res.status !== 429 && res.status !== 503) {
          counts.requests++;
          const reply = replyCounts(text);
          if (res.ok || (res.status === 400 && reply)) {
            // 400 = every record rejected (CONTRACT.md §3): the reply still says which and why.
            counts.accepted += reply ? reply.accepted : records;
            counts.rejected += reply ? reply.rejected : 0;
            for (const e of reply?.errors ?? []) if (counts.errors.length < MAX_KEPT_ERRORS) counts.errors.push(e);
          } else {
            counts.failed += records;
            counts.lastFailure = `HTTP ${res.status} from ${url}: ${text.slice(0, 200)}`;
          }
          return;
        }
        waitMs = retryAfterMs(res.headers.get('retry-after'), backoff);
        why = `HTTP ${res.status} from ${url}`;
      } catch (err) {
        // Connection refused or reset: meshlens is starting, restarting or gone.
        waitMs = backoff;
        why = `${url}: ${(err as Error).message}`;
      }
      if (attempt >= maxRetries) {
        counts.requests++;
        counts.failed += records;
        counts.lastFailure = `${why} (gave up after ${maxRetries} retries)`;
        return;
      }
      counts.retries++;
      backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
      if (!(await sleep(waitMs, options.signal))) {
        counts.failed += records;
        counts.lastFailure = `${why} (stopped while waiting to retry)`;
        return;
      }
    }
  }

  async function postLines(url: string, lines: readonly string[] | undefined, counts: DeliveryCounts): Promise<void> {
    if (!lines) return;
    for (let i = 0; i < lines.length; i += maxBatch) {
      const chunk = lines.slice(i, i + maxBatch);
      // NDJSON when every line is a JSON object (Istio JSON, Fluent Bit records, flows), else text lines.
      const ndjson = chunk.every((l) => l.charCodeAt(0) === 123 /* { */);
      await post(url, chunk.join('\n') + '\n', ndjson ? 'application/x-ndjson' : 'text/plain', chunk.length, counts);
    }
  }

  return {
    async send(batch) {
      const report = emptyReport();
      await postLines(`${http}/v1/accesslogs`, batch.textLines, report.accessLogs);
      await postLines(`${http}/v1/accesslogs`, batch.jsonLines, report.accessLogs);
      await postLines(`${http}/v1/flows`, batch.flowLines, report.flows);
      const spans = batch.spans ?? [];
      for (let i = 0; i < spans.length; i += maxBatch) {
        const chunk = spans.slice(i, i + maxBatch);
        await post(`${zipkin}/api/v2/spans`, `[${chunk.join(',')}]`, 'application/json', chunk.length, report.spans);
      }
      addInto(totals.accessLogs, report.accessLogs);
      addInto(totals.flows, report.flows);
      addInto(totals.spans, report.spans);
      return report;
    },
    totals() {
      const copy = emptyReport();
      addInto(copy.accessLogs, totals.accessLogs);
      addInto(copy.flows, totals.flows);
      addInto(copy.spans, totals.spans);
      return copy;
    },
  };
}
