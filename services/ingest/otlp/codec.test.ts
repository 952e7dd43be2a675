import { readFileSync } from 'node:fs';
import path from 'node:path';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { JsonLogsSerializer, JsonTraceSerializer, ProtobufLogsSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { REJECT_REASONS, type Result } from '../../../lib/model';
import {
  anyValueToString,
  decodeExportLogsRequest,
  decodeExportLogsRequestJson,
  decodeExportTraceRequest,
  decodeExportTraceRequestJson,
  encodeExportLogsResponse,
  encodeExportLogsResponseJson,
  encodeExportTraceResponse,
  encodeExportTraceResponseJson,
  keyValuesToRecord,
  logRecordToOtlpJson,
  PROTO_FILES,
  PROTO_ROOT,
  type ExportLogsRequest,
  type ExportTraceRequest,
} from './codec';
import { sdkLogsJson, sdkLogsProtobuf, sdkTracesJson, sdkTracesProtobuf, type SdkLogResource, type SdkSpanResource } from '../../../test/support/otel-sdk';

const FIXTURES = path.join(__dirname, '../../../test/fixtures/otlp');
const fixture = (name: string): Buffer => readFileSync(path.join(FIXTURES, name));

function must<T>(r: Result<T>): T {
  if (!r.ok) throw new Error(`expected ok, got ${r.reason}: ${r.message}`);
  return r.value;
}

const LOGS: SdkLogResource[] = [
  {
    attributes: { log_name: 'otel_envoy_accesslog', cluster_name: 'httpbin.default' },
    logs: [
      {
        body: 'line one\n',
        timeUnixNano: '1669789437284677123',
        attributes: { pod: 'httpbin-847f64cc8d-rsfmj', retries: 2, offset: -5, sampled: true, ratio: 0.25 },
        traceId: '9a1c3e5f7b2d4f6a8c0e2a4c6e8f0b1d',
        spanId: 'c47e1a9b2d5f8036',
      },
      { body: { response_code: '503', upstream_cluster: 'outbound|80||x' }, timeUnixNano: '1669789437810077000' },
    ],
  },
  { attributes: { cluster_name: 'fortio.default' }, logs: [{ body: 'line three', timeUnixNano: '1669789437900000000' }] },
];

const SPANS: SdkSpanResource[] = [
  {
    attributes: { 'service.name': 'sleep.default' },
    spans: [
      {
        traceId: '71f86e637c9ad592296688596eea6ee8',
        spanId: 'cf77a1e7d50cfad8',
        name: 'httpbin:8000/*',
        kind: SpanKind.CLIENT,
        startTimeUnixNano: '1707149433975948000',
        endTimeUnixNano: '1707149433978480800',
        attributes: { upstream_cluster: 'outbound|8000|v1|httpbin.default.svc.cluster.local', 'http.status_code': '503' },
        status: SpanStatusCode.ERROR,
      },
    ],
  },
  {
    attributes: { 'service.name': 'httpbin.default' },
    spans: [
      {
        traceId: '71f86e637c9ad592296688596eea6ee8',
        spanId: '17adc8f2065d73ce',
        parentSpanId: 'cf77a1e7d50cfad8',
        name: 'httpbin.default.svc.cluster.local:8000/*',
        kind: SpanKind.SERVER,
        startTimeUnixNano: '1707149433976323100',
        endTimeUnixNano: '1707149433978102000',
        attributes: { 'http.response.status_code': 503 },
      },
    ],
  },
];

describe('vendored protos', () => {
  it('load with protobufjs from PROTO_ROOT, as the gRPC server will load them', () => {
    const root = new protobuf.Root();
    root.resolvePath = (_o, target) => path.join(PROTO_ROOT, target);
    root.loadSync(PROTO_FILES as string[]);
    expect(root.lookupService('opentelemetry.proto.collector.logs.v1.LogsService').methods.Export).toBeDefined();
    expect(root.lookupService('opentelemetry.proto.collector.trace.v1.TraceService').methods.Export).toBeDefined();
  });
});

describe('decodeExportLogsRequest (protobuf from the OTel JS SDK)', () => {
  const decoded = must(decodeExportLogsRequest(sdkLogsProtobuf(LOGS)));

  it('keeps resources, scopes and records in order', () => {
    expect(decoded.resourceLogs).toHaveLength(2);
    expect(keyValuesToRecord(decoded.resourceLogs[0]!.resource.attributes)).toEqual({
      log_name: 'otel_envoy_accesslog',
      cluster_name: 'httpbin.default',
    });
    expect(decoded.resourceLogs[0]!.scopeLogs[0]!.scope.name).toBe('envoy');
    expect(decoded.resourceLogs[0]!.scopeLogs[0]!.logRecords).toHaveLength(2);
    expect(decoded.resourceLogs[1]!.scopeLogs[0]!.logRecords).toHaveLength(1);
  });

  it('decodes 64-bit times exactly, ids as hex, and every AnyValue kind the SDK writes', () => {
    const [first, second] = decoded.resourceLogs[0]!.scopeLogs[0]!.logRecords;
    expect(first!.timeUnixNano).toBe(1669789437284677123n);
    expect(first!.traceId).toBe('9a1c3e5f7b2d4f6a8c0e2a4c6e8f0b1d');
    expect(first!.spanId).toBe('c47e1a9b2d5f8036');
    expect(first!.body).toEqual({ kind: 'string', value: 'line one\n' });
    const attrs = Object.fromEntries(first!.attributes.map((kv) => [kv.key, kv.value]));
    expect(attrs.pod).toEqual({ kind: 'string', value: 'httpbin-847f64cc8d-rsfmj' });
    expect(attrs.retries).toEqual({ kind: 'int', value: 2n });
    // int64 is signed: -5 arrives as a ten-byte varint.
    expect(attrs.offset).toEqual({ kind: 'int', value: -5n });
    expect(attrs.sampled).toEqual({ kind: 'bool', value: true });
    expect(attrs.ratio).toEqual({ kind: 'double', value: 0.25 });
    expect(second!.body.kind).toBe('kvlist');
    expect(anyValueToString(second!.body)).toBe('{"response_code":"503","upstream_cluster":"outbound|80||x"}');
    expect(second!.traceId).toBe('');
  });

  it('decodes the same request from OTLP/JSON (SDK JsonLogsSerializer) to the same value', () => {
    const json = must(decodeExportLogsRequestJson(sdkLogsJson(LOGS)));
    // observedTimeUnixNano is set by the SDK at emit time, so it differs between the two emits.
    const strip = (r: ExportLogsRequest) =>
      r.resourceLogs.map((rl) => ({ ...rl, scopeLogs: rl.scopeLogs.map((sl) => ({ ...sl, logRecords: sl.logRecords.map((l) => ({ ...l, observedTimeUnixNano: 0n })) })) }));
    expect(strip(json)).toEqual(strip(decoded));
  });
});

describe('decodeExportTraceRequest (protobuf from the OTel JS SDK)', () => {
  const decoded = must(decodeExportTraceRequest(sdkTracesProtobuf(SPANS)));

  it('decodes ids, kind, times, status and attributes', () => {
    const client = decoded.resourceSpans[0]!.scopeSpans[0]!.spans[0]!;
    expect(client).toMatchObject({
      traceId: '71f86e637c9ad592296688596eea6ee8',
      spanId: 'cf77a1e7d50cfad8',
      parentSpanId: '',
      kind: 3,
      startTimeUnixNano: 1707149433975948000n,
      endTimeUnixNano: 1707149433978480800n,
      status: { code: 2, message: '' },
    });
    expect(keyValuesToRecord(client.attributes)).toEqual({
      upstream_cluster: 'outbound|8000|v1|httpbin.default.svc.cluster.local',
      'http.status_code': '503',
    });
    const server = decoded.resourceSpans[1]!.scopeSpans[0]!.spans[0]!;
    expect(server).toMatchObject({ kind: 2, parentSpanId: 'cf77a1e7d50cfad8', spanId: '17adc8f2065d73ce' });
    expect(server.attributes[0]!.value).toEqual({ kind: 'int', value: 503n });
  });

  it('decodes the same request from OTLP/JSON (SDK JsonTraceSerializer) to the same value', () => {
    expect(must(decodeExportTraceRequestJson(sdkTracesJson(SPANS)))).toEqual(decoded);
  });
});

describe('OTLP/JSON specifics', () => {
  it('reads the opentelemetry-proto example (numbers for 64-bit times, uppercase hex ids, all AnyValue kinds)', () => {
    const r = must(decodeExportLogsRequestJson(fixture('opentelemetry-proto-examples-logs.json')));
    const rec = r.resourceLogs[0]!.scopeLogs[0]!.logRecords[0]!;
    expect(rec.invalid).toBeUndefined();
    expect(rec.timeUnixNano).toBe(1544712660300000000n);
    expect(rec.traceId).toBe('5b8efff798038103d269b633813fc60c');
    expect(rec.spanId).toBe('eee19b7ec3c1b174');
    expect(keyValuesToRecord(rec.attributes)).toEqual({
      'string.attribute': 'some string',
      'boolean.attribute': 'true',
      'int.attribute': '10',
      'double.attribute': '637.704',
      'array.attribute': '["many","values"]',
      'map.attribute': '{"some.map.key":"some value"}',
    });
    expect(r.resourceLogs[0]!.scopeLogs[0]!.scope).toEqual({
      name: 'my.library',
      version: '1.0.0',
      attributes: [{ key: 'my.scope.attribute', value: { kind: 'string', value: 'some scope attribute' } }],
    });
    const t = must(decodeExportTraceRequestJson(fixture('opentelemetry-proto-examples-trace.json')));
    expect(t.resourceSpans[0]!.scopeSpans[0]!.spans[0]).toMatchObject({
      traceId: '5b8efff798038103d269b633813fc60c',
      parentSpanId: 'eee19b7ec3c1b173',
      kind: 2,
      startTimeUnixNano: 1544712660000000000n,
      endTimeUnixNano: 1544712661000000000n,
    });
  });

  it('accepts snake_case (proto field names) the same as lowerCamelCase', () => {
    const snakeCase = (v: unknown): unknown =>
      Array.isArray(v)
        ? v.map(snakeCase)
        : v !== null && typeof v === 'object'
          ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase()), snakeCase(x)]))
          : v;
    const camel = JSON.parse(sdkTracesJson(SPANS).toString());
    expect(must(decodeExportTraceRequestJson(JSON.stringify(snakeCase(camel))))).toEqual(must(decodeExportTraceRequestJson(JSON.stringify(camel))));
    const logs = JSON.parse(fixture('opentelemetry-proto-examples-logs.json').toString());
    expect(JSON.stringify(snakeCase(logs))).toContain('"resource_logs"');
    expect(must(decodeExportLogsRequestJson(JSON.stringify(snakeCase(logs))))).toEqual(must(decodeExportLogsRequestJson(JSON.stringify(logs))));
  });

  it('accepts enum names and 64-bit values as strings or numbers, bytes as base64', () => {
    const body = {
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [
                {
                  traceId: '71f86e637c9ad592296688596eea6ee8',
                  spanId: 'cf77a1e7d50cfad8',
                  kind: 'SPAN_KIND_CLIENT',
                  startTimeUnixNano: 1707149433975948000,
                  endTimeUnixNano: '1707149433978480800',
                  status: { code: 'STATUS_CODE_ERROR' },
                  attributes: [
                    { key: 'big', value: { intValue: '9007199254740993' } },
                    { key: 'neg', value: { intValue: -5 } },
                    { key: 'raw', value: { bytesValue: 'AQID' } },
                    { key: 'nan', value: { doubleValue: 'NaN' } },
                  ],
                },
              ],
            },
          ],
        },
      ],
    };
    const span = must(decodeExportTraceRequestJson(JSON.stringify(body))).resourceSpans[0]!.scopeSpans[0]!.spans[0]!;
    expect(span.invalid).toBeUndefined();
    expect(span.kind).toBe(3);
    expect(span.status.code).toBe(2);
    expect(span.endTimeUnixNano).toBe(1707149433978480800n);
    expect(keyValuesToRecord(span.attributes)).toEqual({ big: '9007199254740993', neg: '-5', raw: 'AQID', nan: 'NaN' });
  });

  it('marks one malformed record and keeps its neighbours; the dead-letter raw is the record as received', () => {
    const bad = { timeUnixNano: 'yesterday', body: { stringValue: 'x' } };
    const body = { resourceLogs: [{ scopeLogs: [{ logRecords: [{ body: { stringValue: 'a' } }, bad, { attributes: [{ key: 1 }] }, 'nope'] }] }] };
    const recs = must(decodeExportLogsRequestJson(JSON.stringify(body))).resourceLogs[0]!.scopeLogs[0]!.logRecords;
    expect(recs.map((r) => r.invalid?.reason)).toEqual([undefined, 'invalid_timestamp', 'malformed_json', 'malformed_json']);
    expect(JSON.parse(logRecordToOtlpJson(recs[1]!))).toEqual(bad);
    expect(logRecordToOtlpJson(recs[3]!)).toBe('"nope"');
  });

  it('rejects bodies whose structure above the records is wrong', () => {
    expect(decodeExportLogsRequestJson('{"resourceLogs": {}}')).toMatchObject({ ok: false, reason: 'malformed_json' });
    expect(decodeExportLogsRequestJson('[1,2]')).toMatchObject({ ok: false, reason: 'malformed_json' });
    expect(decodeExportLogsRequestJson('{"resourceLogs":[{"scopeLogs":[7]}]}')).toMatchObject({ ok: false, reason: 'malformed_json' });
    expect(decodeExportTraceRequestJson('not json')).toMatchObject({ ok: false, reason: 'malformed_json' });
    expect(decodeExportTraceRequestJson('{"resourceSpans":[{"resource":"x"}]}')).toMatchObject({ ok: false, reason: 'malformed_json' });
  });

  it('the dead-letter raw of a record nested too deep to re-serialize is still JSON, cut at a depth, not "[object Object]"', () => {
    const depth = 20000;
    const deep = '{"arrayValue":{"values":['.repeat(depth) + ']}}'.repeat(depth);
    const body = `{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityText":"keep","body":${deep}}]}]}]}`;
    const rec = must(decodeExportLogsRequestJson(body)).resourceLogs[0]!.scopeLogs[0]!.logRecords[0]!;
    expect(rec.invalid?.reason).toBe('malformed_json');
    const raw = logRecordToOtlpJson(rec);
    expect(raw).not.toBe('[object Object]');
    const parsed = JSON.parse(raw) as { severityText: string };
    expect(parsed.severityText).toBe('keep');
    expect(raw).toContain('nested deeper than');
  });

  it('invalid UTF-8 in a JSON string becomes U+FFFD and the record is kept, as in the protobuf decoder', () => {
    // Envoy copies request headers (obs-text bytes) into access logs as they came; refusing a whole export for
    // one byte would lose every other record in it, so meshlens decodes like Go's encoding/json (and WHATWG).
    const body = Buffer.concat([Buffer.from('{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"ua '), Buffer.from([0xff, 0xc3]), Buffer.from('"}}]}]}]}')]);
    const rec = must(decodeExportLogsRequestJson(body)).resourceLogs[0]!.scopeLogs[0]!.logRecords[0]!;
    expect(rec.invalid).toBeUndefined();
    expect(rec.body).toEqual({ kind: 'string', value: 'ua \ufffd\ufffd' });
  });

  it('stops at deeply nested AnyValues instead of exhausting the stack', () => {
    const depth = 2000;
    const deep = '{"arrayValue":{"values":['.repeat(depth) + '{"stringValue":"leaf"}' + ']}}'.repeat(depth);
    const body = `{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":${deep}},{"body":{"stringValue":"ok"}}]}]}]}`;
    const recs = must(decodeExportLogsRequestJson(body)).resourceLogs[0]!.scopeLogs[0]!.logRecords;
    expect(recs[0]!.invalid?.reason).toBe('malformed_json');
    expect(recs[1]!.invalid).toBeUndefined();
  });
});

