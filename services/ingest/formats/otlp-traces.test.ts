import { readFileSync } from 'node:fs';
import path from 'node:path';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import fc from 'fast-check';
import { type Result, type Span } from '../../../lib/model';
import { sdkTracesJson, sdkTracesProtobuf, type SdkSpanResource } from '../../../test/support/otel-sdk';
import type { Batch } from './batch';
import { parseOtlpTraces } from './otlp-traces';
import { expectWellFormedBatch } from './batch.testutil';

const FIXTURES = path.join(__dirname, '../../../test/fixtures/otlp');
const fixture = (name: string): Buffer => readFileSync(path.join(FIXTURES, name));

function batchOf(r: Result<Batch<Span>>): Batch<Span> {
  if (!r.ok) throw new Error(`expected a batch, got ${r.reason}: ${r.message}`);
  return r.value;
}

interface FixtureSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: { key: string; value: { stringValue: string } }[];
}

/**
 * The sleep → httpbin client and server spans of test/fixtures/otlp/istio-sleep-httpbin-traces-from-xray.json
 * (real Istio sidecar tags, see SOURCES.md), re-encoded by the OTel JS SDK as protobuf.
 */
function xrayFixtureAsSdk(): SdkSpanResource[] {
  const doc = JSON.parse(fixture('istio-sleep-httpbin-traces-from-xray.json').toString()) as {
    resourceSpans: { resource: { attributes: { key: string; value: { stringValue: string } }[] }; scopeSpans: { spans: FixtureSpan[] }[] }[];
  };
  return doc.resourceSpans.map((rs) => ({
    attributes: Object.fromEntries(rs.resource.attributes.map((a) => [a.key, a.value.stringValue])),
    spans: rs.scopeSpans[0]!.spans.map((s) => ({
      traceId: s.traceId,
      spanId: s.spanId,
      ...(s.parentSpanId ? { parentSpanId: s.parentSpanId } : {}),
      name: s.name,
      kind: s.kind === 3 ? SpanKind.CLIENT : SpanKind.SERVER,
      startTimeUnixNano: s.startTimeUnixNano,
      endTimeUnixNano: s.endTimeUnixNano,
      attributes: Object.fromEntries(s.attributes.map((a) => [a.key, a.value.stringValue])),
    })),
  }));
}

describe('parseOtlpTraces: Istio sidecar spans', () => {
  const protobufBatch = batchOf(parseOtlpTraces(sdkTracesProtobuf(xrayFixtureAsSdk()), 'protobuf'));
  const jsonBatch = batchOf(parseOtlpTraces(fixture('istio-sleep-httpbin-traces-from-xray.json'), 'json'));

  it('the client span names the destination and subset from upstream_cluster, and the service from the resource', () => {
    expect(protobufBatch.rejects).toEqual([]);
    expect(protobufBatch.records[0]).toMatchObject({
      traceId: '71f86e637c9ad592296688596eea6ee8',
      spanId: 'cf77a1e7d50cfad8',
      parentSpanId: '',
      kind: 'client',
      serviceName: 'sleep.default',
      requestId: '36f189be-0e4c-9187-acb5-b7dfdb552328',
      upstreamCluster: 'outbound|8000||httpbin.default.svc.cluster.local',
      destinationHost: 'httpbin.default.svc.cluster.local',
      destinationService: 'httpbin',
      destinationNamespace: 'default',
      destinationSubset: '',
      responseFlags: '',
      error: false,
      startTimeMs: 1707149433975.948,
    });
    expect(protobufBatch.records[0]!.durationMs).toBeCloseTo(2.532, 6);
    expect(protobufBatch.records[0]!.attributes).toMatchObject({ 'istio.canonical_service': 'sleep', node_id: expect.stringMatching(/^sidecar~/) });
  });

  it('the server span (inbound|80||) is about its own service, from the Istio tags', () => {
    expect(protobufBatch.records[1]).toMatchObject({
      kind: 'server',
      parentSpanId: 'cf77a1e7d50cfad8',
      serviceName: 'httpbin.default',
      upstreamCluster: 'inbound|80||',
      destinationHost: '',
      destinationService: 'httpbin',
      destinationNamespace: 'default',
    });
  });

  it('the OTLP/JSON fixture, and the SDK JSON serialization of it, give the same spans', () => {
    expect(jsonBatch).toEqual(protobufBatch);
    expect(batchOf(parseOtlpTraces(sdkTracesJson(xrayFixtureAsSdk()), 'json'))).toEqual(protobufBatch);
  });
});

