/**
 * Valid and hostile bodies for every receiver of the fault suite, and how to find a valid record again through
 * the query API. Valid OTLP bodies come from the OpenTelemetry JS SDK's own serializers (encoded independently
 * of meshlens); hostile ones are built by hand, since no honest client produces them.
 */
import { randomBytes } from 'node:crypto';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { SpanKind } from '@opentelemetry/api';
import { sdkLogsJson, sdkLogsProtobuf, sdkTracesJson, sdkTracesProtobuf } from '../support/otel-sdk';
import type { FlowsAnswer, GraphAnswer } from '../../services/aggregator';
import { istioJsonLine, istioTextLine, request, requestId, type Meshlens, type Period } from './support';

// ---------------------------------------------------------------------------------------------------------
// Valid records, one per receiver, each for a destination service of its own so it can be counted apart
// ---------------------------------------------------------------------------------------------------------

/** A Hubble flow (`hubble observe -o json`, as test/fixtures/flows/hubble.ndjson) from cart to `service` in `shop`. */
export function hubbleFlow(service: string, timeMs: number, verdict: 'FORWARDED' | 'DROPPED' = 'FORWARDED'): string {
  const time = new Date(timeMs).toISOString();
  return JSON.stringify({
    flow: {
      time,
      verdict,
      ...(verdict === 'DROPPED' ? { drop_reason_desc: 'POLICY_DENIED' } : {}),
      Type: 'L3_L4',
      IP: { source: '10.1.3.15', destination: '10.1.4.22', ipVersion: 'IPv4' },
      l4: { TCP: { source_port: 53122, destination_port: 7070, flags: { SYN: true } } },
      source: { identity: 40112, namespace: 'shop', labels: ['k8s:app=cart'], pod_name: 'cart-7b9c6d5f4-q8w2e' },
      destination: { identity: 40987, namespace: 'shop', labels: [`k8s:app=${service}`], pod_name: `${service}-6d9f7c8b5-x2k4p` },
      traffic_direction: 'INGRESS',
      node_name: 'prod/worker-2',
    },
    node_name: 'prod/worker-2',
    time,
  });
}

/** A client span from productpage to `service` (Envoy's tags), in OTLP (SDK) form. */
function sdkClientSpan(service: string, startMs: number) {
  const ns = BigInt(startMs) * 1_000_000n;
  return [
    {
      attributes: { 'service.name': 'productpage.default' },
      spans: [
        {
          traceId: randomBytes(16).toString('hex'),
          spanId: randomBytes(8).toString('hex'),
          name: `${service}.default.svc.cluster.local:9080/*`,
          kind: SpanKind.CLIENT,
          startTimeUnixNano: String(ns),
          endTimeUnixNano: String(ns + 23_000_000n),
          attributes: {
            upstream_cluster: `outbound|9080|v1|${service}.default.svc.cluster.local`,
            'http.status_code': '200',
            'guid:x-request-id': requestId('span'),
          },
        },
      ],
    },
  ];
}

/** The same client span as Envoy's Zipkin tracer posts it. */
export function zipkinSpans(service: string, startMs: number): string {
  return JSON.stringify([
    {
      traceId: randomBytes(16).toString('hex'),
      id: randomBytes(8).toString('hex'),
      kind: 'CLIENT',
      name: `${service}.default.svc.cluster.local:9080/*`,
      timestamp: startMs * 1000,
      duration: 23_000,
      localEndpoint: { serviceName: 'productpage.default', ipv4: '10.1.3.15' },
      tags: {
        component: 'proxy',
        upstream_cluster: `outbound|9080|v1|${service}.default.svc.cluster.local`,
        'http.status_code': '200',
        'guid:x-request-id': requestId('zipkin'),
      },
    },
  ]);
}