describe('OTLP/JSON shapes meshlens does not read are rejected, never answered as an empty export', () => {
  const lines = (name: string): string[] => fixture(name).toString('utf8').trim().split('\n');
  const rejection = (r: Result<unknown>): { reason: string; message: string } => {
    if (r.ok) throw new Error('expected a rejection, got ok');
    return { reason: r.reason, message: r.message };
  };

  it('real pre-1.0 exports (the spec\'s file-exporter examples: instrumentationLibraryLogs/Spans, logs) are unsupported_record', () => {
    for (const line of lines('otel-spec-json-file-pre-1.0-logs.jsonl')) {
      const r = rejection(decodeExportLogsRequestJson(line));
      expect(r.reason).toBe('unsupported_record');
      // The message names the field that was found and what to send instead.
      expect(r.message).toContain('resourceLogs[0].instrumentationLibraryLogs');
      expect(r.message).toContain('scopeLogs');
    }
    for (const line of lines('otel-spec-json-file-pre-1.0-traces.jsonl')) {
      const r = rejection(decodeExportTraceRequestJson(line));
      expect(r.reason).toBe('unsupported_record');
      expect(r.message).toContain('resourceSpans[0].instrumentationLibrarySpans');
      expect(r.message).toContain('scopeSpans');
    }
  });

  it('the transitional shape (instrumentationLibraryLogs holding logRecords, a .NET export) is rejected too', () => {
    const r = rejection(decodeExportLogsRequestJson(fixture('collector-contrib-azureblob-dotnet-pre-1.0-logs.json')));
    expect(r.reason).toBe('unsupported_record');
    expect(r.message).toContain('instrumentationLibraryLogs');
    const snake = '{"resource_logs":[{"instrumentation_library_logs":[{"log_records":[{}]}]}]}';
    expect(rejection(decodeExportLogsRequestJson(snake)).message).toContain('resource_logs[0].instrumentation_library_logs');
  });

  it('pre-1.0 names inside a scope entry (instrumentationLibrary, logs) are unsupported_record, named with their path', () => {
    const lib = rejection(decodeExportLogsRequestJson('{"resourceLogs":[{"scopeLogs":[{"logRecords":[]},{"instrumentationLibrary":{"name":"x"},"logRecords":[{}]}]}]}'));
    expect(lib).toMatchObject({ reason: 'unsupported_record' });
    expect(lib.message).toContain('resourceLogs[0].scopeLogs[1].instrumentationLibrary');
    const logs = rejection(decodeExportLogsRequestJson('{"resourceLogs":[{"scopeLogs":[{"logs":[{"body":{"stringValue":"x"}}]}]}]}'));
    expect(logs).toMatchObject({ reason: 'unsupported_record' });
    expect(logs.message).toContain('resourceLogs[0].scopeLogs[0].logs');
    expect(logs.message).toContain('logRecords');
    const spans = rejection(decodeExportTraceRequestJson('{"resourceSpans":[{"scopeSpans":[{"instrumentation_library":{},"spans":[]}]}]}'));
    expect(spans).toMatchObject({ reason: 'unsupported_record' });
  });

  it('an empty pre-1.0 list carries nothing and is ignored next to the 1.x one', () => {
    const r = must(decodeExportLogsRequestJson('{"resourceLogs":[{"instrumentationLibraryLogs":[],"scopeLogs":[{"logRecords":[{"body":{"stringValue":"x"}}]}]}]}'));
    expect(r.resourceLogs[0]!.scopeLogs[0]!.logRecords).toHaveLength(1);
  });

  it('another signal on the wrong endpoint is unsupported_record, saying where it belongs', () => {
    const spansToLogs = rejection(decodeExportLogsRequestJson(sdkTracesJson(SPANS)));
    expect(spansToLogs.reason).toBe('unsupported_record');
    expect(spansToLogs.message).toContain('resourceSpans');
    expect(spansToLogs.message).toContain('/v1/traces');
    const logsToTraces = rejection(decodeExportTraceRequestJson(sdkLogsJson(LOGS)));
    expect(logsToTraces.reason).toBe('unsupported_record');
    expect(logsToTraces.message).toContain('/v1/logs');
    const metrics = rejection(decodeExportLogsRequestJson('{"resourceMetrics":[{"scopeMetrics":[]}]}'));
    expect(metrics.reason).toBe('unsupported_record');
    expect(metrics.message).toContain('metrics');
  });

  it('an object with none of the known fields is malformed_json naming its keys; __proto__ is only a key', () => {
    const foo = rejection(decodeExportLogsRequestJson('{"foo":1,"bar":[2]}'));
    expect(foo.reason).toBe('malformed_json');
    expect(foo.message).toContain('resourceLogs');
    expect(foo.message).toContain('foo');
    const proto = rejection(decodeExportLogsRequestJson('{"__proto__":{"resourceLogs":[{"scopeLogs":[{"logRecords":[{}]}]}]}}'));
    expect(proto.reason).toBe('malformed_json');
    expect(proto.message).toContain('__proto__');
    expect(rejection(decodeExportTraceRequestJson('{"data":{"spans":[]}}')).reason).toBe('malformed_json');
  });

  it('a resource or scope entry holding only unknown fields is malformed_json', () => {
    const res = rejection(decodeExportLogsRequestJson('{"resourceLogs":[{"scopeLogs":[]},{"records":[{"body":{"stringValue":"x"}}]}]}'));
    expect(res.reason).toBe('malformed_json');
    expect(res.message).toContain('resourceLogs[1]');
    expect(res.message).toContain('records');
    const scope = rejection(decodeExportTraceRequestJson('{"resourceSpans":[{"scopeSpans":[{"span":[{}]}]}]}'));
    expect(scope.reason).toBe('malformed_json');
    expect(scope.message).toContain('resourceSpans[0].scopeSpans[0]');
  });

  it('empty exports stay empty exports, and unknown fields next to known ones are ignored (OTLP forward compatibility)', () => {
    for (const body of ['{}', '{"resourceLogs":[]}', '{"resourceLogs":null}', '{"resourceLogs":[{}]}', '{"resourceLogs":[{"scopeLogs":[{}]}]}']) {
      expect(must(decodeExportLogsRequestJson(body)).resourceLogs.every((rl) => rl.scopeLogs.every((sl) => sl.logRecords.length === 0))).toBe(true);
    }
    expect(must(decodeExportTraceRequestJson('{"resourceSpans":[]}'))).toEqual({ resourceSpans: [] });
    const future = must(decodeExportLogsRequestJson('{"futureTop":1,"resourceLogs":[{"futureRes":2,"scopeLogs":[{"futureScope":3,"logRecords":[{"body":{"stringValue":"x"}}]}]}]}'));
    expect(future.resourceLogs[0]!.scopeLogs[0]!.logRecords).toHaveLength(1);
  });
});

