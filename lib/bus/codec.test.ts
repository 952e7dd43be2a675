/**
 * The binary record codec of the bus (issue 10, part 3): every record must come back exactly as it was
 * published, whatever its values; what it cannot read must fail with a CodecError (which the Kafka bus
 * dead-letters); and what the JSON codec wrote before the upgrade must still be read.
 */
import fc from 'fast-check';
import type { Flow, MeshRequest, Span } from '../model';
import { BINARY_FORMAT_VERSION, CodecError, FIELD_ORDER, flowsCodec, requestsCodec, spansCodec } from './codec';
import { TOPICS } from './types';
import type { Codec } from './types';

// --- arbitraries: few distinct values per message (so dictionaries are used) mixed with anything at all ------

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
const anyString = fc.oneof(
  fc.constantFrom('', 'unknown', 'reviews.default.svc.cluster.local', 'v1', 'résumé', 'Grüße', '日本語', '😀', '\u0000', 'a\u00ffb'),
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.string({ unit: 'grapheme' }),
  // Lone surrogates are legal in JS strings and in JSON (escaped), not in UTF-8.
  fc.string({ unit: fc.oneof(loneSurrogate, fc.constantFrom('a', 'é', '😀')), maxLength: 6 }),
);
/** A string column drawn from a small pool half of the time, so that messages repeat values. */
const str = fc.oneof(fc.constantFrom('', 'unknown', 'default', 'reviews', 'ratings-v1', 'ß'), anyString);
const anyNumber = fc.oneof(
  fc.constantFrom(-1, 0, 1, 0.1, 0.2, 0.3, 12.345, 1e-7, 2 ** 53, -(2 ** 53), Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2 ** 31, 2 ** 32 + 1, -0, NaN, Infinity, -Infinity, Number.MAX_VALUE, Number.MIN_VALUE),
  fc.integer(),
  fc.maxSafeInteger(),
  fc.double(),
  // Unix milliseconds, whole and with µs or ns fractions (Zipkin and OTLP spans).
  fc.integer({ min: 1_500_000_000_000, max: 2_000_000_000_000 }),
  fc.integer({ min: 1_500_000_000_000_000, max: 2_000_000_000_000_000 }).map((us) => us / 1000),
  fc.bigInt({ min: 1_500_000_000_000_000_000n, max: 2_000_000_000_000_000_000n }).map((ns) => Number(ns) / 1e6),
);
const num = fc.oneof(fc.constantFrom(-1, 0, 200, 9080), anyNumber);
const attrKey = fc.oneof(fc.constantFrom('__proto__', 'constructor', 'toString', '0', '10', 'http.url', 'istio.mesh_id', ''), anyString);
/** Built with defineProperty, as JSON.parse makes them: `__proto__` is an own key, not the prototype. */
const attributes = fc.array(fc.tuple(attrKey, str), { maxLength: 6 }).map((pairs) => {
  const a: Record<string, string> = {};
  for (const [k, v] of pairs) Object.defineProperty(a, k, { value: v, enumerable: true, writable: true, configurable: true });
  return a;
});

const request: fc.Arbitrary<MeshRequest> = fc.record({
  startTimeMs: num,
  reporter: fc.constantFrom('source', 'destination', 'unknown'),
  sourceWorkload: str,
  sourceNamespace: str,
  sourceAddress: str,
  destinationHost: str,
  destinationService: str,
  destinationNamespace: str,
  destinationSubset: str,
  destinationPort: num,
  destinationWorkload: str,
  destinationVersion: str,
  destinationAddress: str,
  protocol: fc.constantFrom('http', 'grpc', 'tcp', 'unknown'),
  httpVersion: str,
  method: str,
  path: str,
  authority: str,
  responseCode: num,
  responseFlags: str,
  responseCodeDetails: str,
  connectionTerminationDetails: str,
  upstreamTransportFailureReason: str,
  upstreamCluster: str,
  requestedServerName: str,
  routeName: str,
  userAgent: str,
  bytesReceived: num,
  bytesSent: num,
  durationMs: num,
  upstreamServiceTimeMs: num,
  requestId: str,
  traceId: str,
  outcome: fc.constantFrom('ok', 'error', 'denied'),
  denyReason: fc.constantFrom('rbac', 'ext_authz', 'blackhole', 'network_policy', ''),
  policy: str,
  rule: num,
  attributes,
}, { noNullPrototype: true });

