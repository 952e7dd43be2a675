import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { type Result, type Span } from '../../../lib/model';
import type { Batch } from './batch';
import { parseZipkin } from './zipkin';
import { expectWellFormedBatch } from './batch.testutil';

const FIXTURES = path.join(__dirname, '../../../test/fixtures/zipkin');

function batchOf(r: Result<Batch<Span>>): Batch<Span> {
  if (!r.ok) throw new Error(`expected a batch, got ${r.reason}: ${r.message}`);
  return r.value;
}

/** Three POST bodies Envoy (the Kourier gateway) sent to /api/v2/spans, one per line (see SOURCES.md). */
const KOURIER_POSTS = readFileSync(path.join(FIXTURES, 'kourier-envoy-posts.ndjson'), 'utf8').trim().split('\n');

describe('parseZipkin: real Envoy posts (64-bit trace ids)', () => {
  const spans = KOURIER_POSTS.map((body) => batchOf(parseZipkin(Buffer.from(body))));

  it('parses each body to one span and pads the 64-bit trace id to 32 hex digits', () => {
    for (const b of spans) {
      expect(b.rejects).toEqual([]);
      expect(b.records).toHaveLength(1);
    }
    expect(spans[0]!.records[0]).toMatchObject({
      traceId: '0000000000000000dfdf78be9f9802f3',
      spanId: 'dfdf78be9f9802f3',
      parentSpanId: '',
      name: 'tracing-bdectujw.example.com',
      kind: 'server',
      startTimeMs: 1689241786518.59,
      durationMs: 7.646,
      serviceName: 'kourier-knative',
      requestId: '4d8666a7-fe4d-99dc-90fe-c10c404392ac',
      upstreamCluster: 'serving-tests/tracing-bdectujw',
      responseCode: 200,
      responseFlags: '',
      error: false,
    });
    // Kourier's cluster names are not Istio's: the name is its own destination (CONTRACT.md §4).
    expect(spans[0]!.records[0]).toMatchObject({ destinationHost: 'serving-tests/tracing-bdectujw', destinationNamespace: '' });
    expect(spans[2]!.records[0]).toMatchObject({ name: 'internalkourier', upstreamCluster: 'service_stats', durationMs: 0.394 });
  });

  it('keeps every tag, as a string, for the tracer', () => {
    expect(spans[1]!.records[0]!.attributes).toMatchObject({
      component: 'proxy',
      node_id: '3scale-kourier-gateway',
      user_agent: 'Knative-Ingress-Probe',
      'http.url': 'http://tracing-bdectujw.example.com/healthz',
    });
  });

  it('several posts concatenated into one array are several spans', () => {
    const merged = '[' + KOURIER_POSTS.map((p) => p.slice(1, -1)).join(',') + ']';
    expect(batchOf(parseZipkin(merged)).records.map((s) => s.spanId)).toEqual(['dfdf78be9f9802f3', 'a22f524cde88a549', 'edb21d2a980a87db']);
  });
});

/**
 * An Istio sidecar CLIENT/SERVER pair in the shape of telemetry-formats.md §6 (128-bit trace id, Istio tags);
 * the values are synthetic.
 */
const ISTIO_PAIR = [
  {
    traceId: '9a1c3e5f7b2d4f6a8c0e2a4c6e8f0b1d',
    id: '3f6b9d2e8a1c4e70',
    kind: 'CLIENT',
    name: 'checkout.shop.svc.cluster.local:7070/*',
    timestamp: 1773480413589000,
    duration: 23000,
    localEndpoint: { serviceName: 'cart.shop', ipv4: '10.1.3.15' },
    tags: {
      component: 'proxy',
      'http.method': 'POST',
      'http.status_code': '503',
      'guid:x-request-id': '7c1e9b52-3f0a-4d6e-8b21-5a9d0c4e7f13',
      upstream_cluster: 'outbound|7070|canary|checkout.shop.svc.cluster.local',
      response_flags: 'UF',
      error: 'true',
      'istio.namespace': 'shop',
    },
  },
  {
    traceId: '9a1c3e5f7b2d4f6a8c0e2a4c6e8f0b1d',
    parentId: '3f6b9d2e8a1c4e70',
    id: 'c47e1a9b2d5f8036',
    kind: 'SERVER',
    name: 'checkout.shop.svc.cluster.local:7070/*',
    timestamp: 1773480413592000,
    duration: 19000,
    localEndpoint: { serviceName: 'checkout.shop', ipv4: '10.1.4.22' },
    tags: {
      'http.status_code': '201',
      'guid:x-request-id': '7c1e9b52-3f0a-4d6e-8b21-5a9d0c4e7f13',
      upstream_cluster: 'inbound|7070||',
      'istio.canonical_service': 'checkout',
      'istio.namespace': 'shop',
    },
  },
];

