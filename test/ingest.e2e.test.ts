/**
 * End to end through the real transports: meshlens starts in-process on ephemeral ports (the same `start()`
 * that `npm start` runs), each format is sent the way its producer sends it, and the normalized records are
 * read back off the bus.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { credentials, Metadata, makeGenericClientConstructor, status, type ServiceError } from '@grpc/grpc-js';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { OTLPLogExporter as OTLPLogExporterGrpc } from '@opentelemetry/exporter-logs-otlp-grpc';
import { OTLPTraceExporter as OTLPTraceExporterGrpc } from '@opentelemetry/exporter-trace-otlp-grpc';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { SpanKind } from '@opentelemetry/api';
import pino from 'pino';
import { createMemoryBus, TOPICS, type Bus, type DeadLetter } from '../lib/bus';
import type { Flow, MeshRequest, Span } from '../lib/model';
import { loadConfig } from '../lib/runtime';
import { start, type Running } from '../bin/start';
import { sdkLogsProtobuf, sdkTracesProtobuf } from './support/otel-sdk';
import { EPHEMERAL_PORTS } from './support/meshlens';

const logger = pino({ level: 'silent' });

// Istio 1.9+ default TEXT lines: client side (subset from the cluster) and server side (subset from the SNI).
const OUTBOUND_V2 =
  '[2026-03-14T09:26:53.589Z] "GET /reviews/0 HTTP/1.1" 200 - via_upstream - "-" 0 358 23 21 "-" "curl/8.5" "7c1e9b52-3f0a-4d6e-8b21-5a9d0c4e7f13" "reviews:9080" "10.1.4.22:9080" outbound|9080|v2|reviews.default.svc.cluster.local 10.1.3.15:48812 10.1.200.14:9080 10.1.3.15:48800 - default';
const INBOUND_V2 =
  '[2026-03-14T09:26:53.592Z] "GET /reviews/0 HTTP/1.1" 200 - via_upstream - "-" 0 358 19 18 "-" "curl/8.5" "7c1e9b52-3f0a-4d6e-8b21-5a9d0c4e7f13" "reviews:9080" "10.1.4.22:9080" inbound|9080|| 127.0.0.6:51234 10.1.4.22:9080 10.1.3.15:48812 outbound_.9080_.v2_.reviews.default.svc.cluster.local default';
const RBAC_DENIED =
  '[2026-03-14T09:27:01.100Z] "DELETE /ratings/7 HTTP/1.1" 403 - rbac_access_denied_matched_policy[ns[default]-policy[ratings-deny-delete]-rule[0]] - "-" 0 19 0 - "-" "curl/8.5" "0d9b3f8e-7c11-4e0b-9a55-1f2e3d4c5b6a" "ratings:9080" "-" inbound|9080|| - 10.1.4.30:9080 10.1.3.15:51000 outbound_.9080_._.ratings.default.svc.cluster.local -';
const ISTIO_JSON = JSON.stringify({
  start_time: '2026-03-14T09:26:54.000Z', method: 'GET', path: '/details/0', protocol: 'HTTP/1.1', response_code: 503,
  response_flags: 'UF,URX', response_code_details: 'upstream_reset_before_response_started{connection_failure}',
  bytes_received: 0, bytes_sent: 91, duration: 3, upstream_service_time: null, request_id: '5c1f0000-0000-4000-8000-000000000001',
  authority: 'details:9080', upstream_host: '10.1.4.40:9080', upstream_cluster: 'outbound|9080|v1|details.default.svc.cluster.local;',
  route_name: 'default', requested_server_name: null, downstream_remote_address: '10.1.3.15:40000', mesh_team: 'bookinfo',
});
const HUBBLE_DROP = JSON.stringify({
  flow: {
    time: '2026-03-14T09:40:02.118374905Z', verdict: 'DROPPED', drop_reason_desc: 'POLICY_DENIED', Type: 'L3_L4',
    IP: { source: '10.1.3.15', destination: '10.1.4.22', ipVersion: 'IPv4' },
    l4: { TCP: { source_port: 53122, destination_port: 7070, flags: { SYN: true } } },
    source: { identity: 40112, namespace: 'shop', labels: ['k8s:app=cart'], pod_name: 'cart-7b9c6d5f4-q8w2e' },
    destination: { identity: 40987, namespace: 'shop', labels: ['k8s:app=checkout'], pod_name: 'checkout-6d9f7c8b5-x2k4p' },
    traffic_direction: 'INGRESS', node_name: 'prod/worker-2',
  },
  node_name: 'prod/worker-2', time: '2026-03-14T09:40:02.118374905Z',
});
const CALICO_DENY = JSON.stringify({
  start_time: 1773481200, end_time: 1773481500, action: 'deny', reporter: 'dst', proto: 'tcp', source_ip: '10.1.3.15', source_name: '-',
  source_name_aggr: 'cart-7b9c6d5f4-*', source_namespace: 'shop', source_type: 'wep', dest_ip: '10.1.4.22', dest_name_aggr: 'checkout-6d9f7c8b5-*',
  dest_namespace: 'shop', dest_port: 7070, dest_type: 'wep', policies: { all_policies: ['0|platform|shop/platform.checkout-ingress|deny|-1'] },
  bytes_in: 240, bytes_out: 0, packets_in: 4, packets_out: 0, num_flows: 1,
});

/** Collects everything that reaches the bus, as the aggregator and tracer will see it. */
class BusTap {
  requests: MeshRequest[] = [];
  flows: Flow[] = [];
  spans: Span[] = [];
  deadLetters: DeadLetter[] = [];