describe('OTLP/JSON numbers outside their protobuf type', () => {
  const attrRecord = (value: unknown): ReturnType<typeof decodeExportLogsRequestJson> =>
    decodeExportLogsRequestJson(JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ attributes: [{ key: 'n', value: { intValue: value } }] }] }] }] }));
  const first = (r: ReturnType<typeof decodeExportLogsRequestJson>) => must(r).resourceLogs[0]!.scopeLogs[0]!.logRecords[0]!;

  it('an intValue outside int64 is invalid_number, not wrapped around', () => {
    for (const v of ['9999999999999999999', '-9223372036854775809', '9223372036854775808', 1e19]) {
      expect(first(attrRecord(v)).invalid).toMatchObject({ reason: 'invalid_number' });
    }
    expect(first(attrRecord('9223372036854775807')).attributes[0]!.value).toEqual({ kind: 'int', value: 9223372036854775807n });
    expect(first(attrRecord('-9223372036854775808')).attributes[0]!.value).toEqual({ kind: 'int', value: -9223372036854775808n });
  });

  it('a time beyond uint64 is invalid_timestamp', () => {
    const at = (t: unknown) => first(decodeExportLogsRequestJson(JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ timeUnixNano: t }] }] }] })));
    expect(at('99999999999999999999').invalid).toMatchObject({ reason: 'invalid_timestamp' });
    expect(at(1e20).invalid).toMatchObject({ reason: 'invalid_timestamp' });
    expect(at('18446744073709551615').timeUnixNano).toBe(18446744073709551615n);
  });
});