const flow: fc.Arbitrary<Flow> = fc.record({
  startTimeMs: num,
  reporter: fc.constantFrom('source', 'destination', 'unknown'),
  sourceWorkload: str,
  sourceNamespace: str,
  sourceAddress: str,
  destinationHost: str,
  destinationService: str,
  destinationNamespace: str,
  destinationWorkload: str,
  destinationAddress: str,
  destinationPort: num,
  transport: str,
  verdict: fc.constantFrom('allowed', 'denied'),
  denyReason: fc.constantFrom('rbac', 'ext_authz', 'blackhole', 'network_policy', ''),
  detail: str,
  policy: str,
  rule: num,
  count: num,
  bytes: num,
  packets: num,
  attributes,
}, { noNullPrototype: true });

const span: fc.Arbitrary<Span> = fc.record({
  traceId: str,
  spanId: str,
  parentSpanId: str,
  name: str,
  kind: fc.constantFrom('unspecified', 'internal', 'server', 'client', 'producer', 'consumer'),
  startTimeMs: num,
  durationMs: num,
  serviceName: str,
  requestId: str,
  upstreamCluster: str,
  destinationHost: str,
  destinationService: str,
  destinationNamespace: str,
  destinationSubset: str,
  responseCode: num,
  responseFlags: str,
  error: fc.boolean(),
  attributes,
}, { noNullPrototype: true });

/**
 * Exactly equal: toStrictEqual compares numbers with Object.is (so -0 and NaN count) and checks own keys;
 * the attributes' key order is compared on its own, since toStrictEqual ignores order.
 */
function expectSame<T extends { attributes: Record<string, string> }>(got: T[], want: T[]): void {
  expect(got).toStrictEqual(want);
  expect(got.map((r) => Object.keys(r.attributes))).toEqual(want.map((r) => Object.keys(r.attributes)));
  for (const r of got) expect(Object.getPrototypeOf(r.attributes)).toBe(Object.prototype);
}

function roundTrips<T extends { attributes: Record<string, string> }>(codec: Codec<T[]>, record: fc.Arbitrary<T>): void {
  // Messages of one record (a trace's span), of a few, and of enough to build dictionaries.
  const messages = fc.oneof(fc.array(record, { maxLength: 3 }), fc.array(record, { minLength: 4, maxLength: 40 }));
  fc.assert(
    fc.property(messages, (records) => {
      const bytes = codec.encode(records);
      expect(bytes[0]).toBe(BINARY_FORMAT_VERSION);
      expectSame(codec.decode(bytes), records);
    }),
    { numRuns: 300 },
  );
  // Repeats of one record: constant columns and single-entry dictionaries.
  fc.assert(
    fc.property(record, fc.integer({ min: 1, max: 50 }), (r, n) => {
      const records = Array.from({ length: n }, () => r);
      expectSame(codec.decode(codec.encode(records)), records);
    }),
    { numRuns: 100 },
  );
}

