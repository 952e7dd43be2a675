/**
 * The sender against meshlens's real receivers (accepted/rejected counts from their replies, records on the
 * bus) and against a scripted server (429/503 with Retry-After, connection errors, other statuses, stopping).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { simulate } from './generator';
import { startReceivers, type Receivers } from './receivers.testutil';
import { createTelemetrySender, retryAfterMs } from './sender';

describe('sender → real receivers', () => {
  let receivers: Receivers;
  let httpBaseUrl: string;
  let zipkinBaseUrl: string;

  beforeAll(async () => {
    receivers = await startReceivers('demo-token');
    httpBaseUrl = receivers.httpBaseUrl;
    zipkinBaseUrl = receivers.zipkinBaseUrl + '/'; // a trailing slash is fine
  });
  afterAll(() => receivers.close());

  it('delivers every record of a simulation (Fluent Bit records and raw lines) and counts the replies', async () => {
    const enveloped = simulate({ seed: 1, startTimeMs: Date.UTC(2026, 2, 14, 9), requests: 400 });
    const raw = simulate({ seed: 2, startTimeMs: Date.UTC(2026, 2, 14, 9), requests: 200, shipper: 'none' });
    const sender = createTelemetrySender({ httpBaseUrl, zipkinBaseUrl, token: 'demo-token' });
    const a = await sender.send(enveloped);
    const b = await sender.send(raw);
    const lines = (s: typeof raw) => s.textLines.length + s.jsonLines.length;
    expect(a.accessLogs).toMatchObject({ accepted: lines(enveloped), rejected: 0, failed: 0, retries: 0 });
    expect(a.flows).toMatchObject({ accepted: enveloped.flowLines.length, rejected: 0, failed: 0 });
    expect(a.spans).toMatchObject({ accepted: enveloped.spans.length, rejected: 0, failed: 0 });
    // At most 500 records per request.
    expect(a.accessLogs.requests).toBe(Math.ceil(enveloped.textLines.length / 500) + Math.ceil(enveloped.jsonLines.length / 500));
    expect(a.spans.requests).toBe(Math.ceil(enveloped.spans.length / 500));
    expect(b.accessLogs).toMatchObject({ accepted: lines(raw), rejected: 0, failed: 0 });

    const totals = sender.totals();
    expect(totals.accessLogs.accepted).toBe(lines(enveloped) + lines(raw));
    expect(totals.spans.accepted).toBe(enveloped.spans.length + raw.spans.length);
    const want = { requests: totals.accessLogs.accepted, flows: totals.flows.accepted, spans: totals.spans.accepted };
    const seen = receivers.seen;
    await receivers.until(() => seen.requests >= want.requests && seen.flows >= want.flows && seen.spans >= want.spans);
    expect(seen).toEqual(want);
  });

  it('counts rejections with the receiver reasons, and a missing token as a failure', async () => {
    const sender = createTelemetrySender({ httpBaseUrl, zipkinBaseUrl, token: 'demo-token' });
    const r = await sender.send({ textLines: ['this is not an access log'], flowLines: ['{"flow": 1}'] });
    expect(r.accessLogs).toMatchObject({ accepted: 0, rejected: 1, failed: 0, errors: [{ line: 1, reason: 'unknown_layout' }] });
    expect(r.flows).toMatchObject({ accepted: 0, rejected: 1, failed: 0, errors: [{ line: 1, reason: 'malformed_json' }] });

    const anonymous = createTelemetrySender({ httpBaseUrl, zipkinBaseUrl });
    const denied = await anonymous.send({ textLines: ['x'] });
    expect(denied.accessLogs).toMatchObject({ accepted: 0, failed: 1 });
    expect(denied.accessLogs.lastFailure).toMatch(/^HTTP 401 /);
  });
});

/** A server answering from a script of `[status, headers, body]`, recording what it was sent. */
async function scripted(script: [number, Record<string, string>, string][]): Promise<{ url: string; bodies: { type: string; body: string }[]; close(): Promise<void> }> {
  const bodies: { type: string; body: string }[] = [];
  let i = 0;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      bodies.push({ type: String(req.headers['content-type']), body });
      const [status, headers, reply] = script[Math.min(i++, script.length - 1)]!;
      res.writeHead(status, headers).end(reply);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, bodies, close: () => new Promise((r) => server.close(() => r())) };
}

const OK = (accepted: number, rejected = 0): [number, Record<string, string>, string] => [
  200,
  { 'content-type': 'application/json' },
  JSON.stringify({ accepted, rejected, errors: [] }),
];