describe('protobuf failures', () => {
  it('garbage is malformed_protobuf, with a message', () => {
    const r = decodeExportLogsRequest(Buffer.from('this is not protobuf at all'));
    expect(r).toMatchObject({ ok: false, reason: 'malformed_protobuf' });
    expect(!r.ok && r.message.length).toBeGreaterThan(0);
    expect(decodeExportTraceRequest(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f]))).toMatchObject({ ok: false, reason: 'malformed_protobuf' });
  });

  it('a truncated SDK body is malformed_protobuf', () => {
    const full = sdkLogsProtobuf(LOGS);
    expect(decodeExportLogsRequest(full.subarray(0, full.length - 3))).toMatchObject({ ok: false, reason: 'malformed_protobuf' });
  });

  it('a record with AnyValues nested past the limit is marked invalid; the others decode', () => {
    // Arrays cost two message levels each, so 40 of them stay under protobufjs's own limit of 100 levels.
    let deep: unknown = 'leaf';
    for (let i = 0; i < 40; i++) deep = [deep];
    const body = sdkLogsProtobuf([{ attributes: {}, logs: [{ body: { v: deep } as never, timeUnixNano: '1' }, { body: 'fine', timeUnixNano: '2' }] }]);
    const recs = must(decodeExportLogsRequest(body)).resourceLogs[0]!.scopeLogs[0]!.logRecords;
    expect(recs[0]!.invalid?.reason).toBe('malformed_protobuf');
    expect(recs[1]).toMatchObject({ body: { kind: 'string', value: 'fine' }, timeUnixNano: 2n });
  });

  it("a message nested past protobufjs's limit (100 levels, protoc's default) fails the body", () => {
    let deep: Record<string, unknown> = { leaf: 'x' };
    for (let i = 0; i < 40; i++) deep = { nested: deep };
    const body = sdkLogsProtobuf([{ attributes: {}, logs: [{ body: deep as never, timeUnixNano: '1' }] }]);
    expect(decodeExportLogsRequest(body)).toMatchObject({ ok: false, reason: 'malformed_protobuf' });
  });

  it('an empty body is an empty request (protobuf has no framing to break)', () => {
    expect(must(decodeExportLogsRequest(Buffer.alloc(0)))).toEqual({ resourceLogs: [] });
  });
});