  static async attach(bus: Bus): Promise<BusTap> {
    const tap = new BusTap();
    await bus.subscribe(TOPICS.requests, 'e2e', async (ms) => void ms.forEach((m) => tap.requests.push(...m.value)));
    await bus.subscribe(TOPICS.flows, 'e2e', async (ms) => void ms.forEach((m) => tap.flows.push(...m.value)));
    await bus.subscribe(TOPICS.spans, 'e2e', async (ms) => void ms.forEach((m) => tap.spans.push(...m.value)));
    await bus.subscribe(TOPICS.deadLetters, 'e2e', async (ms) => void ms.forEach((m) => tap.deadLetters.push(...m.value)));
    return tap;
  }

  async until(pred: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  clear(): void {
    this.requests = [];
    this.flows = [];
    this.spans = [];
    this.deadLetters = [];
  }
}

function testConfig(extra: Record<string, string> = {}) {
  return loadConfig({
    ...EPHEMERAL_PORTS,
    MESHLENS_DATA_DIR: mkdtempSync(join(tmpdir(), 'meshlens-e2e-')),
    // The fixtures are real lines logged since 2019: a retention that reaches back to them keeps them in bounds.
    MESHLENS_RAW_RETENTION_DAYS: '3650',
    ...extra,
  });
}

async function post(url: string, body: string | Buffer, headers: Record<string, string>): Promise<{ status: number; json: unknown; headers: Headers }> {
  const res = await fetch(url, { method: 'POST', body, headers });
  const text = await res.text();
  let json: unknown = text;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, json, headers: res.headers };
}

/** Current values of the named series on /metrics (0 for a series not yet exported). */
async function scrape(base: string, names: string[]): Promise<Record<string, number>> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const name of names) {
    const line = text.split('\n').find((l) => l.startsWith(name + ' '));
    out[name] = line === undefined ? 0 : Number(line.slice(name.length + 1));
  }
  return out;
}