describe('bus binary codec: exact round trip', () => {
  it('requests', () => roundTrips(requestsCodec, request));
  it('flows', () => roundTrips(flowsCodec, flow));
  it('spans', () => roundTrips(spansCodec, span));

  const base = fc.sample(request, { numRuns: 1, seed: 42 })[0]!;

  it('keeps sentinels, extremes and fractions of every number column exactly', () => {
    const values = [-1, 0, -0, 0.1, 0.3, 1e-7, 3.253, 1796194981920.224, 1796194981920.2246, 2 ** 53, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, NaN, Infinity, -Infinity];
    // Each value alone (a constant column), and all together (one column mixing them).
    const messages = [...values.map((v) => [v]), values, values.filter((v) => Number.isSafeInteger(v)), [0.1, 0.25, 12.345]];
    for (const vs of messages) {
      const records = vs.map((v) => ({ ...base, startTimeMs: v, bytesSent: v, durationMs: v, rule: v, upstreamServiceTimeMs: v }));
      expectSame(requestsCodec.decode(requestsCodec.encode(records)), records);
    }
  });

  it('keeps empty, non-ASCII and lone-surrogate strings, also split surrogate pairs', () => {
    const values = ['', 'reviews', 'résumé', '日本語', '😀', '\ud83d', '\ude00', 'x\ud800', '\u0000'];
    for (const vs of [values, ['\ud83d', '\ude00'], ['😀', '😀'], ['é']]) {
      const records = vs.map((v) => ({ ...base, path: v, sourceWorkload: v, attributes: { [v]: v } }));
      expectSame(requestsCodec.decode(requestsCodec.encode(records)), records);
    }
  });

  it('keeps attribute key order and a `__proto__` attribute as an own key', () => {
    const attrs = JSON.parse('{"b":"1","__proto__":"x","a":"2","10":"3"}') as Record<string, string>;
    const [got] = requestsCodec.decode(requestsCodec.encode([{ ...base, attributes: attrs }]));
    expect(Object.keys(got!.attributes)).toEqual(['10', 'b', '__proto__', 'a']);
    expect(Object.getOwnPropertyDescriptor(got!.attributes, '__proto__')?.value).toBe('x');
    expect(Object.getPrototypeOf(got!.attributes)).toBe(Object.prototype);
  });

  it('round-trips a message larger than its scratch buffers (64 KiB to start, dropped after 4 MiB)', () => {
    for (const size of [100, 5_000]) {
      const records = Array.from({ length: size }, (_, i) => ({ ...base, requestId: `${i}`.repeat(200), path: `/p/${i}/é` }));
      expectSame(requestsCodec.decode(requestsCodec.encode(records)), records);
    }
    const small = [base, base];
    expectSame(requestsCodec.decode(requestsCodec.encode(small)), small);
  });

  it('encodes an empty batch', () => {
    expect(requestsCodec.decode(requestsCodec.encode([]))).toEqual([]);
    expect(spansCodec.encode([])).toEqual(Buffer.from([BINARY_FORMAT_VERSION, 3, 0]));
  });

  it('is what the record topics use; dead letters and heartbeats stay JSON', () => {
    expect(TOPICS.requests.codec).toBe(requestsCodec);
    expect(TOPICS.flows.codec).toBe(flowsCodec);
    expect(TOPICS.spans.codec).toBe(spansCodec);
    expect(TOPICS.deadLetters.codec.encode([]).toString()).toBe('[]');
    expect(TOPICS.members.codec.encode([]).toString()).toBe('[]');
  });

  it('writes a batch of similar records in far fewer bytes than JSON', () => {
    const records = Array.from({ length: 200 }, (_, i) => ({
      ...base,
      startTimeMs: 1_700_000_000_000 + i * 7,
      requestId: `req-${i}`,
      responseCode: i % 10 === 0 ? 503 : 200,
      durationMs: i % 17,
    }));
    const binary = requestsCodec.encode(records).length;
    const json = Buffer.byteLength(JSON.stringify(records));
    expect(binary).toBeLessThan(json / 4);
  });
});