describe('protobuf shapes meshlens does not read are rejected, never answered as an empty export', () => {
  // Raw wire bytes, written field by field, so the tests do not depend on a schema that knows these shapes.
  const len = (field: number, bytes: Uint8Array): Uint8Array => protobuf.Writer.create().uint32((field << 3) | 2).bytes(bytes).finish();
  const varint = (field: number, n: number): Uint8Array => protobuf.Writer.create().uint32(field << 3).uint32(n).finish();
  const cat = (...parts: Uint8Array[]): Buffer => Buffer.concat(parts);
  const stringValue = (s: string): Uint8Array => len(1, Buffer.from(s));
  // LogRecord{time_unix_nano (fixed64, field 1), body (field 5)}.
  const logRecord = cat(protobuf.Writer.create().uint32((1 << 3) | 1).fixed64(1707149433975948000).finish(), len(5, stringValue('GET / 200')));
  const scopeLogs = (...records: Uint8Array[]): Buffer => cat(...records.map((r) => len(2, r)));
  const rejection = (r: Result<unknown>): { reason: string; message: string } => {
    if (r.ok) throw new Error('expected a rejection, got ok');
    return { reason: r.reason, message: r.message };
  };

  it('the pre-1.0 instrumentation_library_logs/spans (field 1000 of ResourceLogs/ResourceSpans) is unsupported_record', () => {
    const legacy = cat(len(1, cat(len(1000, scopeLogs(logRecord)))));
    const r = rejection(decodeExportLogsRequest(legacy));
    expect(r.reason).toBe('unsupported_record');
    expect(r.message).toContain('instrumentation_library_logs');
    expect(r.message).toContain('1000');
    expect(r.message).toContain('scope_logs');
    // Next to a 1.x scope_logs it is still refused: the records in it would be lost without a word.
    expect(rejection(decodeExportLogsRequest(cat(len(1, cat(len(2, scopeLogs(logRecord)), len(1000, scopeLogs(logRecord)))))))).toMatchObject({
      reason: 'unsupported_record',
    });
    const spans = rejection(decodeExportTraceRequest(cat(len(1, len(1000, len(2, len(1, Buffer.alloc(16, 1))))))));
    expect(spans.reason).toBe('unsupported_record');
    expect(spans.message).toContain('instrumentation_library_spans');
  });

  it('a trace export sent to the logs decoder, and the other way round, is malformed_protobuf naming the wire type', () => {
    const tracesToLogs = rejection(decodeExportLogsRequest(sdkTracesProtobuf(SPANS)));
    expect(tracesToLogs.reason).toBe('malformed_protobuf');
    expect(tracesToLogs.message).toContain('wire type');
    const logsToTraces = rejection(decodeExportTraceRequest(sdkLogsProtobuf(LOGS)));
    expect(logsToTraces.reason).toBe('malformed_protobuf');
    expect(logsToTraces.message).toContain('wire type');
  });

  it('bytes that hold only unknown fields, at the top or in a resource or scope entry, are malformed_protobuf', () => {
    expect(rejection(decodeExportLogsRequest(cat(varint(5, 1))))).toMatchObject({ reason: 'malformed_protobuf' });
    expect(rejection(decodeExportTraceRequest(cat(varint(5, 1), len(9, Buffer.from('x')))))).toMatchObject({ reason: 'malformed_protobuf' });
    const resource = rejection(decodeExportLogsRequest(cat(len(1, cat(varint(9, 1))))));
    expect(resource.reason).toBe('malformed_protobuf');
    expect(resource.message).toContain('ResourceLogs');
    const scope = rejection(decodeExportLogsRequest(cat(len(1, len(2, cat(len(7, logRecord)))))));
    expect(scope.reason).toBe('malformed_protobuf');
    expect(scope.message).toContain('ScopeLogs');
  });

  it('empty messages stay empty exports; unknown fields next to known ones are ignored (proto3 forward compatibility)', () => {
    expect(must(decodeExportLogsRequest(cat(len(1, Buffer.alloc(0)))))).toEqual({ resourceLogs: [{ resource: { attributes: [] }, schemaUrl: '', scopeLogs: [] }] });
    const future = must(decodeExportLogsRequest(cat(varint(7, 1), len(1, cat(varint(9, 1), len(2, cat(varint(8, 2), scopeLogs(logRecord))))))));
    expect(future.resourceLogs[0]!.scopeLogs[0]!.logRecords[0]!.body).toEqual({ kind: 'string', value: 'GET / 200' });
  });

  it('strings with invalid UTF-8 decode the same from a Buffer and a Uint8Array (U+FFFD, never a lone surrogate)', () => {
    const bad = Buffer.from([0x61, 0xed, 0xa0, 0x80, 0x62]);
    const body = cat(len(1, len(2, len(2, len(5, len(1, bad))))));
    const fromBuffer = must(decodeExportLogsRequest(body)).resourceLogs[0]!.scopeLogs[0]!.logRecords[0]!.body;
    const fromArray = must(decodeExportLogsRequest(new Uint8Array(body))).resourceLogs[0]!.scopeLogs[0]!.logRecords[0]!.body;
    expect(fromBuffer).toEqual({ kind: 'string', value: 'a\ufffd\ufffd\ufffdb' });
    expect(fromArray).toEqual(fromBuffer);
  });
});