/** OTLP logs whose body is the Envoy access-log line, as Istio's `envoyOtelAls` provider sends them. */
function sdkLogs(service: string, startMs: number) {
  return [
    {
      attributes: { 'k8s.pod.name': 'productpage-v1-6b746f74dc-9stvs', 'k8s.namespace.name': 'default' },
      logs: [{ body: istioTextLine({ requestId: requestId('otlp'), startMs, service }) + '\n' }],
    },
  ];
}

export const otlpLogsProtobuf = (service: string, startMs: number): Buffer => sdkLogsProtobuf(sdkLogs(service, startMs));
export const otlpLogsJson = (service: string, startMs: number): Buffer => sdkLogsJson(sdkLogs(service, startMs));
export const otlpTracesProtobuf = (service: string, startMs: number): Buffer => sdkTracesProtobuf(sdkClientSpan(service, startMs));
export const otlpTracesJson = (service: string, startMs: number): Buffer => sdkTracesJson(sdkClientSpan(service, startMs));
export const accessLogBody = (service: string, startMs: number): string => istioJsonLine({ requestId: requestId('line'), startMs, service }) + '\n';

// ---------------------------------------------------------------------------------------------------------
// Reading them back
// ---------------------------------------------------------------------------------------------------------

const range = (p: Period): string => `from=${p.fromMs}&to=${p.toMs}`;

/** Spans stored for calls to `service`: `/api/v1/graph` edges that traces alone saw. */
export async function storedSpanCalls(m: Meshlens, service: string, p: Period, headers: Record<string, string> = {}): Promise<number> {
  const res = await request(`${m.base}/api/v1/graph?${range(p)}&service=${service}`, { headers });
  if (res.status !== 200) throw new Error(`/api/v1/graph answered ${res.status}: ${res.text().slice(0, 300)}`);
  const edges = res.json<GraphAnswer>().edges;
  return edges.filter((e) => e.from === 'spans' && e.target.endsWith(`/${service}`)).reduce((n, e) => n + e.requests, 0);
}

/** Flows stored towards `service` (allowed and denied): `/api/v1/flows`. */
export async function storedFlows(m: Meshlens, service: string, p: Period, headers: Record<string, string> = {}): Promise<number> {
  const res = await request(`${m.base}/api/v1/flows?${range(p)}&service=${service}`, { headers });
  if (res.status !== 200) throw new Error(`/api/v1/flows answered ${res.status}: ${res.text().slice(0, 300)}`);
  const flows = res.json<FlowsAnswer>().flows;
  return flows.filter((f) => f.destination.service === service).reduce((n, f) => n + f.allowed + f.denied, 0);
}

// ---------------------------------------------------------------------------------------------------------
// Hostile bodies
// ---------------------------------------------------------------------------------------------------------

/** Deterministic bytes (mulberry32): the same "random" body every run, so a failure can be replayed. */
export function seededBytes(n: number, seed = 0x9e3779b9): Buffer {
  const out = Buffer.alloc(n);
  let a = seed >>> 0;
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) & 0xff;
  }
  // 0xff first: as a protobuf tag it has wire type 7, which does not exist, so no decoder can take the body
  // as a (possibly empty) valid message by luck.
  out[0] = 0xff;
  return out;
}

/** A gzip stream cut in the middle: the decoder hits the end before the stream's end. */
export function truncatedGzip(body: string | Buffer): Buffer {
  const gz = gzipSync(body);
  return gz.subarray(0, Math.floor(gz.length / 2));
}

/** A few KiB of gzip that inflate to `bytes` (spaces): over the body limit once decompressed, not before. */
export function gzipBomb(bytes: number): Buffer {
  return gzipSync(Buffer.alloc(bytes, 0x20), { level: 9 });
}

export const brotli = (body: string | Buffer): Buffer => brotliCompressSync(body);

/** JSON arrays nested `depth` deep: valid JSON that a recursive decoder cannot walk. */
export const deepArrays = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth);