describe('parseOtlpTraces: status, subsets and errors', () => {
  const base = { traceId: '9a1c3e5f7b2d4f6a8c0e2a4c6e8f0b1d', startTimeUnixNano: '1773480413592000000', endTimeUnixNano: '1773480413611000000' };
  const resources: SdkSpanResource[] = [
    {
      attributes: { 'service.name': 'productpage.bookinfo' },
      spans: [
        {
          ...base,
          spanId: '0000000000000001',
          name: 'reviews.bookinfo.svc.cluster.local:9080/*',
          kind: SpanKind.CLIENT,
          attributes: { upstream_cluster: 'outbound|9080|v2|reviews.bookinfo.svc.cluster.local;', 'http.status_code': '200', response_flags: '-' },
        },
        {
          ...base,
          spanId: '0000000000000002',
          name: 'ratings.bookinfo.svc.cluster.local:9080/*',
          kind: SpanKind.CLIENT,
          attributes: { upstream_cluster: 'outbound|9080|v1|ratings.bookinfo.svc.cluster.local', 'http.status_code': '503', response_flags: 'UF,URX' },
        },
        { ...base, spanId: '0000000000000003', name: 'a', kind: SpanKind.CLIENT, attributes: { 'http.response.status_code': 200 }, status: SpanStatusCode.ERROR },
        { ...base, spanId: '0000000000000004', name: 'b', kind: SpanKind.CLIENT, attributes: { error: 'true', 'http.status_code': '200' } },
        { ...base, spanId: '0000000000000005', name: 'c', kind: SpanKind.PRODUCER, attributes: { upstream_cluster: 'PassthroughCluster' } },
      ],
    },
  ];
  const [v2, failed, statusError, errorTag, passthrough] = batchOf(parseOtlpTraces(sdkTracesProtobuf(resources), 'protobuf')).records;

  it('reads the subset and strips the alt_stat_name `;`', () => {
    expect(v2).toMatchObject({
      upstreamCluster: 'outbound|9080|v2|reviews.bookinfo.svc.cluster.local',
      destinationService: 'reviews',
      destinationNamespace: 'bookinfo',
      destinationSubset: 'v2',
      responseCode: 200,
      error: false,
    });
  });

  it('error from a 5xx, from STATUS_CODE_ERROR and from an error=true attribute', () => {
    expect(failed).toMatchObject({ destinationSubset: 'v1', responseCode: 503, responseFlags: 'UF,URX', error: true });
    expect(statusError).toMatchObject({ responseCode: 200, error: true });
    expect(errorTag).toMatchObject({ responseCode: 200, error: true });
    expect(passthrough).toMatchObject({ kind: 'producer', destinationHost: 'PassthroughCluster', destinationService: 'PassthroughCluster', error: false });
  });
});

describe('parseOtlpTraces: the opentelemetry-proto example', () => {
  it('reads uppercase hex ids, integer kind and numeric 64-bit times', () => {
    const [span] = batchOf(parseOtlpTraces(fixture('opentelemetry-proto-examples-trace.json'), 'json')).records;
    expect(span).toMatchObject({
      traceId: '5b8efff798038103d269b633813fc60c',
      spanId: 'eee19b7ec3c1b174',
      parentSpanId: 'eee19b7ec3c1b173',
      name: "I'm a server span",
      kind: 'server',
      startTimeMs: 1544712660000,
      durationMs: 1000,
      serviceName: 'my.service',
      attributes: { 'my.span.attr': 'some value' },
    });
  });
});