describe('response encoders', () => {
  it('partialSuccess decodes with the SDK serializers', () => {
    const logs = ProtobufLogsSerializer.deserializeResponse(encodeExportLogsResponse({ rejectedLogRecords: 3, errorMessage: 'record 2: unknown_layout' }));
    expect(Number(logs.partialSuccess?.rejectedLogRecords)).toBe(3);
    expect(logs.partialSuccess?.errorMessage).toBe('record 2: unknown_layout');
    const traces = ProtobufTraceSerializer.deserializeResponse(encodeExportTraceResponse({ rejectedSpans: 1, errorMessage: 'span 1: invalid_field' }));
    expect(Number(traces.partialSuccess?.rejectedSpans)).toBe(1);
    expect(traces.partialSuccess?.errorMessage).toBe('span 1: invalid_field');
  });

  it('full success leaves partialSuccess unset (an empty message)', () => {
    const buf = encodeExportLogsResponse({ rejectedLogRecords: 0, errorMessage: '' });
    expect(buf.length).toBe(0);
    expect(ProtobufLogsSerializer.deserializeResponse(buf).partialSuccess).toBeFalsy();
    expect(encodeExportTraceResponse({ rejectedSpans: 0, errorMessage: '' }).length).toBe(0);
  });

  it('a warning with nothing rejected is still sent (the spec allows error_message with rejected = 0)', () => {
    const r = ProtobufLogsSerializer.deserializeResponse(encodeExportLogsResponse({ rejectedLogRecords: 0, errorMessage: 'note' }));
    expect(r.partialSuccess?.errorMessage).toBe('note');
  });

  it('JSON responses decode with the SDK JSON serializers', () => {
    expect(JsonLogsSerializer.deserializeResponse(encodeExportLogsResponseJson({ rejectedLogRecords: 2, errorMessage: 'x' }))).toEqual({
      partialSuccess: { rejectedLogRecords: 2, errorMessage: 'x' },
    });
    expect(JsonTraceSerializer.deserializeResponse(encodeExportTraceResponseJson({ rejectedSpans: 0, errorMessage: '' }))).toEqual({});
  });
});