describe('ingest end to end', () => {
  let running: Running;
  let tap: BusTap;
  let base: string;

  beforeAll(async () => {
    const bus = createMemoryBus({ capacity: 1000 });
    tap = await BusTap.attach(bus);
    running = await start({ config: testConfig(), target: 'all', logger, bus, processMetrics: false });
    base = `http://127.0.0.1:${running.ports.http}`;
  });
  afterAll(() => running.close());
  beforeEach(() => tap.clear());

  it('answers /readyz once every receiver listens', async () => {
    const res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(200);
  });

  it('takes gzip TEXT lines over HTTP and publishes normalized requests', async () => {
    const body = gzipSync([OUTBOUND_V2, INBOUND_V2, RBAC_DENIED].join('\n') + '\n');
    const res = await post(`${base}/v1/accesslogs`, body, { 'content-type': 'text/plain', 'content-encoding': 'gzip' });
    expect(res).toMatchObject({ status: 200, json: { accepted: 3, rejected: 0, errors: [] } });
    await tap.until(() => tap.requests.length === 3, '3 requests');
    const byReporter = (r: string) => tap.requests.filter((q) => q.reporter === r);
    expect(byReporter('source')).toEqual([
      expect.objectContaining({ destinationService: 'reviews', destinationNamespace: 'default', destinationSubset: 'v2', responseCode: 200, outcome: 'ok', startTimeMs: Date.UTC(2026, 2, 14, 9, 26, 53, 589) }),
    ]);
    expect(byReporter('destination')).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ destinationService: 'reviews', destinationSubset: 'v2', requestId: '7c1e9b52-3f0a-4d6e-8b21-5a9d0c4e7f13' }),
        expect.objectContaining({ destinationService: 'ratings', outcome: 'denied', denyReason: 'rbac', policy: 'default/ratings-deny-delete', rule: 0 }),
      ]),
    );
  });

  it('takes Istio JSON and shipper envelopes as NDJSON', async () => {
    const envelope = JSON.stringify({
      log: INBOUND_V2 + '\n',
      stream: 'stdout',
      kubernetes: { namespace_name: 'default', pod_name: 'reviews-v2-5b64f47978-x8k9q', container_name: 'istio-proxy', labels: { app: 'reviews', version: 'v2' } },
    });
    const res = await post(`${base}/v1/accesslogs`, [ISTIO_JSON, envelope].join('\n'), { 'content-type': 'application/x-ndjson' });
    expect(res).toMatchObject({ status: 200, json: { accepted: 2, rejected: 0 } });
    await tap.until(() => tap.requests.length === 2, '2 requests');
    const json = tap.requests.find((r) => r.destinationService === 'details')!;
    expect(json).toMatchObject({ destinationSubset: 'v1', responseCode: 503, outcome: 'error', upstreamCluster: 'outbound|9080|v1|details.default.svc.cluster.local' });
    expect(json.attributes).toMatchObject({ mesh_team: 'bookinfo' });
    const env = tap.requests.find((r) => r.destinationService === 'reviews')!;
    expect(env).toMatchObject({ reporter: 'destination', destinationWorkload: 'reviews-v2', destinationNamespace: 'default', destinationSubset: 'v2' });
  });

  it('takes a JSON array body (Fluent Bit `Format json`), one record per element', async () => {
    const res = await post(`${base}/v1/accesslogs`, JSON.stringify([JSON.parse(ISTIO_JSON), { log: OUTBOUND_V2 }, 42]), { 'content-type': 'application/json' });
    expect(res).toMatchObject({ status: 200, json: { accepted: 2, rejected: 1, errors: [{ line: 3 }] } });
    await tap.until(() => tap.requests.length === 2, '2 requests');
    const broken = await post(`${base}/v1/accesslogs`, '[{"start_time": ', { 'content-type': 'application/json' });
    expect(broken).toMatchObject({ status: 400, json: { accepted: 0, rejected: 1, errors: [{ line: 0, reason: 'malformed_json' }] } });
  });

  it('counts a mixed good/bad body exactly, reports reasons, and keeps the bad lines as dead letters', async () => {
    const series = {
      textRejected: 'meshlens_ingest_records_total{receiver="accesslog",format="istio_text",outcome="rejected"}',
      textAccepted: 'meshlens_ingest_records_total{receiver="accesslog",format="istio_text",outcome="accepted"}',
      jsonMalformed: 'meshlens_ingest_rejected_records_total{receiver="accesslog",format="istio_json",reason="malformed_json"}',
    };
    const before = await scrape(base, Object.values(series));
    const lines = [OUTBOUND_V2, 'garbage that is no access log', '', '{"start_time": ', ISTIO_JSON, '[2026-13-40T99:99:99.000Z] "GET / HTTP/1.1" 200 - via_upstream - "-" 0 1 1 1 "-" "-" "-" "-" "-" - - - - - -'];
    const res = await post(`${base}/v1/accesslogs`, lines.join('\n'), { 'content-type': 'text/plain' });
    expect(res.status).toBe(200);
    const reply = res.json as { accepted: number; rejected: number; errors: { line: number; reason: string }[] };
    expect(reply.accepted).toBe(2);
    expect(reply.rejected).toBe(3);
    expect(reply.errors.map((e) => e.line)).toEqual([2, 4, 6]);
    expect(reply.errors.map((e) => e.reason)).toEqual(['unknown_layout', 'malformed_json', 'invalid_timestamp']);
    await tap.until(() => tap.deadLetters.length === 3 && tap.requests.length === 2, 'dead letters');
    expect(tap.deadLetters.map((d) => Buffer.from(d.rawBase64, 'base64').toString())).toEqual([lines[1], lines[3], lines[5]]);

    const after = await scrape(base, Object.values(series));
    const delta = (k: keyof typeof series) => after[series[k]]! - before[series[k]]!;
    expect([delta('textAccepted'), delta('textRejected'), delta('jsonMalformed')]).toEqual([1, 2, 1]);
  });

  it('answers 400 when every line is rejected, 415 for an unsupported type, 200 for an empty body', async () => {
    expect((await post(`${base}/v1/accesslogs`, 'nope\nnope again', { 'content-type': 'text/plain' })).status).toBe(400);
    expect((await post(`${base}/v1/accesslogs`, OUTBOUND_V2, { 'content-type': 'application/xml' })).status).toBe(415);
    const empty = await post(`${base}/v1/accesslogs`, '', { 'content-type': 'text/plain' });
    expect(empty).toMatchObject({ status: 200, json: { accepted: 0, rejected: 0 } });
  });

  it('takes Hubble and Calico flows on /v1/flows', async () => {
    const res = await post(`${base}/v1/flows`, gzipSync(`${HUBBLE_DROP}\n${CALICO_DENY}\n{"neither": true}\n`), {
      'content-type': 'application/x-ndjson',
      'content-encoding': 'gzip',
    });
    expect(res).toMatchObject({ status: 200, json: { accepted: 2, rejected: 1 } });
    await tap.until(() => tap.flows.length === 2, '2 flows');
    for (const f of tap.flows) {
      expect(f).toMatchObject({ verdict: 'denied', denyReason: 'network_policy', sourceNamespace: 'shop', destinationNamespace: 'shop', destinationPort: 7070 });
    }
    expect(tap.flows.find((f) => f.policy !== '')?.policy).toMatch(/checkout-ingress/);
  });

  it('takes gzip Zipkin v2 spans as Envoy posts them', async () => {
    const spans = [
      {
        traceId: '9a1c3e5f7b2d4f6a8c0e2a4c6e8f0b1d', id: 'c47e1a9b2d5f8036', kind: 'CLIENT', name: 'reviews.default.svc.cluster.local:9080/*',
        timestamp: 1773480413589000, duration: 23000, localEndpoint: { serviceName: 'productpage.default', ipv4: '10.1.3.15' },
        tags: { component: 'proxy', upstream_cluster: 'outbound|9080|v2|reviews.default.svc.cluster.local', 'http.status_code': '200', 'guid:x-request-id': '7c1e9b52-3f0a-4d6e-8b21-5a9d0c4e7f13' },
      },
      { traceId: 'not-hex', id: 'zz' },
    ];
    const res = await post(`http://127.0.0.1:${running.ports.zipkin}/api/v2/spans`, gzipSync(JSON.stringify(spans)), {
      'content-type': 'application/json',
      'content-encoding': 'gzip',
    });
    expect(res.status).toBe(202);
    expect(res.json).toMatchObject({ accepted: 1, rejected: 1 });
    await tap.until(() => tap.spans.length === 1, '1 span');
    expect(tap.spans[0]).toMatchObject({ kind: 'client', destinationService: 'reviews', destinationSubset: 'v2', requestId: '7c1e9b52-3f0a-4d6e-8b21-5a9d0c4e7f13', durationMs: 23 });
  });

  it('takes OTLP/gRPC logs from the OpenTelemetry exporter, body = the Envoy access-log line', async () => {
    const provider = new LoggerProvider({
      resource: resourceFromAttributes({ 'k8s.pod.name': 'productpage-v1-6b746f74dc-9stvs', 'k8s.namespace.name': 'default' }),
      processors: [new SimpleLogRecordProcessor(new OTLPLogExporterGrpc({ url: `http://127.0.0.1:${running.ports.otlpGrpc}` }))],
    });
    provider.getLogger('envoy').emit({ body: OUTBOUND_V2 + '\n', severityNumber: SeverityNumber.UNSPECIFIED, timestamp: Date.UTC(2026, 2, 14, 9, 26, 53, 589) });
    await provider.forceFlush();
    await provider.shutdown();
    await tap.until(() => tap.requests.length === 1, 'otlp grpc log');
    expect(tap.requests[0]).toMatchObject({ reporter: 'source', sourceWorkload: 'productpage-v1', sourceNamespace: 'default', destinationSubset: 'v2' });
  });

  it('takes OTLP/HTTP protobuf logs and traces, encoded by the OpenTelemetry SDK serializers', async () => {
    // The SDK's proto *exporters* need a dynamic import jest cannot do on Node 20; their serializers are the
    // same code, so the bodies are exactly what those exporters POST.
    const logs = sdkLogsProtobuf([{ attributes: { 'k8s.pod.name': 'reviews-v2-5b64f47978-x8k9q', 'k8s.namespace.name': 'default' }, logs: [{ body: INBOUND_V2 + '\n' }] }]);
    const traces = sdkTracesProtobuf([
      {
        attributes: { 'service.name': 'reviews.default' },
        spans: [
          {
            traceId: '9a1c3e5f7b2d4f6a8c0e2a4c6e8f0b1d', spanId: 'c47e1a9b2d5f8036', name: 'ratings.default.svc.cluster.local:9080/*', kind: SpanKind.CLIENT,
            startTimeUnixNano: '1773480413592000000', endTimeUnixNano: '1773480413611000000',
            attributes: { upstream_cluster: 'outbound|9080|v1|ratings.default.svc.cluster.local', 'http.status_code': '503', 'guid:x-request-id': 'abc' },
          },
        ],
      },
    ]);
    const otlp = `http://127.0.0.1:${running.ports.otlpHttp}`;
    const logsRes = await fetch(`${otlp}/v1/logs`, { method: 'POST', body: gzipSync(logs), headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip' } });
    expect(logsRes.status).toBe(200);
    expect(logsRes.headers.get('content-type')).toBe('application/x-protobuf');
    const tracesRes = await fetch(`${otlp}/v1/traces`, { method: 'POST', body: traces, headers: { 'content-type': 'application/x-protobuf' } });
    expect(tracesRes.status).toBe(200);

    await tap.until(() => tap.requests.length === 1 && tap.spans.length === 1, 'otlp http log and span');
    expect(tap.requests[0]).toMatchObject({ reporter: 'destination', destinationWorkload: 'reviews-v2', destinationSubset: 'v2' });
    expect(tap.spans[0]).toMatchObject({ kind: 'client', serviceName: 'reviews.default', destinationService: 'ratings', destinationSubset: 'v1', responseCode: 503, error: true, durationMs: 19 });
  });

  it('takes OTLP/gRPC traces from the OpenTelemetry exporter', async () => {
    const traces = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': 'productpage.default' }),
      spanProcessors: [new SimpleSpanProcessor(new OTLPTraceExporterGrpc({ url: `http://127.0.0.1:${running.ports.otlpGrpc}` }))],
    });
    traces.getTracer('envoy').startSpan('details.default.svc.cluster.local:9080/*', { kind: SpanKind.SERVER }).end();
    await traces.forceFlush();
    await traces.shutdown();
    await tap.until(() => tap.spans.length === 1, 'otlp grpc span');
    expect(tap.spans[0]).toMatchObject({ kind: 'server', serviceName: 'productpage.default' });
  });

  it('answers OTLP/HTTP JSON with partialSuccess for unusable records and 400 for an undecodable body', async () => {
    const body = {
      resourceLogs: [{ resource: { attributes: [] }, scopeLogs: [{ logRecords: [{ body: { stringValue: OUTBOUND_V2 } }, { body: { stringValue: 'not an access log' } }] }] }],
    };
    const ok = await post(`http://127.0.0.1:${running.ports.otlpHttp}/v1/logs`, JSON.stringify(body), { 'content-type': 'application/json' });
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({ partialSuccess: { rejectedLogRecords: 1 } });
    const bad = await post(`http://127.0.0.1:${running.ports.otlpHttp}/v1/logs`, Buffer.from([0xff, 0xff, 0xff, 0x01]), { 'content-type': 'application/x-protobuf' });
    expect(bad.status).toBe(400);
    const unsupported = await post(`http://127.0.0.1:${running.ports.otlpHttp}/v1/logs`, 'x', { 'content-type': 'text/plain' });
    expect(unsupported.status).toBe(415);
  });

  it('answers gRPC INVALID_ARGUMENT for a body that is not an ExportLogsServiceRequest', async () => {
    const Client = makeGenericClientConstructor(
      {
        Export: {
          path: '/opentelemetry.proto.collector.logs.v1.LogsService/Export', requestStream: false, responseStream: false,
          requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b,
        },
      },
      'LogsService',
    );
    const client = new Client(`127.0.0.1:${running.ports.otlpGrpc}`, credentials.createInsecure());
    const err = await new Promise<ServiceError | null>((resolve) => {
      (client as unknown as { Export: (b: Buffer, cb: (e: ServiceError | null) => void) => void }).Export(Buffer.from([0x0a, 0xff, 0xff]), (e) => resolve(e));
    });
    client.close();
    expect(err?.code).toBe(status.INVALID_ARGUMENT);
  });
});