describe('parseZipkin: Istio-shaped spans', () => {
  const [client, server] = batchOf(parseZipkin(JSON.stringify(ISTIO_PAIR))).records;

  it('CLIENT: destination and subset from upstream_cluster, error from the tag and the 5xx', () => {
    expect(client).toMatchObject({
      traceId: '9a1c3e5f7b2d4f6a8c0e2a4c6e8f0b1d',
      kind: 'client',
      serviceName: 'cart.shop',
      destinationHost: 'checkout.shop.svc.cluster.local',
      destinationService: 'checkout',
      destinationNamespace: 'shop',
      destinationSubset: 'canary',
      responseCode: 503,
      responseFlags: 'UF',
      error: true,
    });
  });

  it('SERVER: parent id, and the destination is the span’s own service', () => {
    expect(server).toMatchObject({
      kind: 'server',
      parentSpanId: '3f6b9d2e8a1c4e70',
      destinationService: 'checkout',
      destinationNamespace: 'shop',
      destinationSubset: '',
      responseCode: 201,
      error: false,
      durationMs: 19,
    });
  });

  it('an `error` tag of "false" is not an error; a missing kind is unspecified; uppercase ids are lowercased', () => {
    const [s] = batchOf(
      parseZipkin(JSON.stringify([{ traceId: 'DFDF78BE9F9802F3', id: 'DFDF78BE9F9802F3', timestamp: 1689241786518590, tags: { error: 'false', 'http.status_code': 200 } }])),
    ).records;
    expect(s).toMatchObject({ traceId: '0000000000000000dfdf78be9f9802f3', kind: 'unspecified', error: false, responseCode: 200, durationMs: 0 });
  });
});

describe('parseZipkin: rejects', () => {
  const good = { traceId: 'dfdf78be9f9802f3', id: 'dfdf78be9f9802f3', timestamp: 1689241786518590 };

  it('validates ids, timestamps and kinds per span, with 1-based positions and the span as raw JSON', () => {
    const body = [
      good,
      { ...good, traceId: undefined },
      { ...good, traceId: 'dfdf78be9f9802f' },
      { ...good, traceId: 'zzzz78be9f9802f3' },
      { ...good, id: undefined },
      { ...good, id: 'dfdf78be9f9802f3dfdf78be9f9802f3' },
      { ...good, parentId: 'nothex!!nothex!!' },
      { ...good, timestamp: undefined },
      { ...good, timestamp: '1689241786518590' },
      { ...good, duration: -1 },
      { ...good, kind: 'INTERNAL' },
      { ...good, tags: ['a'] },
      'not a span',
      { ...good, traceId: 42 },
      { ...good, timestamp: 1689241786 },
      { ...good, traceId: '00000000000000000000000000000000' },
    ];
    const batch = batchOf(parseZipkin(JSON.stringify(body)));
    expect(batch.records).toHaveLength(1);
    expect(batch.rejects.map((r) => [r.index, r.reason])).toEqual([
      [2, 'missing_field'],
      [3, 'invalid_field'],
      [4, 'invalid_field'],
      [5, 'missing_field'],
      [6, 'invalid_field'],
      [7, 'invalid_field'],
      [8, 'missing_field'],
      [9, 'invalid_timestamp'],
      [10, 'invalid_number'],
      [11, 'invalid_field'],
      [12, 'malformed_json'],
      [13, 'malformed_json'],
      [14, 'invalid_field'],
      // seconds where microseconds belong: 1970
      [15, 'invalid_timestamp'],
      [16, 'invalid_field'],
    ]);
    expect(JSON.parse(batch.rejects[1]!.raw)).toEqual({ ...good, traceId: 'dfdf78be9f9802f' });
    expect(batch.rejects[11]!.raw).toBe('"not a span"');
  });

  it('a body that is not a JSON array is malformed_json; an empty body is an empty batch', () => {
    expect(parseZipkin('{"traceId": "dfdf78be9f9802f3"}')).toMatchObject({ ok: false, reason: 'malformed_json' });
    expect(parseZipkin('[{')).toMatchObject({ ok: false, reason: 'malformed_json' });
    expect(parseZipkin('null')).toMatchObject({ ok: false, reason: 'malformed_json' });
    expect(batchOf(parseZipkin(Buffer.from('  \n')))).toEqual({ records: [], rejects: [] });
  });
});