describe('decoders never throw (fast-check)', () => {
  const reasons = new Set<string>(REJECT_REASONS);
  const wellFormed = (r: Result<ExportLogsRequest | ExportTraceRequest>): void => {
    if (!r.ok) {
      expect(reasons.has(r.reason)).toBe(true);
      expect(r.message.length).toBeGreaterThan(0);
    }
  };
  const logsBody = sdkLogsProtobuf(LOGS);
  const traceBody = sdkTracesProtobuf(SPANS);

  it('random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        const b = Buffer.from(bytes);
        wellFormed(decodeExportLogsRequest(b));
        wellFormed(decodeExportTraceRequest(b));
        wellFormed(decodeExportLogsRequestJson(b));
        wellFormed(decodeExportTraceRequestJson(b));
      }),
      { numRuns: 300 },
    );
  });

  it('truncated and mutated valid protobuf', () => {
    fc.assert(
      fc.property(fc.nat(), fc.nat(), fc.integer({ min: 0, max: 255 }), fc.boolean(), (cut, at, byte, truncate) => {
        for (const [body, decode] of [
          [logsBody, decodeExportLogsRequest],
          [traceBody, decodeExportTraceRequest],
        ] as const) {
          const b = Buffer.from(body);
          if (truncate) {
            wellFormed(decode(b.subarray(0, cut % b.length)));
          } else {
            b[at % b.length] = byte;
            wellFormed(decode(b));
          }
        }
      }),
      { numRuns: 400 },
    );
  });

  it('random JSON, and OTLP-shaped JSON with random leaves', () => {
    const leaf = fc.jsonValue({ maxDepth: 3 });
    const record = fc.dictionary(
      fc.constantFrom('timeUnixNano', 'body', 'attributes', 'traceId', 'spanId', 'kind', 'startTimeUnixNano', 'status', 'flags', 'severityNumber'),
      leaf,
    );
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), fc.array(record, { maxLength: 4 }), (anyJson, records) => {
        wellFormed(decodeExportLogsRequestJson(JSON.stringify(anyJson)));
        wellFormed(decodeExportTraceRequestJson(JSON.stringify(anyJson)));
        const logs = decodeExportLogsRequestJson(JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: records }] }] }));
        expect(logs.ok).toBe(true);
        for (const rec of logs.ok ? logs.value.resourceLogs[0]!.scopeLogs[0]!.logRecords : []) {
          if (rec.invalid) {
            expect(reasons.has(rec.invalid.reason)).toBe(true);
            expect(rec.invalid.message.length).toBeGreaterThan(0);
          }
        }
        const spans = decodeExportTraceRequestJson(JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: records }] }] }));
        expect(spans.ok).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});