describe('bus binary codec: version 1 on the wire', () => {
  /**
   * The field order is part of format version 1: messages already on a topic are read with it. Changing it
   * means a new version byte (and reading version 1 on).
   */
  it('keeps the field order of version 1', () => {
    expect(FIELD_ORDER.requests.join(',')).toBe(
      'startTimeMs,reporter,sourceWorkload,sourceNamespace,sourceAddress,destinationHost,destinationService,destinationNamespace,' +
        'destinationSubset,destinationPort,destinationWorkload,destinationVersion,destinationAddress,protocol,httpVersion,method,path,' +
        'authority,responseCode,responseFlags,responseCodeDetails,connectionTerminationDetails,upstreamTransportFailureReason,' +
        'upstreamCluster,requestedServerName,routeName,userAgent,bytesReceived,bytesSent,durationMs,upstreamServiceTimeMs,requestId,' +
        'traceId,outcome,denyReason,policy,rule,attributes',
    );
    expect(FIELD_ORDER.flows.join(',')).toBe(
      'startTimeMs,reporter,sourceWorkload,sourceNamespace,sourceAddress,destinationHost,destinationService,destinationNamespace,' +
        'destinationWorkload,destinationAddress,destinationPort,transport,verdict,denyReason,detail,policy,rule,count,bytes,packets,attributes',
    );
    expect(FIELD_ORDER.spans.join(',')).toBe(
      'traceId,spanId,parentSpanId,name,kind,startTimeMs,durationMs,serviceName,requestId,upstreamCluster,destinationHost,' +
        'destinationService,destinationNamespace,destinationSubset,responseCode,responseFlags,error,attributes',
    );
  });

  const spans: Span[] = [
    {
      traceId: 'ab',
      spanId: 'c1',
      parentSpanId: '',
      name: 'n',
      kind: 'client',
      startTimeMs: 1.5,
      durationMs: 0.1,
      serviceName: 's',
      requestId: 'r1',
      upstreamCluster: '',
      destinationHost: '',
      destinationService: '',
      destinationNamespace: '',
      destinationSubset: '',
      responseCode: 200,
      responseFlags: '',
      error: false,
      attributes: { k: 'é' },
    },
    {
      traceId: 'ab',
      spanId: 'c2',
      parentSpanId: 'c1',
      name: 'n',
      kind: 'server',
      startTimeMs: 2.25,
      durationMs: NaN,
      serviceName: 's',
      requestId: 'r2',
      upstreamCluster: '',
      destinationHost: '',
      destinationService: '',
      destinationNamespace: '',
      destinationSubset: '',
      responseCode: 503,
      responseFlags: 'UF',
      error: true,
      attributes: {},
    },
  ];
  // Version 1 bytes of `spans`, column by column (see the format in codec.ts).
  const golden = [
    '01 03 02', // version 1, spans, 2 records
    '01 01 00 02 61 62', // traceId: dictionary of 1 UTF-8 entry "ab"
    '00 02 02 00 04 63 31 63 32', // spanId: plain, lengths 2 2, UTF-8, 4 bytes "c1c2"
    '00 00 02 00 02 63 31', // parentSpanId: plain, lengths 0 2, "c1"
    '01 01 00 01 6e', // name: "n"
    '00 06 06 00 0c 636c69656e74 736572766572', // kind: plain "client" "server"
    '01 02 00 9601 00 4b', // startTimeMs: integers scaled by 10^2, base +150, offsets 0 75
    '00 9a9999999999b93f 000000000000f87f', // durationMs: float64 0.1 and NaN
    '01 01 00 01 73', // serviceName: "s"
    '00 02 02 00 04 72 31 72 32', // requestId: plain "r1" "r2"
    '01 01 00 00', // upstreamCluster: ""
    '01 01 00 00', // destinationHost
    '01 01 00 00', // destinationService
    '01 01 00 00', // destinationNamespace
    '01 01 00 00', // destinationSubset
    '01 00 00 c801 00 af02', // responseCode: integers, base +200, offsets 0 303
    '00 00 02 00 02 55 46', // responseFlags: plain "" "UF"
    '02', // error: bits 0b10
    '01 00', // attributes: 1 pair, 0 pairs
    '01 01 00 01 6b', // keys: "k"
    '01 01 00 02 c3a9', // values: "é" in UTF-8
  ]
    .join('')
    .replace(/ /g, '');

  it('encodes a known batch to known bytes', () => {
    expect(spansCodec.encode(spans).toString('hex')).toBe(golden);
  });

  it('decodes known version 1 bytes', () => {
    expectSame(spansCodec.decode(Buffer.from(golden, 'hex')), spans);
  });
});

