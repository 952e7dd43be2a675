/**
 * The export queue's retry and bounds, and the sampler's decisions, without a network (the e2e test has one); the
 * Jaeger Thrift sender's one request per service against a local server.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { emptyMeshConfig } from '../../lib/meshconfig';
import { emptySpan, type Span } from '../../lib/model';
import { jaegerThriftSender } from './jaeger';
import { ExportQueue, parseRetryAfter, type SendResult } from './queue';
import { TailSampler, underRatio } from './sampler';

const span = (traceId: string, over: Partial<Span> = {}): Span => ({
  ...emptySpan(),
  traceId,
  spanId: '00000000000000aa',
  name: 'x',
  kind: 'client',
  durationMs: 1,
  serviceName: 's',
  responseCode: 200,
  ...over,
});

describe('ExportQueue', () => {
  const base = { batchSpans: 10, batchDelayMs: 5, initialBackoffMs: 20, maxBackoffMs: 1_000, maxElapsedMs: 2_000, random: () => 0.5 };

  it('waits the endpoint\'s Retry-After on 429, then exports', async () => {
    const at: number[] = [];
    const results: SendResult[] = [{ ok: false, retriable: true, retryAfterMs: 300, message: '429' }, { ok: true }];
    const exported: number[] = [];
    const q = new ExportQueue({ ...base, capacity: 100, send: async () => (at.push(Date.now()), results.shift() as SendResult), onExported: (n) => exported.push(n), onDropped: () => undefined });
    q.enqueue([span('a'), span('b')]);
    while (exported.length === 0) await new Promise((r) => setTimeout(r, 10));
    expect(at).toHaveLength(2);
    expect((at[1] as number) - (at[0] as number)).toBeGreaterThanOrEqual(290);
    expect(exported).toEqual([2]);
    await q.close(100);
  });

  it('drops a refused batch as rejected at once, and what exceeds its capacity as queue_full', async () => {
    const drops: Array<[string, number]> = [];
    let calls = 0;
    const q = new ExportQueue({ ...base, capacity: 5, send: async () => (calls++, { ok: false, retriable: false, message: '400' }), onExported: () => undefined, onDropped: (r, n) => drops.push([r, n]) });
    q.enqueue([1, 2, 3, 4, 5, 6, 7].map((i) => span(String(i))));
    while (!drops.some(([r]) => r === 'rejected')) await new Promise((r) => setTimeout(r, 10));
    expect(calls).toBe(1);
    expect(drops).toEqual([['queue_full', 2], ['rejected', 5]]);
    await q.close(100);
  });

  it('backs off exponentially with jitter on retriable failures until the budget runs out', async () => {
    const at: number[] = [];
    const drops: Array<[string, number]> = [];
    const q = new ExportQueue({ ...base, maxElapsedMs: 400, capacity: 100, send: async () => (at.push(Date.now()), { ok: false, retriable: true, message: '503' }), onExported: () => undefined, onDropped: (r, n) => drops.push([r, n]) });
    q.enqueue([span('a')]);
    while (drops.length === 0) await new Promise((r) => setTimeout(r, 10));
    // random() = 0.5 → 3/4 of each step: 15, 30, 60, 120 ms...; the next would pass 400 ms.
    const gaps = at.slice(1).map((t, i) => t - (at[i] as number));
    expect(gaps.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < gaps.length; i++) expect(gaps[i] as number).toBeGreaterThan((gaps[i - 1] as number) * 1.5);
    expect(drops).toEqual([['retries_exhausted', 1]]);
    await q.close(100);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('3')).toBe(3_000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6_000);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
  });
});

describe('TailSampler', () => {
  const ordinaryOut = '0000000000000000' + 'f'.repeat(16); // rightmost 56 bits near 1: never under a ratio < 1
  let now = 0;
  const make = (kept: Span[]) =>
    new TailSampler({ ratio: 0.5, meshConfig: emptyMeshConfig(), decisionWaitMs: 100, maxHeldSpans: 1_000, rememberTraces: 10, decayMs: 60_000, now: () => now, keep: (s) => kept.push(...s), discard: () => undefined });

  it('decides by the rightmost 56 bits of the trace id', () => {
    expect(underRatio('ffffffffffffffff' + '00000000000000' + '00', 0.5)).toBe(true);
    expect(underRatio('0'.repeat(18) + '80000000000000', 0.5)).toBe(false);
    expect(underRatio(ordinaryOut, 1)).toBe(true);
    expect(underRatio('0'.repeat(32), 0)).toBe(false);
  });

  it('holds a trace until its wait is over, keeps it whole for a late error, and follows the decision afterwards', () => {
    const kept: Span[] = [];
    const s = make(kept);
    now = 0;
    s.add([span(ordinaryOut, { spanId: '1' })]);
    now = 50;
    s.add([span(ordinaryOut, { spanId: '2', error: true })]);
    s.tick();
    expect(kept).toHaveLength(0);
    now = 100;
    s.tick();
    expect(kept.map((k) => k.spanId)).toEqual(['1', '2']);
    s.add([span(ordinaryOut, { spanId: '3' })]);
    expect(kept.map((k) => k.spanId)).toEqual(['1', '2', '3']);
  });

  it('takes the subset with the most spans as the baseline when the mesh config names none', () => {
    const kept: Span[] = [];
    const s = make(kept);
    const call = (id: string, subset: string) => span(id.padStart(16, '0') + 'f'.repeat(16), { destinationHost: 'reviews.default.svc.cluster.local', destinationSubset: subset });
    s.add([call('1', 'v1'), call('2', 'v1'), call('3', 'v1'), call('4', 'v2')]);
    now += 1_000;
    s.tick();
    expect(s.baseline('reviews.default.svc.cluster.local')).toBe('v1');
    expect(kept.map((k) => k.destinationSubset)).toEqual(['v2']);
  });
});

describe('jaegerThriftSender', () => {
  /** A collector answering each request with the next status (then 202), recording each status and body size. */
  async function collector(statuses: number[]) {
    const seen: Array<{ status: number; bytes: number }> = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const status = statuses.shift() ?? 202;
        seen.push({ status, bytes: Buffer.concat(chunks).length });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/traces`;
    return { url, seen, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
  }
  const batch = () => [span('a'.repeat(32), { serviceName: 'one' }), span('b'.repeat(32), { serviceName: 'two' }), span('c'.repeat(32), { serviceName: 'one' })];

  it('sends one Batch per service and, on a retry, only the services not yet accepted', async () => {
    const c = await collector([202, 503]);
    const send = jaegerThriftSender(c.url, 2_000);
    const spans = batch();
    const first = await send(spans, new AbortController().signal);
    expect(first).toMatchObject({ ok: false, retriable: true });
    expect(await send(spans, new AbortController().signal)).toEqual({ ok: true, rejected: 0 });
    // 'one' once (two spans), 'two' refused then accepted: three requests, never 'one' again.
    expect(c.seen.map((r) => r.status)).toEqual([202, 503, 202]);
    expect(c.seen[1]?.bytes).toBe(c.seen[2]?.bytes);
    await c.close();
  });

  it('counts a service refused for good as rejected, and a batch refused whole as a refusal', async () => {
    const c = await collector([400, 202, 400, 400]);
    const send = jaegerThriftSender(c.url, 2_000);
    expect(await send(batch(), new AbortController().signal)).toEqual({ ok: true, rejected: 2 });
    expect(await send(batch(), new AbortController().signal)).toMatchObject({ ok: false, retriable: false });
    await c.close();
  });
});