describe('sender retries and failures', () => {
  it('waits out 429 and 503 with Retry-After, then counts the reply', async () => {
    const s = await scripted([[429, { 'retry-after': '0' }, ''], [503, { 'retry-after': '0' }, ''], OK(2)]);
    const sender = createTelemetrySender({ httpBaseUrl: s.url, zipkinBaseUrl: s.url });
    const r = await sender.send({ textLines: ['a', 'b'] });
    expect(r.accessLogs).toMatchObject({ requests: 1, accepted: 2, retries: 2, failed: 0 });
    expect(s.bodies.map((b) => b.body)).toEqual(['a\nb\n', 'a\nb\n', 'a\nb\n']);
    expect(s.bodies[0]!.type).toBe('text/plain');
    await s.close();
  });

  it('sends JSON lines as NDJSON and spans as a JSON array', async () => {
    const s = await scripted([OK(1)]);
    const sender = createTelemetrySender({ httpBaseUrl: s.url, zipkinBaseUrl: s.url });
    await sender.send({ jsonLines: ['{"a":1}'], spans: ['{"id":"1"}', '{"id":"2"}'] });
    expect(s.bodies).toEqual([
      { type: 'application/x-ndjson', body: '{"a":1}\n' },
      { type: 'application/json', body: '[{"id":"1"},{"id":"2"}]' },
    ]);
    await s.close();
  });

  it('splits into requests of at most maxBatch records', async () => {
    const s = await scripted([OK(2)]);
    const sender = createTelemetrySender({ httpBaseUrl: s.url, zipkinBaseUrl: s.url, maxBatch: 2 });
    await sender.send({ flowLines: ['{"1":1}', '{"2":2}', '{"3":3}'] });
    expect(s.bodies.map((b) => b.body)).toEqual(['{"1":1}\n{"2":2}\n', '{"3":3}\n']);
    await s.close();
  });

  it('gives up after maxRetries and counts the records as failed', async () => {
    const s = await scripted([[503, { 'retry-after': '0' }, '']]);
    const sender = createTelemetrySender({ httpBaseUrl: s.url, zipkinBaseUrl: s.url, maxRetries: 3 });
    const r = await sender.send({ textLines: ['a', 'b', 'c'] });
    expect(r.accessLogs).toMatchObject({ accepted: 0, failed: 3, retries: 3 });
    expect(r.accessLogs.lastFailure).toMatch(/HTTP 503 .*gave up after 3 retries/);
    expect(s.bodies).toHaveLength(4);
    await s.close();
  });

  it('retries connection errors with a backoff', async () => {
    const s = await scripted([OK(1)]);
    await s.close(); // nothing listens there now
    const sender = createTelemetrySender({ httpBaseUrl: s.url, zipkinBaseUrl: s.url, maxRetries: 1 });
    const started = Date.now();
    const r = await sender.send({ textLines: ['a'] });
    expect(r.accessLogs).toMatchObject({ failed: 1, retries: 1 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
  });

  it('stops waiting for a retry when aborted', async () => {
    const s = await scripted([[429, { 'retry-after': '30' }, '']]);
    const abort = new AbortController();
    const sender = createTelemetrySender({ httpBaseUrl: s.url, zipkinBaseUrl: s.url, signal: abort.signal });
    const started = Date.now();
    const sending = sender.send({ textLines: ['a', 'b'] });
    setTimeout(() => abort.abort(), 100);
    const r = await sending;
    expect(Date.now() - started).toBeLessThan(5000);
    expect(r.accessLogs).toMatchObject({ failed: 2, retries: 1 });
    expect(r.accessLogs.lastFailure).toMatch(/stopped while waiting/);
    await s.close();
  });

  it('reads Retry-After as seconds or an HTTP date, capped at 30 s', () => {
    const now = Date.UTC(2026, 2, 14, 9, 0, 0);
    expect(retryAfterMs('2', 99, now)).toBe(2000);
    expect(retryAfterMs(null, 99, now)).toBe(99);
    expect(retryAfterMs('soon', 99, now)).toBe(99);
    expect(retryAfterMs(new Date(now + 5000).toUTCString(), 99, now)).toBe(5000);
    expect(retryAfterMs(new Date(now - 5000).toUTCString(), 99, now)).toBe(0);
    expect(retryAfterMs('3600', 99, now)).toBe(30_000);
  });
});