describe('bus binary codec: messages of the JSON codec (before an upgrade in place)', () => {
  const oldJson = (value: unknown) => Buffer.from(JSON.stringify(value));

  it('reads the JSON arrays the previous version wrote, on every record topic', () => {
    fc.assert(
      fc.property(fc.array(request, { maxLength: 5 }), fc.array(flow, { maxLength: 5 }), fc.array(span, { maxLength: 5 }), (rs, fs, ss) => {
        expect(requestsCodec.decode(oldJson(rs))).toEqual(JSON.parse(JSON.stringify(rs)));
        expect(flowsCodec.decode(oldJson(fs))).toEqual(JSON.parse(JSON.stringify(fs)));
        expect(spansCodec.decode(oldJson(ss))).toEqual(JSON.parse(JSON.stringify(ss)));
      }),
      { numRuns: 50 },
    );
  });

  it('refuses a broken JSON array with a CodecError', () => {
    expect(() => requestsCodec.decode(Buffer.from('[{"startTimeMs":'))).toThrow(CodecError);
  });
});

describe('bus binary codec: what it cannot read or write', () => {
  const records = fc.sample(fc.array(request, { minLength: 1, maxLength: 8 }), { numRuns: 1, seed: 7 })[0]!;
  const valid = requestsCodec.encode(records);

  function codecError(f: () => unknown): CodecError {
    try {
      f();
    } catch (err) {
      expect(err).toBeInstanceOf(CodecError);
      return err as CodecError;
    }
    throw new Error('expected a CodecError, nothing was thrown');
  }

  it('names an unknown format version', () => {
    for (const first of [0, 2, 0x7b, 0xff]) {
      const bytes = Buffer.from(valid);
      bytes[0] = first;
      const err = codecError(() => requestsCodec.decode(bytes));
      expect(err.code).toBe('CODEC_UNKNOWN_VERSION');
      expect(err.message).toContain(`format version ${first} `);
    }
    expect(codecError(() => requestsCodec.decode(Buffer.from('{"n":1}'))).code).toBe('CODEC_UNKNOWN_VERSION');
    expect(codecError(() => requestsCodec.decode(Buffer.alloc(0))).code).toBe('CODEC_MALFORMED');
  });

  it('refuses records of another topic', () => {
    const err = codecError(() => spansCodec.decode(valid));
    expect(err.code).toBe('CODEC_WRONG_KIND');
    expect(err.message).toContain('requests records where spans records belong');
  });

  it('refuses every truncation and trailing bytes of a valid message', () => {
    for (let end = 1; end < valid.length; end++) expect(codecError(() => requestsCodec.decode(valid.subarray(0, end))).code).toBe('CODEC_MALFORMED');
    expect(codecError(() => requestsCodec.decode(Buffer.concat([valid, Buffer.from([0])]))).code).toBe('CODEC_MALFORMED');
  });

  it('throws only CodecErrors on arbitrary bytes after a valid header', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.constantFrom(1, 2, 3), (tail, kind) => {
        const bytes = Buffer.concat([Buffer.from([BINARY_FORMAT_VERSION, kind]), tail]);
        for (const codec of [requestsCodec, flowsCodec, spansCodec] as Codec<unknown[]>[]) {
          try {
            codec.decode(bytes);
          } catch (err) {
            expect(err).toBeInstanceOf(CodecError);
          }
        }
      }),
      { numRuns: 500 },
    );
  });

  it('refuses a huge record count without allocating it', () => {
    const bytes = Buffer.from([BINARY_FORMAT_VERSION, 1, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    expect(codecError(() => requestsCodec.decode(bytes)).message).toContain('record count');
  });

  it('refuses to encode what is not a batch of records, naming the field', () => {
    const r = records[0]!;
    expect(codecError(() => requestsCodec.encode({} as never)).code).toBe('CODEC_BAD_RECORD');
    expect(codecError(() => requestsCodec.encode([null] as never)).code).toBe('CODEC_BAD_RECORD');
    expect(codecError(() => requestsCodec.encode([{ ...r, responseCode: '200' } as never])).message).toContain('responseCode is string, expected a number');
    expect(codecError(() => requestsCodec.encode([{ ...r, path: undefined } as never])).message).toContain('path is undefined, expected a string');
    expect(codecError(() => requestsCodec.encode([{ ...r, attributes: { a: 1 } } as never])).message).toContain('attributes.a is number');
    expect(codecError(() => spansCodec.encode([{ ...fc.sample(span, 1)[0]!, error: 0 } as never])).message).toContain('error is number, expected a boolean');
  });
});