describe('parseOtlpTraces: rejects', () => {
  const ok = { spanId: 'cf77a1e7d50cfad8', startTimeUnixNano: '1707149433975948000', endTimeUnixNano: '1707149433978480800' };
  const body = {
    resourceSpans: [
      { scopeSpans: [{ spans: [{ ...ok, traceId: '71f86e637c9ad592296688596eea6ee8' }, { ...ok, traceId: '00000000000000000000000000000000' }] }] },
      {
        scopeSpans: [
          {
            spans: [
              { ...ok, traceId: '' },
              { ...ok, traceId: '71f86e637c9ad592296688596eea6ee8', spanId: '' },
              { ...ok, traceId: '71f86e637c9ad592296688596eea6ee8', endTimeUnixNano: '1' },
              { ...ok, traceId: '71f86e637c9ad592296688596eea6ee8', startTimeUnixNano: '0' },
              { ...ok, traceId: '71f86e637c9ad592', spanId: 'cf77a1e7d50cfad8' },
              { ...ok, traceId: '71f86e637c9ad592296688596eea6ee8', parentSpanId: 'xyz' },
              { ...ok, traceId: '71f86e637c9ad592296688596eea6ee8', kind: { not: 'an int' } },
              { ...ok, traceId: '71f86e637c9ad592296688596eea6ee8', parentSpanId: '0000000000000000' },
            ],
          },
        ],
      },
    ],
  };

  it('each bad span is rejected with its index across resources and a reason; the rest are kept', () => {
    const batch = batchOf(parseOtlpTraces(Buffer.from(JSON.stringify(body)), 'json'));
    expect(batch.rejects.map((r) => [r.index, r.reason])).toEqual([
      [2, 'invalid_field'],
      [3, 'missing_field'],
      [4, 'missing_field'],
      [5, 'invalid_timestamp'],
      [6, 'missing_field'],
      [7, 'invalid_field'],
      [8, 'invalid_field'],
      [9, 'invalid_field'],
    ]);
    // An all-zero parent id is a root span, not an error.
    expect(batch.records.map((s) => s.parentSpanId)).toEqual(['', '']);
    expect(JSON.parse(batch.rejects[7]!.raw)).toMatchObject({ kind: { not: 'an int' } });
    expect(JSON.parse(batch.rejects[0]!.raw)).toMatchObject({ traceId: '00000000000000000000000000000000', spanId: 'cf77a1e7d50cfad8' });
  });

  it('a span ending after 2100 (a duration of centuries) is invalid_timestamp', () => {
    const span = { ...ok, traceId: '71f86e637c9ad592296688596eea6ee8', endTimeUnixNano: '16725225600000000000' };
    const batch = batchOf(parseOtlpTraces(Buffer.from(JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [span] }] }] })), 'json'));
    expect(batch.records).toEqual([]);
    expect(batch.rejects.map((r) => r.reason)).toEqual(['invalid_timestamp']);
    expect(batch.rejects[0]!.message).toContain('endTimeUnixNano');
  });

  it('an OTLP/JSON body after a UTF-8 byte order mark is read (RFC 8259 section 8.1 lets parsers ignore it)', () => {
    const json = Buffer.from(JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ ...ok, traceId: '71f86e637c9ad592296688596eea6ee8' }] }] }] }));
    const batch = batchOf(parseOtlpTraces(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), json]), 'json'));
    expect(batch.records).toHaveLength(1);
  });

  it('undecodable bodies are one rejection', () => {
    expect(parseOtlpTraces(Buffer.from([0x0a, 0x05, 0x01]), 'protobuf')).toMatchObject({ ok: false, reason: 'malformed_protobuf' });
    expect(parseOtlpTraces(Buffer.from('{'), 'json')).toMatchObject({ ok: false, reason: 'malformed_json' });
  });
});

describe('parseOtlpTraces never throws (fast-check)', () => {
  const valid = sdkTracesProtobuf(xrayFixtureAsSdk());
  const check = (r: Result<Batch<Span>>): void => {
    expectWellFormedBatch(r);
  };

  it('random bytes, truncated and mutated protobuf, random span JSON', () => {
    const span = fc.dictionary(
      fc.constantFrom('traceId', 'spanId', 'parentSpanId', 'kind', 'startTimeUnixNano', 'endTimeUnixNano', 'attributes', 'status', 'name'),
      fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 16, maxLength: 32 }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String)),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), fc.integer({ min: 0, max: 255 }), fc.array(span, { maxLength: 4 }), (bytes, at, byte, spans) => {
        check(parseOtlpTraces(Buffer.from(bytes), 'protobuf'));
        check(parseOtlpTraces(Buffer.from(bytes), 'json'));
        check(parseOtlpTraces(valid.subarray(0, at % valid.length), 'protobuf'));
        const mutated = Buffer.from(valid);
        mutated[at % mutated.length] = byte;
        check(parseOtlpTraces(mutated, 'protobuf'));
        const r = parseOtlpTraces(Buffer.from(JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans }] }] })), 'json');
        check(r);
        if (r.ok) expect(r.value.records.length + r.value.rejects.length).toBe(spans.length);
      }),
      { numRuns: 300 },
    );
  });
});