/** An OTLP/JSON logs request whose one record's body is an AnyValue nested `depth` deep (kvlistValue in kvlistValue). */
export function deepOtlpLogsJson(depth: number): string {
  return (
    '{"resourceLogs":[{"resource":{"attributes":[]},"scopeLogs":[{"logRecords":[{"body":' +
    '{"kvlistValue":{"values":[{"key":"a","value":'.repeat(depth) +
    '{"stringValue":"x"}' +
    '}]}}'.repeat(depth) +
    '}]}]}]}'
  );
}

/** The same for traces: one span whose attribute value nests `depth` deep. */
export function deepOtlpTracesJson(depth: number): string {
  return (
    '{"resourceSpans":[{"resource":{"attributes":[]},"scopeSpans":[{"spans":[{"traceId":"9a1c3e5f7b2d4f6a8c0e2a4c6e8f0b1d","spanId":"c47e1a9b2d5f8036",' +
    '"name":"x","kind":3,"startTimeUnixNano":"1","endTimeUnixNano":"2","attributes":[{"key":"deep","value":' +
    '{"kvlistValue":{"values":[{"key":"a","value":'.repeat(depth) +
    '{"stringValue":"x"}' +
    '}]}}'.repeat(depth) +
    '}]}]}]}]}'
  );
}

