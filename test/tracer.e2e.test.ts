/**
 * The tracer end to end (issue 11, item 4): the real all-in-one (`start()`, as `npm start` runs it) takes spans in
 * through Zipkin and OTLP/HTTP and exports them to a receiver this test starts; the receiver decodes each request
 * with the vendored OTLP protos (lib/otlp) and the test compares what came out with what went in. A seeded run of
 * the simulator checks the tail sampling, and a down endpoint checks that export failures are retried, then
 * dropped and counted, while ingest stays fast and storage still gets every span. With
 * `MESHLENS_JAEGER_PROTOCOL=thrift` the same spans go to a Jaeger Thrift HTTP receiver this test starts, which
 * decodes each body with the vendored jaeger.thrift (test/support/jaeger-idl) and thriftrw, an independent Thrift
 * implementation, and a 503 answer is retried through the Thrift sender.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import pino from 'pino';
import { Thrift } from 'thriftrw';
import { start, type Running } from '../bin/start';
import { loadOtlpRoot } from '../lib/otlp';
import { loadConfig } from '../lib/runtime';
import { loadMeshConfig, stableSubset } from '../lib/meshconfig';
import { SAMPLER_DEFAULTS, underRatio } from '../services/tracer';
import { createTrafficGenerator } from '../simulator';
import { sdkTracesProtobuf } from './support/otel-sdk';
import { EPHEMERAL_PORTS } from './support/meshlens';

const logger = pino({ level: 'silent' });
const BOOKINFO = join(__dirname, '..', 'examples', 'bookinfo');
const TRACE_REQUEST = loadOtlpRoot().lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');

/** A span as an OTLP receiver sees it, flattened with its resource's service name. */
interface ExportedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: Record<string, string>;
  status: number;
}

interface Receiver {
  url: string;
  spans: ExportedSpan[];
  requests: number;
  /** Answer to give: 200, or a failure status. */
  status: number;
  /** While set, requests are read but left unanswered until `release()`: an endpoint that hangs. */
  hold: boolean;
  /** Requests answered so far. */
  answered: number;
  /** Answers every held request (with the status at that moment) and stops holding. */
  release(): void;
  close(): Promise<void>;
}

const hex = (b: Uint8Array | undefined): string => Buffer.from(b ?? []).toString('hex');

/** An OTLP/HTTP trace receiver: decodes every `POST /v1/traces` body with the real protos. */
async function otlpReceiver(): Promise<Receiver> {
  const held: Array<() => void> = [];
  const r: Receiver = {
    url: '',
    spans: [],
    requests: 0,
    status: 200,
    hold: false,
    answered: 0,
    release: () => {
      r.hold = false;
      for (const answer of held.splice(0)) answer();
    },
    close: async () => undefined,
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      r.requests++;
      if (r.hold) held.push(() => answer(req, res, chunks));
      else answer(req, res, chunks);
    });
  });
  const answer = (req: IncomingMessage, res: ServerResponse, chunks: Buffer[]): void => {
    r.answered++;
    if (req.url !== '/v1/traces' || req.headers['content-type'] !== 'application/x-protobuf') {
      res.writeHead(404).end();
      return;
    }
    if (r.status !== 200) {
      res.writeHead(r.status, { 'retry-after': '0' }).end();
      return;
    }
    const msg = TRACE_REQUEST.toObject(TRACE_REQUEST.decode(Buffer.concat(chunks)), { longs: String, enums: Number, defaults: true }) as {
      resourceSpans: Array<{
        resource: { attributes: Array<{ key: string; value: { stringValue: string } }> };
        scopeSpans: Array<{ spans: Array<Record<string, unknown>> }>;
      }>;
    };
    for (const rs of msg.resourceSpans) {
      const service = rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
      for (const ss of rs.scopeSpans) {
        for (const s of ss.spans) {
          r.spans.push({
            service,
            traceId: hex(s.traceId as Uint8Array),
            spanId: hex(s.spanId as Uint8Array),
            parentSpanId: hex(s.parentSpanId as Uint8Array),
            name: s.name as string,
            kind: s.kind as number,
            startTimeUnixNano: s.startTimeUnixNano as string,
            endTimeUnixNano: s.endTimeUnixNano as string,
            attributes: Object.fromEntries((s.attributes as Array<{ key: string; value: { stringValue: string } }>).map((a) => [a.key, a.value.stringValue])),
            status: (s.status as { code: number } | undefined)?.code ?? 0,
          });
        }
      }
    }
    res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  r.close = () => {
    r.release();
    return new Promise((resolve) => server.close(() => resolve()));
  };
  return r;
}