describe('ingest limits, auth and backpressure', () => {
  it('requires the token on every receiver when MESHLENS_INGEST_TOKEN is set', async () => {
    const running = await start({ config: testConfig({ MESHLENS_INGEST_TOKEN: 's3cret' }), target: 'all', logger, bus: createMemoryBus({ capacity: 100 }), processMetrics: false });
    try {
      const http = `http://127.0.0.1:${running.ports.http}/v1/accesslogs`;
      expect((await post(http, OUTBOUND_V2, { 'content-type': 'text/plain' })).status).toBe(401);
      expect((await post(http, OUTBOUND_V2, { 'content-type': 'text/plain', authorization: 'Bearer s3cret' })).status).toBe(200);
      expect((await post(`http://127.0.0.1:${running.ports.zipkin}/api/v2/spans`, '[]', { 'content-type': 'application/json' })).status).toBe(401);
      expect((await post(`http://127.0.0.1:${running.ports.otlpHttp}/v1/traces`, '{}', { 'content-type': 'application/json' })).status).toBe(401);

      const exporter = (metadata?: Metadata) => new OTLPLogExporterGrpc({ url: `http://127.0.0.1:${running.ports.otlpGrpc}`, ...(metadata ? { metadata } : {}) });
      const send = (e: OTLPLogExporterGrpc) => {
        const provider = new LoggerProvider({ processors: [new SimpleLogRecordProcessor(e)] });
        return { provider, result: new Promise<{ code: number; error?: Error }>((resolve) => {
          // SimpleLogRecordProcessor swallows the result; call the exporter directly to see it.
          e.export([], (r) => resolve(r as { code: number; error?: Error }));
        }) };
      };
      const denied = await send(exporter()).result;
      expect(denied.code).not.toBe(0);
      const md = new Metadata();
      md.set('authorization', 'Bearer s3cret');
      const allowed = await send(exporter(md)).result;
      expect(allowed.code).toBe(0);
    } finally {
      await running.close();
    }
  });

  it('answers 413 past MESHLENS_MAX_BODY_BYTES, counted after decompression', async () => {
    const running = await start({ config: testConfig({ MESHLENS_MAX_BODY_BYTES: '65536' }), target: 'all', logger, bus: createMemoryBus({ capacity: 100 }), processMetrics: false });
    try {
      const big = gzipSync(Array.from({ length: 400 }, () => OUTBOUND_V2).join('\n'));
      expect(big.length).toBeLessThan(65536);
      const res = await post(`http://127.0.0.1:${running.ports.http}/v1/accesslogs`, big, { 'content-type': 'text/plain', 'content-encoding': 'gzip' });
      expect(res.status).toBe(413);
      // A request refused whole is counted too, by its answer.
      await post(`http://127.0.0.1:${running.ports.otlpHttp}/v1/logs`, '{}', { 'content-type': 'text/csv' });
      const metrics = await (await fetch(`http://127.0.0.1:${running.ports.http}/metrics`)).text();
      expect(metrics).toContain('meshlens_ingest_requests_total{receiver="accesslog",code="413"} 1');
      expect(metrics).toContain('meshlens_ingest_requests_total{receiver="otlp_http",code="415"} 1');
    } finally {
      await running.close();
    }
  });

  it('tells callers to retry with Retry-After when the bus is full, and takes nothing from that request', async () => {
    const bus = createMemoryBus({ capacity: 2 });
    // The ingest target alone: no aggregator drains the topic, so the bus fills as a slow consumer would let it.
    const running = await start({ config: testConfig(), target: 'ingest', logger, bus, processMetrics: false });
    try {
      const url = `http://127.0.0.1:${running.ports.http}/v1/accesslogs`;
      const statuses: number[] = [];
      let retryAfter: string | null = null;
      for (let i = 0; i < 4; i++) {
        const res = await post(url, OUTBOUND_V2, { 'content-type': 'text/plain' });
        statuses.push(res.status);
        if (res.status === 429) retryAfter = res.headers.get('retry-after');
      }
      expect(statuses).toEqual([200, 200, 429, 429]);
      expect(Number(retryAfter)).toBeGreaterThan(0);
      // Once a consumer drains the topic, the same request is taken.
      const seen: MeshRequest[] = [];
      const sub = await bus.subscribe(TOPICS.requests, 'drain', async (ms) => void ms.forEach((m) => seen.push(...m.value)));
      const deadline = Date.now() + 5000;
      while (seen.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(seen).toHaveLength(2);
      expect((await post(url, OUTBOUND_V2, { 'content-type': 'text/plain' })).status).toBe(200);
      await sub.stop();
      const metrics = await (await fetch(`http://127.0.0.1:${running.ports.http}/metrics`)).text();
      expect(metrics).toMatch(/meshlens_ingest_records_total\{receiver="accesslog",format="istio_text",outcome="accepted"\} 3/);
      expect(metrics).toMatch(/meshlens_ingest_retry_responses_total\{receiver="accesslog"\} 2/);
    } finally {
      await running.close();
    }
  });

  it('takes nothing while the dead-letter files cannot be written, and resumes once they can', async () => {
    const config = testConfig();
    const running = await start({ config, target: 'all', logger, processMetrics: false });
    const base = `http://127.0.0.1:${running.ports.http}`;
    const dir = join(config.dataDir, 'deadletters');
    try {
      // The folder becomes a file: every append fails (ENOTDIR), as on a full or read-only disk.
      rmSync(dir, { recursive: true, force: true });
      writeFileSync(dir, 'not a folder');
      let first: number | undefined;
      const waiting = post(`${base}/v1/accesslogs`, `${OUTBOUND_V2}\nnot an access log`, { 'content-type': 'text/plain' }).then((r) => (first = r.status));
      const deadline = Date.now() + 10_000;
      while ((await fetch(`${base}/readyz`)).status === 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect((await (await fetch(`${base}/readyz`)).json()) as object).toMatchObject({ checks: { deadletters: false } });
      const refused = await post(`${base}/v1/accesslogs`, OUTBOUND_V2, { 'content-type': 'text/plain' });
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(first).toBeUndefined(); // its rejected line is not kept yet, so it is not answered yet

      rmSync(dir, { force: true });
      await waiting;
      expect(first).toBe(200);
      const day = new Date().toISOString().slice(0, 10);
      expect(readFileSync(join(dir, `${day}.ndjson`), 'utf8')).toContain('"reason":"unknown_layout"');
      while ((await fetch(`${base}/readyz`)).status !== 200 && Date.now() < deadline + 10_000) await new Promise((r) => setTimeout(r, 20));
      expect((await post(`${base}/v1/accesslogs`, OUTBOUND_V2, { 'content-type': 'text/plain' })).status).toBe(200);
    } finally {
      await running.close();
    }
  });

  it('keeps the first 1,000 rejections of a body one by one and sums up the rest; a body of more records than the bus holds is 413', async () => {
    const config = testConfig({ MESHLENS_BUS_CAPACITY: '2000' });
    const running = await start({ config, target: 'all', logger, processMetrics: false });
    const base = `http://127.0.0.1:${running.ports.http}`;
    try {
      const bad = await post(`${base}/v1/accesslogs`, Array.from({ length: 50_000 }, (_, i) => `junk ${i}`).join('\n'), { 'content-type': 'text/plain' });
      expect(bad.status).toBe(400);
      expect(bad.json).toMatchObject({ accepted: 0, rejected: 50_000 });
      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).toContain('meshlens_ingest_rejected_records_total{receiver="accesslog",format="istio_text",reason="unknown_layout"} 50000');
      const day = new Date().toISOString().slice(0, 10);
      const letters = readFileSync(join(config.dataDir, 'deadletters', `${day}.ndjson`), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as DeadLetter);
      expect(letters).toHaveLength(1_001);
      expect(letters[1_000]?.message).toMatch(/^49000 more rejected records of this request/);
      expect(Buffer.from(letters[1_000]!.rawBase64, 'base64').toString()).toBe('junk 1000');

      const many = await post(`${base}/v1/accesslogs`, Array.from({ length: 2_001 }, () => OUTBOUND_V2).join('\n'), { 'content-type': 'text/plain' });
      expect(many.status).toBe(413);
      expect(many.json).toMatchObject({ error: 'too_many_records' });
    } finally {
      await running.close();
    }
  });

  it('writes dead letters to the data dir in all-in-one mode', async () => {
    const config = testConfig();
    const running = await start({ config, target: 'all', logger, processMetrics: false });
    try {
      await post(`http://127.0.0.1:${running.ports.http}/v1/accesslogs`, 'definitely not a log line', { 'content-type': 'text/plain' });
    } finally {
      await running.close();
    }
    const day = new Date().toISOString().slice(0, 10);
    const letters = readFileSync(join(config.dataDir, 'deadletters', `${day}.ndjson`), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as DeadLetter);
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ receiver: 'accesslog', reason: 'unknown_layout', line: 1 });
    expect(Buffer.from(letters[0]!.rawBase64, 'base64').toString()).toBe('definitely not a log line');
  });
});