function varint(n: number): Buffer {
  const bytes: number[] = [];
  while (n > 0x7f) {
    bytes.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  bytes.push(n);
  return Buffer.from(bytes);
}

/** A protobuf length-delimited field. */
function ld(field: number, payload: Buffer): Buffer {
  return Buffer.concat([varint((field << 3) | 2), varint(payload.length), payload]);
}

/**
 * An ExportLogsServiceRequest (protobuf) whose one log record's body is an AnyValue nested `depth` deep:
 * AnyValue.kvlist_value(6) → KeyValueList.values(1) → KeyValue{key(1), value(2)} → AnyValue...
 */
export function deepOtlpLogsProtobuf(depth: number): Buffer {
  let value = ld(1, Buffer.from('x')); // AnyValue.string_value
  const key = ld(1, Buffer.from('a'));
  for (let i = 0; i < depth; i++) value = ld(6, ld(1, Buffer.concat([key, ld(2, value)])));
  const logRecord = ld(5, value); // LogRecord.body
  const scopeLogs = ld(2, logRecord); // ScopeLogs.log_records
  const resourceLogs = ld(2, scopeLogs); // ResourceLogs.scope_logs
  return ld(1, resourceLogs); // ExportLogsServiceRequest.resource_logs
}

/** A length-delimited field whose length runs past the end of the body: protobuf no decoder can finish. */
export const truncatedProtobuf = (): Buffer => Buffer.concat([Buffer.from([0x0a]), varint(4096), Buffer.from('short')]);

/**
 * `__proto__` keys that carry a whole valid record one level down. JSON.parse makes `__proto__` an own key,
 * so a decoder that walks objects the right way sees no fields at all; one that merges with `Object.assign`,
 * spreads or reads through the prototype chain sees the smuggled record and would take it.
 */
export function protoSmuggledLine(service: string, startMs: number): string {
  return `{"__proto__":${istioJsonLine({ requestId: requestId('proto'), startMs, service })}}`;
}

export function protoSmuggledFlow(service: string, startMs: number): string {
  return `{"__proto__":${hubbleFlow(service, startMs)}}`;
}

export function protoSmuggledOtlpLogs(service: string, startMs: number): string {
  const line = JSON.stringify(istioTextLine({ requestId: requestId('proto'), startMs, service }));
  return `{"resourceLogs":[{"resource":{"attributes":[]},"scopeLogs":[{"logRecords":[{"__proto__":{"body":{"stringValue":${line}}}}]}]}]}`;
}

export function protoSmuggledOtlpTraces(service: string, startMs: number): string {
  const json = JSON.parse(otlpTracesJson(service, startMs).toString()) as { resourceSpans: { scopeSpans: { spans: unknown[] }[] }[] };
  const span = JSON.stringify(json.resourceSpans[0]!.scopeSpans[0]!.spans[0]);
  return `{"resourceSpans":[{"resource":{"attributes":[]},"scopeSpans":[{"spans":[{"__proto__":${span}}]}]}]}`;
}

export function protoSmuggledZipkin(service: string, startMs: number): string {
  const span = (JSON.parse(zipkinSpans(service, startMs)) as unknown[])[0];
  return `[{"__proto__":${JSON.stringify(span)}}]`;
}

/**
 * OTLP/JSON as exporters before OTLP 1.0 wrote it: `instrumentationLibraryLogs`/`instrumentationLibrarySpans`
 * (renamed `scopeLogs`/`scopeSpans` in opentelemetry-proto v0.15, deleted in v0.19), with the records under
 * `logs` (the OTel spec's file-exporter example, test/fixtures/otlp/otel-spec-json-file-pre-1.0-logs.jsonl) or
 * `logRecords` (the .NET exporter's, collector-contrib-azureblob-dotnet-pre-1.0-logs.json). A decoder that only
 * knows some of these names sees no records and answers `{}`, 200, having dropped everything without a word.
 */
export function preOneZeroLogs(service: string, startMs: number, records: 'logs' | 'logRecords'): string {
  const line = istioTextLine({ requestId: requestId('pre10'), startMs, service });
  return JSON.stringify({ resourceLogs: [{ resource: { attributes: [] }, instrumentationLibraryLogs: [{ instrumentationLibrary: {}, [records]: [{ body: { stringValue: line } }] }] }] });
}

export function preOneZeroTraces(service: string, startMs: number): string {
  const json = JSON.parse(otlpTracesJson(service, startMs).toString()) as { resourceSpans: { resource: unknown; scopeSpans: { spans: unknown[] }[] }[] };
  const rs = json.resourceSpans[0]!;
  return JSON.stringify({ resourceSpans: [{ resource: rs.resource, instrumentationLibrarySpans: [{ instrumentationLibrary: {}, spans: rs.scopeSpans[0]!.spans }] }] });
}

/** A valid Istio JSON line padded past the access-log line limit (64 KiB) with an extra key. */
export function overlongLine(service: string, startMs: number, bytes = 100 * 1024): string {
  const line = istioJsonLine({ requestId: requestId('long'), startMs, service });
  return `${line.slice(0, -1)},"padding":"${'x'.repeat(bytes)}"}`;
}

/** Decodes `partial_success.rejected_<records>` from an OTLP Export*ServiceResponse (protobuf). */
export function rejectedInOtlpResponse(buf: Buffer | undefined): { rejected: number; message: string } {
  const out = { rejected: 0, message: '' };
  if (buf === undefined) return out;
  const readVarint = (b: Buffer, pos: number): [number, number] => {
    let n = 0;
    let shift = 0;
    for (;;) {
      const byte = b[pos++]!;
      n += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return [n, pos];
      shift += 7;
    }
  };
  let pos = 0;
  while (pos < buf.length) {
    const [tag, p1] = readVarint(buf, pos);
    if (tag >>> 3 === 1 && (tag & 7) === 2) {
      const [len, p2] = readVarint(buf, p1);
      const inner = buf.subarray(p2, p2 + len);
      let q = 0;
      while (q < inner.length) {
        const [t, q1] = readVarint(inner, q);
        if ((t & 7) === 0) {
          const [v, q2] = readVarint(inner, q1);
          if (t >>> 3 === 1) out.rejected = v;
          q = q2;
        } else {
          const [l, q2] = readVarint(inner, q1);
          if (t >>> 3 === 2) out.message = inner.subarray(q2, q2 + l).toString();
          q = q2 + l;
        }
      }
      pos = p2 + len;
    } else {
      return out;
    }
  }
  return out;
}