/** A span as a Jaeger collector sees it: decoded with jaeger.thrift, ids and i64s as hex / decimal strings. */
interface JaegerSpan {
  service: string;
  traceIdHigh: string;
  traceIdLow: string;
  spanId: string;
  parentSpanId: string;
  operationName: string;
  references: Array<{ refType: string; traceIdLow: string; traceIdHigh: string; spanId: string }> | null;
  flags: number;
  startTime: string;
  duration: string;
  /** Tag key → its value (`vStr`, or `vBool` for BOOL tags). */
  tags: Record<string, string | boolean>;
  tagCount: number;
  logs: unknown;
}

interface ThriftReceiver {
  url: string;
  spans: JaegerSpan[];
  requests: number;
  /** Statuses to answer the next requests with, before 202s. */
  failures: number[];
  close(): Promise<void>;
}

const JAEGER = new Thrift({ source: readFileSync(join(__dirname, 'support', 'jaeger-idl', 'jaeger.thrift'), 'ascii'), allowOptionalArguments: true });
const i64 = (b: Buffer): string => b.readBigInt64BE().toString();

/** A Jaeger collector's Thrift HTTP endpoint: decodes every `POST /api/traces` body as a jaeger.thrift Batch. */
async function thriftReceiver(): Promise<ThriftReceiver> {
  const r: ThriftReceiver = { url: '', spans: [], requests: 0, failures: [], close: async () => undefined };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      r.requests++;
      if (req.url !== '/api/traces' || req.headers['content-type'] !== 'application/x-thrift') {
        res.writeHead(404).end();
        return;
      }
      const failure = r.failures.shift();
      if (failure !== undefined) {
        res.writeHead(failure, { 'retry-after': '0' }).end();
        return;
      }
      const body = Buffer.concat(chunks);
      const read = JAEGER.getType('Batch').rw.readFrom(body, 0);
      if (read.err !== null || read.offset !== body.length) {
        res.writeHead(400).end(String(read.err ?? `trailing bytes after ${read.offset}`));
        return;
      }
      type Tag = { key: string; vType: string; vStr: string | null; vBool: boolean | null };
      type RawSpan = Record<string, Buffer> & { operationName: string; flags: number; tags: Tag[] | null; logs: unknown; references: Array<Record<string, Buffer> & { refType: string }> | null };
      const batch = read.value as { process: { serviceName: string }; spans: RawSpan[] };
      for (const s of batch.spans) {
        r.spans.push({
          service: batch.process.serviceName,
          traceIdHigh: hex(s.traceIdHigh),
          traceIdLow: hex(s.traceIdLow),
          spanId: hex(s.spanId),
          parentSpanId: hex(s.parentSpanId),
          operationName: s.operationName,
          references: s.references?.map((x) => ({ refType: x.refType, traceIdLow: hex(x.traceIdLow), traceIdHigh: hex(x.traceIdHigh), spanId: hex(x.spanId) })) ?? null,
          flags: s.flags,
          startTime: i64(s.startTime as Buffer),
          duration: i64(s.duration as Buffer),
          tags: Object.fromEntries((s.tags ?? []).map((t) => [t.key, t.vType === 'BOOL' ? (t.vBool as boolean) : (t.vStr as string)])),
          tagCount: s.tags?.length ?? 0,
          logs: s.logs,
        });
      }
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/traces`;
  r.close = () => new Promise((resolve) => server.close(() => resolve()));
  return r;
}

async function until(pred: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The value of one sample on /metrics (0 when absent). */
async function metric(running: Running, sample: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${running.ports.http}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? 0 : Number(line.slice(sample.length + 1));
}

async function storedSpans(running: Running): Promise<number> {
  const rs = await running.aggregator!.conn.client.query({ query: 'SELECT count() AS n FROM meshlens.spans', format: 'JSONEachRow' });
  return Number(((await rs.json()) as Array<{ n: string }>)[0]?.n ?? 0);
}

/** Short timings so the test does not wait for production batching and backoff. */
const FAST = { decisionWaitMs: 300, tickMs: 50, batchDelayMs: 50, initialBackoffMs: 50, maxBackoffMs: 200, maxElapsedMs: 800, requestTimeoutMs: 2_000 };

async function startWith(env: Record<string, string>, tuning: Record<string, number> = FAST): Promise<{ running: Running; dataDir: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'meshlens-tracer-'));
  const config = loadConfig({ ...EPHEMERAL_PORTS, MESHLENS_DATA_DIR: dataDir, MESHLENS_MESH_CONFIG: BOOKINFO, ...env });
  const running = await start({ config, target: 'all', logger, processMetrics: false, tracerTuning: tuning });
  return { running, dataDir };
}

async function postZipkin(running: Running, spans: unknown[], signal?: AbortSignal): Promise<Response> {
  return fetch(`http://127.0.0.1:${running.ports.zipkin}/api/v2/spans`, {
    method: 'POST',
    body: JSON.stringify(spans),
    headers: { 'content-type': 'application/json' },
    signal,
  });
}