describe('parseZipkin: what it does not read is rejected, never taken as v2 spans', () => {
  const good = { traceId: 'dfdf78be9f9802f3', id: 'dfdf78be9f9802f3', timestamp: 1689241786518590 };

  it("Zipkin v1 spans (the Zipkin docs' data-model trace) are unsupported_record, not v2 spans without tags or kind", () => {
    const batch = batchOf(parseZipkin(readFileSync(path.join(FIXTURES, 'zipkin-docs-data-model-v1.json'))));
    expect(batch.records).toHaveLength(0);
    expect(batch.rejects.map((r) => r.reason)).toEqual(['unsupported_record', 'unsupported_record']);
    expect(batch.rejects[0]!.message).toContain('Zipkin v1');
    expect(batch.rejects[0]!.message).toContain('v2');
    // v2 has no binaryAnnotations at all, so even the first span's empty one marks it.
    expect(batch.rejects[0]!.message).toContain('binaryAnnotations');
    // Without it, v1 annotations (each with its endpoint) give the span away.
    const annotated = [{ ...good, annotations: [{ timestamp: 1689241786518590, value: 'sr', endpoint: { serviceName: 'zipkin-query' } }] }];
    expect(batchOf(parseZipkin(JSON.stringify(annotated))).rejects[0]).toMatchObject({ reason: 'unsupported_record' });
    // v2 annotations are {timestamp, value} and stay accepted.
    expect(batchOf(parseZipkin(JSON.stringify([{ ...good, annotations: [{ timestamp: 1689241786518590, value: 'ss' }] }]))).records).toHaveLength(1);
  });

  it('a span that would end after 2100 (a duration of centuries) is rejected', () => {
    const batch = batchOf(parseZipkin(JSON.stringify([{ ...good, duration: Number.MAX_SAFE_INTEGER }, { ...good, duration: 86_400_000_000 }])));
    expect(batch.rejects.map((r) => [r.index, r.reason])).toEqual([[1, 'invalid_number']]);
    expect(batch.records).toHaveLength(1);
  });

  it('a UTF-8 byte order mark before the array is ignored (RFC 8259 section 8.1 allows it)', () => {
    expect(batchOf(parseZipkin('\uFEFF[]'))).toEqual({ records: [], rejects: [] });
    expect(batchOf(parseZipkin(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify([good]))]))).records).toHaveLength(1);
  });

  it('the dead-letter raw of a span nested too deep to re-serialize is still JSON, not "[object Object]"', () => {
    const depth = 100000;
    const body = `[{"traceId":"dfdf78be9f9802f3","id":"dfdf78be9f9802f3","timestamp":1689241786518590,"tags":{"deep":${'['.repeat(depth)}${']'.repeat(depth)}}}]`;
    const batch = batchOf(parseZipkin(body));
    expect(batch.rejects).toHaveLength(1);
    const raw = JSON.parse(batch.rejects[0]!.raw) as { traceId: string };
    expect(raw.traceId).toBe('dfdf78be9f9802f3');
  });
});

describe('parseZipkin never throws (fast-check)', () => {
  const check = (r: Result<Batch<Span>>, expected?: number): void => {
    expectWellFormedBatch(r);
    if (r.ok && expected !== undefined) expect(r.value.records.length + r.value.rejects.length).toBe(expected);
  };

  it('random bytes and random JSON', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.jsonValue({ maxDepth: 4 }), (bytes, json) => {
        check(parseZipkin(Buffer.from(bytes)));
        check(parseZipkin(JSON.stringify(json)));
      }),
      { numRuns: 300 },
    );
  });

  it('span-shaped objects with random fields', () => {
    const hex = (n: number) => fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF'), minLength: n, maxLength: n });
    const span = fc.record(
      {
        traceId: fc.oneof(hex(16), hex(32), fc.jsonValue({ maxDepth: 1 })),
        id: fc.oneof(hex(16), fc.string()),
        parentId: fc.oneof(hex(16), fc.jsonValue({ maxDepth: 1 })),
        kind: fc.oneof(fc.constantFrom('CLIENT', 'SERVER', 'PRODUCER', 'CONSUMER'), fc.jsonValue({ maxDepth: 1 })),
        timestamp: fc.oneof(fc.integer({ min: 946_684_800_000_000, max: 4_102_444_800_000_000 }), fc.jsonValue({ maxDepth: 1 })),
        duration: fc.oneof(fc.nat(), fc.double(), fc.string()),
        localEndpoint: fc.jsonValue({ maxDepth: 2 }),
        tags: fc.oneof(fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.jsonValue({ maxDepth: 1 }))), fc.jsonValue({ maxDepth: 1 })),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.array(span, { maxLength: 6 }), (spans) => check(parseZipkin(JSON.stringify(spans)), spans.length)),
      { numRuns: 300 },
    );
  });
});