/**
 * The two spans both exporters are held to, posted to the all-in-one: Envoy's Zipkin span of a client call to
 * reviews v2 (tags as Envoy writes them), and an OTLP client span to ratings v1 that failed (UF, status ERROR).
 */
async function postTwoSpans(running: Running) {
  const now = Date.now();
  const zipkin = {
    traceId: '5af7183fb1d4cf5f',
    id: '352bff9a74ca9ad2',
    parentId: '6b221d5bc9e6496c',
    name: 'reviews.default.svc.cluster.local:9080/*',
    kind: 'CLIENT',
    timestamp: now * 1000 - 5_123,
    duration: 4_321,
    localEndpoint: { serviceName: 'productpage.default' },
    tags: {
      'http.status_code': '200',
      upstream_cluster: 'outbound|9080|v2|reviews.default.svc.cluster.local',
      'guid:x-request-id': '7c1e9b52-3f0a-4d6e-8b21-5a9d0c4e7f13',
      response_flags: '-',
    },
  };
  expect((await postZipkin(running, [zipkin])).status).toBe(202);
  const startNs = BigInt(now - 3) * 1_000_000n + 456_000n;
  const otlpTags = { 'http.status_code': '503', upstream_cluster: 'outbound|9080|v1|ratings.default.svc.cluster.local', response_flags: 'UF' };
  const res = await fetch(`http://127.0.0.1:${running.ports.otlpHttp}/v1/traces`, {
    method: 'POST',
    body: sdkTracesProtobuf([
      {
        attributes: { 'service.name': 'reviews.default' },
        spans: [
          {
            traceId: '0af7651916cd43dd8448eb211c80319c',
            spanId: 'b7ad6b7169203331',
            name: 'ratings.default.svc.cluster.local:9080/*',
            kind: SpanKind.CLIENT,
            startTimeUnixNano: startNs.toString(),
            endTimeUnixNano: (startNs + 2_500_000n).toString(),
            attributes: otlpTags,
            status: SpanStatusCode.ERROR,
          },
        ],
      },
    ]),
    headers: { 'content-type': 'application/x-protobuf' },
  });
  expect(res.status).toBe(200);
  return { zipkin, otlpTags, startNs };
}

describe('tracer: spans from Zipkin and OTLP out as OTLP/HTTP protobuf', () => {
  let receiver: Receiver;
  let running: Running;
  let dataDir: string;

  beforeAll(async () => {
    receiver = await otlpReceiver();
    ({ running, dataDir } = await startWith({ MESHLENS_JAEGER_ENDPOINT: receiver.url, MESHLENS_TRACE_SAMPLE_RATIO: '1' }));
  }, 60_000);
  afterAll(async () => {
    await running?.close();
    await receiver?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('exports every field of a Zipkin span and of an OTLP span, as they came in', async () => {
    const { zipkin, otlpTags, startNs } = await postTwoSpans(running);

    await until(() => receiver.spans.length >= 2, "two exported spans");
    const byId = new Map(receiver.spans.map((s) => [s.spanId, s]));
    expect(byId.get('352bff9a74ca9ad2')).toEqual({
      service: 'productpage.default',
      traceId: '00000000000000005af7183fb1d4cf5f',
      spanId: '352bff9a74ca9ad2',
      parentSpanId: '6b221d5bc9e6496c',
      name: zipkin.name,
      kind: 3,
      startTimeUnixNano: (BigInt(zipkin.timestamp) * 1000n).toString(),
      endTimeUnixNano: (BigInt(zipkin.timestamp + zipkin.duration) * 1000n).toString(),
      attributes: zipkin.tags,
      status: 0,
    });
    expect(byId.get('b7ad6b7169203331')).toEqual({
      service: 'reviews.default',
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: 'b7ad6b7169203331',
      parentSpanId: '',
      name: 'ratings.default.svc.cluster.local:9080/*',
      kind: 3,
      startTimeUnixNano: startNs.toString(),
      endTimeUnixNano: (startNs + 2_500_000n).toString(),
      attributes: otlpTags,
      status: 2,
    });
    expect(await metric(running, 'meshlens_tracer_exported_spans_total')).toBe(2);
  });
});

describe('tracer: canary-aware tail sampling of a seeded simulator run', () => {
  const RATIO = 0.25;
  let receiver: Receiver;
  let running: Running;
  let dataDir: string;

  beforeAll(async () => {
    receiver = await otlpReceiver();
    // The production decision wait: every span of a trace is posted within it (asserted below), so each trace is
    // decided whole. Spans that come after their trace's decision follow it (services/tracer/sampler.ts).
    ({ running, dataDir } = await startWith(
      { MESHLENS_JAEGER_ENDPOINT: receiver.url, MESHLENS_TRACE_SAMPLE_RATIO: String(RATIO) },
      { ...FAST, decisionWaitMs: SAMPLER_DEFAULTS.decisionWaitMs },
    ));
  }, 60_000);
  afterAll(async () => {
    await running?.close();
    await receiver?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('keeps every trace with a canary subset, an error or a denial, and samples the rest at the ratio', async () => {
    const now = Date.now();
    const sim = createTrafficGenerator({ seed: 7, startTimeMs: now - 60_000, rps: 40 }).until(now);
    const spans = sim.spans.map((s) => JSON.parse(s) as { traceId: string; id: string; tags?: Record<string, string> });
    const t0 = Date.now();
    for (let i = 0; i < spans.length; i += 500) expect((await postZipkin(running, spans.slice(i, i + 500))).status).toBe(202);
    expect(Date.now() - t0).toBeLessThan(SAMPLER_DEFAULTS.decisionWaitMs);

    // What the test expects, from the spans as sent: the stable subset of reviews is v1 (examples/bookinfo).
    const { config: mesh } = await loadMeshConfig(BOOKINFO);
    const special = new Set<string>();
    const all = new Set<string>();
    let canaryTraces = 0;
    let errorTraces = 0;
    const canaryOrError = new Set<string>();
    for (const s of spans) {
      const id = s.traceId.padStart(32, '0');
      all.add(id);
      const tags = s.tags ?? {};
      const code = Number(tags['http.status_code'] ?? 0);
      const cluster = /^outbound\|\d+\|([^|]+)\|(.+)$/.exec((tags['upstream_cluster'] ?? '').replace(/;$/, ''));
      const canary = cluster !== null && cluster[1] !== (stableSubset(mesh, cluster[2] as string) ?? cluster[1]);
      const error = (tags['error'] !== undefined && tags['error'] !== 'false') || code >= 500;
      if (canary || error || code === 403) special.add(id);
      if (canary || error) canaryOrError.add(id);
    }
    for (const id of canaryOrError) {
      const s = spans.filter((x) => x.traceId.padStart(32, '0') === id);
      if (s.some((x) => /\|v[23]\|reviews/.test(x.tags?.['upstream_cluster'] ?? ''))) canaryTraces++;
      else errorTraces++;
    }
    // The run has what it must test: canary traces, error traces, and ordinary ones to sample.
    expect(canaryTraces).toBeGreaterThan(50);
    expect(errorTraces).toBeGreaterThan(0);
    const ordinary = [...all].filter((id) => !special.has(id));
    expect(ordinary.length).toBeGreaterThan(400);

    const expectedSpans = spans.filter((s) => {
      const id = s.traceId.padStart(32, '0');
      return special.has(id) || underRatio(id, RATIO);
    }).length;
    await until(() => receiver.spans.length >= expectedSpans, `${expectedSpans} exported spans`, 30_000).catch(async (e) => {
      throw new Error(`${e} got ${receiver.spans.length} ${await (await fetch(`http://127.0.0.1:${running.ports.http}/metrics`)).text().then((t) => t.split('\n').filter((l) => l.startsWith('meshlens_tracer')).join(' | '))}`);
    });
    await new Promise((r) => setTimeout(r, 500));

    const exported = new Set(receiver.spans.map((s) => s.traceId));
    // Every canary, error and denied trace, whole.
    for (const id of special) expect({ id, exported: exported.has(id) }).toEqual({ id, exported: true });
    const spansOf = (id: string, list: { traceId: string }[]) => list.filter((s) => s.traceId.padStart(32, '0') === id).length;
    for (const id of special) expect({ id, spans: spansOf(id, receiver.spans) }).toEqual({ id, spans: spansOf(id, spans) });
    // The ordinary traces at the ratio: binomial, so within 4 standard deviations (a false alarm about 1 in 16,000;
    // the run is seeded, so it is either always in or always out).
    const kept = ordinary.filter((id) => exported.has(id)).length;
    const sd = Math.sqrt(ordinary.length * RATIO * (1 - RATIO));
    expect(Math.abs(kept - ordinary.length * RATIO)).toBeLessThanOrEqual(4 * sd);
    // Decided by trace id: exactly the ordinary traces under the ratio, none other.
    expect(ordinary.filter((id) => exported.has(id)).sort()).toEqual(ordinary.filter((id) => underRatio(id, RATIO)).sort());
    expect(receiver.spans.length).toBe(expectedSpans);
    expect(await metric(running, 'meshlens_tracer_sampled_out_spans_total')).toBe(spans.length - expectedSpans);
    // Storage is independent of sampling: every span is stored.
    expect(await storedSpans(running)).toBe(spans.length);
  }, 90_000);
});

describe('tracer: a down endpoint', () => {
  const HANG_MS = 60_000;
  let receiver: Receiver;
  let running: Running;
  let dataDir: string;

  beforeAll(async () => {
    receiver = await otlpReceiver();
    receiver.status = 503;
    // A small queue so the test also fills it.
    ({ running, dataDir } = await startWith(
      { MESHLENS_JAEGER_ENDPOINT: receiver.url, MESHLENS_TRACE_SAMPLE_RATIO: '1' },
      { ...FAST, decisionWaitMs: 50, capacity: 300, batchSpans: 100, requestTimeoutMs: HANG_MS },
    ));
  }, 60_000);
  afterAll(async () => {
    await running?.close();
    await receiver?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('is retried, then its spans are counted as dropped, while ingest acknowledges without waiting on it and storage gets every span', async () => {
    const now = Date.now();
    const sim = createTrafficGenerator({ seed: 3, startTimeMs: now - 20_000, rps: 40 }).until(now);
    const spans = sim.spans.map((s) => JSON.parse(s) as unknown);
    expect(spans.length).toBeGreaterThan(1000);
    // The endpoint first hangs (for the whole HANG_MS export timeout): once an export is in flight and unanswered,
    // every post must still be acknowledged. An answer that waited on the export would take HANG_MS; the posts give
    // up at a quarter of it, which tells the two apart without timing the ingest.
    receiver.hold = true;
    const post = (from: number) => postZipkin(running, spans.slice(from, from + 100), AbortSignal.timeout(HANG_MS / 4));
    expect((await post(0)).status).toBe(202);
    await until(() => receiver.requests > 0, 'an export in flight');
    for (let i = 100; i < spans.length; i += 100) expect((await post(i)).status).toBe(202);
    // Acknowledged = stored, and no answer waited on the export: the endpoint has not answered once.
    expect(receiver.answered).toBe(0);
    expect(await storedSpans(running)).toBe(spans.length);
    receiver.release();

    // The held export is answered 503 after its time budget is spent, so its batch is given up at once; the next
    // batch is tried anew against the (now answering, still failing) endpoint.
    await until(async () => (await metric(running, 'meshlens_tracer_dropped_spans_total{reason="retries_exhausted"}')) >= 200, 'two batches given up');
    // Retried: more requests than batches given up.
    const exhausted = await metric(running, 'meshlens_tracer_dropped_spans_total{reason="retries_exhausted"}');
    expect(receiver.requests).toBeGreaterThan(exhausted / 100);
    expect(receiver.requests).toBeGreaterThanOrEqual(3);
    // The queue is bounded: what did not fit was dropped and counted.
    const full = await metric(running, 'meshlens_tracer_dropped_spans_total{reason="queue_full"}');
    expect(full).toBeGreaterThan(0);

    // The endpoint comes back: export resumes, and every span is accounted for (exported, dropped or still queued).
    receiver.status = 200;
    await until(async () => (await metric(running, 'meshlens_tracer_queue_spans')) === 0, 'the queue to empty', 20_000);
    const exported = await metric(running, 'meshlens_tracer_exported_spans_total');
    const dropped = full + (await metric(running, 'meshlens_tracer_dropped_spans_total{reason="retries_exhausted"}'));
    expect(exported + dropped).toBe(spans.length);
    expect(receiver.spans.length).toBe(exported);
  }, 90_000);
});

describe('tracer: spans from Zipkin and OTLP out as Jaeger Thrift (MESHLENS_JAEGER_PROTOCOL=thrift)', () => {
  let receiver: ThriftReceiver;
  let running: Running;
  let dataDir: string;

  beforeAll(async () => {
    receiver = await thriftReceiver();
    ({ running, dataDir } = await startWith({ MESHLENS_JAEGER_ENDPOINT: receiver.url, MESHLENS_JAEGER_PROTOCOL: 'thrift', MESHLENS_TRACE_SAMPLE_RATIO: '1' }));
  }, 60_000);
  afterAll(async () => {
    await running?.close();
    await receiver?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('posts one Batch per service, each span decoded by jaeger.thrift as it came in', async () => {
    const { zipkin, otlpTags, startNs } = await postTwoSpans(running);

    await until(() => receiver.spans.length >= 2, 'two exported spans');
    const byId = new Map(receiver.spans.map((s) => [s.spanId, s]));
    const zipkinTags = { 'span.kind': 'client', ...zipkin.tags, 'meshlens.destination_service': 'reviews', 'meshlens.subset': 'v2' };
    expect(byId.get('352bff9a74ca9ad2')).toEqual({
      service: 'productpage.default',
      traceIdHigh: '0000000000000000',
      traceIdLow: '5af7183fb1d4cf5f',
      spanId: '352bff9a74ca9ad2',
      parentSpanId: '6b221d5bc9e6496c',
      operationName: zipkin.name,
      references: [{ refType: 'CHILD_OF', traceIdLow: '5af7183fb1d4cf5f', traceIdHigh: '0000000000000000', spanId: '6b221d5bc9e6496c' }],
      flags: 1,
      startTime: String(zipkin.timestamp),
      duration: String(zipkin.duration),
      tags: zipkinTags,
      tagCount: Object.keys(zipkinTags).length,
      logs: null,
    });
    const otlpJaegerTags = { 'span.kind': 'client', ...otlpTags, error: true, 'meshlens.destination_service': 'ratings', 'meshlens.subset': 'v1' };
    expect(byId.get('b7ad6b7169203331')).toEqual({
      service: 'reviews.default',
      traceIdHigh: '0af7651916cd43dd',
      traceIdLow: '8448eb211c80319c',
      spanId: 'b7ad6b7169203331',
      parentSpanId: '0000000000000000',
      operationName: 'ratings.default.svc.cluster.local:9080/*',
      references: null,
      flags: 1,
      startTime: (startNs / 1000n).toString(),
      duration: '2500',
      tags: otlpJaegerTags,
      tagCount: Object.keys(otlpJaegerTags).length,
      logs: null,
    });
    expect(await metric(running, 'meshlens_tracer_exported_spans_total')).toBe(2);
  });

  it('retries a 503 through the Thrift sender, then exports the batch once', async () => {
    const before = { requests: receiver.requests, spans: receiver.spans.length, exported: await metric(running, 'meshlens_tracer_exported_spans_total') };
    receiver.failures.push(503, 503);
    const now = Date.now();
    const span = {
      traceId: '1e2d3c4b5a697887',
      id: '0123456789abcdef',
      name: 'details.default.svc.cluster.local:9080/*',
      kind: 'SERVER',
      timestamp: now * 1000 - 2_000,
      duration: 1_500,
      localEndpoint: { serviceName: 'details.default' },
      tags: { 'http.status_code': '200', response_flags: '-' },
    };
    expect((await postZipkin(running, [span])).status).toBe(202);
    await until(() => receiver.spans.length > before.spans, 'the span after two 503s');
    await new Promise((r) => setTimeout(r, 300));
    // Two refused attempts and the one that got through; the span arrived once.
    expect(receiver.requests - before.requests).toBe(3);
    expect(receiver.spans.filter((s) => s.spanId === '0123456789abcdef').length).toBe(1);
    expect(receiver.spans.find((s) => s.spanId === '0123456789abcdef')).toMatchObject({ service: 'details.default', traceIdLow: '1e2d3c4b5a697887', tags: { 'span.kind': 'server' } });
    expect(await metric(running, 'meshlens_tracer_exported_spans_total')).toBe(before.exported + 1);
    expect(await metric(running, 'meshlens_tracer_dropped_spans_total{reason="retries_exhausted"}')).toBe(0);
    expect(await metric(running, 'meshlens_tracer_dropped_spans_total{reason="rejected"}')).toBe(0);
  });
});
