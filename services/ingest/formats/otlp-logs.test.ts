import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { type MeshRequest, type Result } from '../../../lib/model';
import { sdkLogsJson, sdkLogsProtobuf, type SdkLogResource } from '../../../test/support/otel-sdk';
import type { Batch } from './batch';
import { emitterFromResource, parseNodeName, parseOtlpLogs } from './otlp-logs';
import { expectWellFormedBatch } from './batch.testutil';

const FIXTURES = path.join(__dirname, '../../../test/fixtures');
const fixture = (name: string): Buffer => readFileSync(path.join(FIXTURES, name));

function batchOf(r: Result<Batch<MeshRequest>>): Batch<MeshRequest> {
  if (!r.ok) throw new Error(`expected a batch, got ${r.reason}: ${r.message}`);
  return r.value;
}

/**
 * The collector debug output of istio/istio#42196, as an SDK request: Istio's envoyOtelAls with the default
 * format, so each body is a G3 line with its trailing newline, plus Envoy's builtin resource labels.
 * test/fixtures/otlp/istio-42196-envoy-otel-als.json holds the same request in OTLP/JSON.
 */
function istio42196(): SdkLogResource[] {
  const doc = JSON.parse(fixture('otlp/istio-42196-envoy-otel-als.json').toString()) as {
    resourceLogs: {
      resource: { attributes: { key: string; value: { stringValue: string } }[] };
      scopeLogs: { logRecords: { timeUnixNano: string; body: { stringValue: string } }[] }[];
    }[];
  };
  return doc.resourceLogs.map((rl) => ({
    attributes: Object.fromEntries(rl.resource.attributes.map((a) => [a.key, a.value.stringValue])),
    logs: rl.scopeLogs[0]!.logRecords.map((l) => ({ body: l.body.stringValue, timeUnixNano: l.timeUnixNano })),
  }));
}

/** Lines of test/fixtures/accesslogs/denials.log (their sources are in SOURCES.md). */
const RBAC_DENY_NAMED =
  '[2020-10-29T03:26:11.561Z] "GET /headers HTTP/1.1" 403 - rbac_access_denied_matched_policy[ns[foo]-policy[httpbin]-rule[0]] - "-" 0 19 0 - "-" "curl/7.73.0-DEV" "090a1897-d696-99b1-90f0-2673113ba258" "httpbin:8000" "-" - - 172.17.0.7:80 172.17.0.6:60898 outbound_.8000_._.httpbin.foo.svc.cluster.local -';
const RBAC_DENY_CANARY_SNI =
  '[2021-10-02T05:39:53.720Z] "GET /api HTTP/1.1" 403 - rbac_access_denied_matched_policy[none] - "-" 0 19 0 - "172.17.0.1" "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/15.0 Safari/605.1.15" "91dfed15-3288-469b-ad93-38a5a6af10f3" "34.93.158.36" "-" inbound|8080|| - 192.168.68.119:8080 172.17.0.1:0 outbound_.8080_.version-canary_.blue-green-canary.vm-blue-green-canary.svc.cluster.local -';
const BLOCK_ALL =
  '[2022-04-26T13:16:32.023Z] "HEAD / HTTP/1.1" 502 - direct_response - "-" 0 0 0 - "-" "curl/7.81.0-DEV" "cb171c15-848a-93d8-88d6-beeadcbb683f" "www.baidu.com" "-" - - 180.97.34.94:80 10.122.158.52:48708 - block_all';

/** Istio JSON records (all-strings style) from test/fixtures/accesslogs/istio-json-strings.ndjson. */
const JSON_SUBSET_V2 =
  '{"authority":"httpbin-service","bytes_received":"0","bytes_sent":"521","downstream_local_address":"10.109.118.31:80","downstream_remote_address":"172.17.0.9:50224","duration":"3","istio_policy_status":"-","method":"GET","path":"/headers?v=2","protocol":"HTTP/1.1","request_id":"b5091908-4806-465a-b755-59141e3acd25","requested_server_name":"-","response_code":"200","response_flags":"-","route_name":".v2","start_time":"2020-03-07T16:07:02.565Z","upstream_cluster":"outbound|80|v2|httpbin-service.default.svc.cluster.local","upstream_host":"172.17.0.8:80","upstream_local_address":"172.17.0.9:54576","upstream_service_time":"3","upstream_transport_failure_reason":"-","user_agent":"curl/7.58.0","x_forwarded_for":"-"}';
const JSON_503_UO =
  '{"start_time":"2025-12-22T16:08:03.507Z","method":"GET","path":"/delay/5000","protocol":"HTTP/1.1","response_code":"503","response_flags":"UO","response_code_details":"upstream_reset_before_response_started{overflow}","connection_termination_details":"-","upstream_transport_failure_reason":"-","bytes_received":"0","bytes_sent":"81","duration":"2","upstream_service_time":"-","x_forwarded_for":"-","user_agent":"curl/8.14.1","request_id":"4c299e03-e57f-9613-8817-6682e9deb675","authority":"mock-server:8080","upstream_host":"-","upstream_cluster":"outbound|8080||mock-server.default.svc.cluster.local","upstream_local_address":"-","downstream_local_address":"10.96.90.250:8080","downstream_remote_address":"10.244.1.3:55486","requested_server_name":"-","route_name":"-","grpc_status":"-","upstream_request_attempt_count":"1","request_duration":"0","response_duration":"-"}';
const JSON_503_UC_INBOUND =
  '{"start_time":"2026-01-01T11:58:47.167Z","method":"GET","path":"/reset-before-response/1000","protocol":"HTTP/1.1","response_code":"503","response_flags":"UC","response_code_details":"upstream_reset_before_response_started{connection_termination}","connection_termination_details":"-","upstream_transport_failure_reason":"-","bytes_received":"0","bytes_sent":"95","duration":"1047","upstream_service_time":"-","x_forwarded_for":"-","user_agent":"curl/8.14.1","request_id":"65cb201d-5b20-9321-8550-8749675883ee","authority":"mock-server:8080","upstream_host":"10.244.2.17:8080","upstream_cluster":"inbound|8080||","upstream_local_address":"127.0.0.6:33619","downstream_local_address":"10.244.2.17:8080","downstream_remote_address":"10.244.1.7:49326","requested_server_name":"outbound_.8080_._.mock-server.default.svc.cluster.local","route_name":"default","grpc_status":"-","upstream_request_attempt_count":"1","request_duration":"1","response_duration":"-"}';

/** A JSON record as `logFormat.labels` send it: one string attribute per key. */
const asLabels = (json: string): Record<string, string> => JSON.parse(json) as Record<string, string>;

describe('parseOtlpLogs: Envoy body lines (protobuf, encoded by the OTel JS SDK)', () => {
  const batch = batchOf(parseOtlpLogs(sdkLogsProtobuf(istio42196()), 'protobuf'));

  it('parses the G3 lines Istio sent in istio/istio#42196 and names the emitter from the resource', () => {
    expect(batch.rejects).toEqual([]);
    const [server, client] = batch.records;
    expect(server).toMatchObject({
      startTimeMs: Date.parse('2022-11-30T06:23:57.284Z'),
      reporter: 'destination',
      destinationHost: 'httpbin.default.svc.cluster.local',
      destinationService: 'httpbin',
      destinationNamespace: 'default',
      destinationSubset: '',
      destinationPort: 8000,
      // k8s.deployment.name on that resource
      destinationWorkload: 'httpbin',
      responseCode: 200,
      requestId: '2ef3fbae-b13b-4bf0-9bdb-88c91ef85c9c',
      outcome: 'ok',
    });
    expect(client).toMatchObject({
      reporter: 'source',
      // node_name sidecar~10.244.0.12~fortio-deploy-6cf68cc4c-8knt9.default~default.svc.cluster.local
      sourceWorkload: 'fortio-deploy',
      sourceNamespace: 'default',
      destinationService: 'httpbin',
      destinationNamespace: 'default',
      upstreamCluster: 'outbound|8000||httpbin.default.svc.cluster.local',
      durationMs: 4,
      outcome: 'ok',
    });
  });

  it('gives the same records for the OTLP/JSON fixture of that request', () => {
    const json = batchOf(parseOtlpLogs(fixture('otlp/istio-42196-envoy-otel-als.json'), 'json'));
    expect(json).toEqual(batch);
  });
});

describe('parseOtlpLogs: outcomes, subsets and trace ids through OTLP', () => {
  const resources: SdkLogResource[] = [
    {
      attributes: { node_name: 'sidecar~172.17.0.7~httpbin-74fb669cc6-q2xkv.foo~foo.svc.cluster.local', cluster_name: 'httpbin.foo' },
      logs: [
        {
          body: RBAC_DENY_NAMED + '\n',
          timeUnixNano: '1603941971561000000',
          traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
          spanId: '00f067aa0ba902b7',
        },
        { body: RBAC_DENY_CANARY_SNI + '\n', attributes: { mesh: 'cluster.local' } },
      ],
    },
    {
      attributes: { 'k8s.pod.name': 'sleep-f8cbf5b76-96559', 'k8s.namespace.name': 'default' },
      // Istio's JSON encoding sends the JSON object as the body string.
      logs: [{ body: JSON_SUBSET_V2 + '\n' }, { body: BLOCK_ALL + '\n' }],
    },
  ];
  const batch = batchOf(parseOtlpLogs(sdkLogsProtobuf(resources), 'protobuf'));
  const [named, canary, subset, blackhole] = batch.records;

  it('an RBAC denial on the server side is denied/rbac with the policy, and keeps the OTLP trace id', () => {
    expect(batch.rejects).toEqual([]);
    expect(named).toMatchObject({
      reporter: 'destination',
      destinationService: 'httpbin',
      destinationNamespace: 'foo',
      destinationWorkload: 'httpbin',
      responseCode: 403,
      outcome: 'denied',
      denyReason: 'rbac',
      policy: 'foo/httpbin',
      rule: 0,
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    });
  });

  it('the destination subset comes from the mTLS SNI, and extra labels are kept as attributes', () => {
    expect(canary).toMatchObject({
      reporter: 'destination',
      destinationService: 'blue-green-canary',
      destinationNamespace: 'vm-blue-green-canary',
      destinationSubset: 'version-canary',
      outcome: 'denied',
      denyReason: 'rbac',
      traceId: '',
    });
    expect(canary!.attributes).toMatchObject({ mesh: 'cluster.local' });
  });

  it('a JSON body goes through the JSON parser: outbound subset v2, reporter source', () => {
    expect(subset).toMatchObject({
      reporter: 'source',
      sourceWorkload: 'sleep',
      sourceNamespace: 'default',
      destinationHost: 'httpbin-service.default.svc.cluster.local',
      destinationSubset: 'v2',
      responseCode: 200,
      outcome: 'ok',
    });
  });

  it("Istio's block_all route is a blackhole denial", () => {
    expect(blackhole).toMatchObject({ reporter: 'source', outcome: 'denied', denyReason: 'blackhole', responseCode: 502 });
  });
});

describe('parseOtlpLogs: attribute-style records (logFormat.labels)', () => {
  const uo = asLabels(JSON_503_UO);
  const uc = asLabels(JSON_503_UC_INBOUND);
  // Without start_time the record's time_unix_nano (Envoy's request start) is the start time.
  const { start_time: _dropped, ...ucNoStart } = uc;
  // The same fields under alternate names people use for labels.
  const aliased: Record<string, string> = {
    'http.method': 'GET',
    'http.path': '/delay/5000',
    'http.protocol': 'HTTP/1.1',
    'http.status_code': '503',
    'http.status_flags': 'UO',
    duration_ms: '2',
    upstream_cluster: uo.upstream_cluster!,
    x_request_id: uo.request_id!,
    // Istio's samples/open-telemetry/loki/iop.yaml labels naming the emitter.
    pod: 'sleep-7656cf8794-8fhdk',
    namespace: 'default',
  };
  const resources: SdkLogResource[] = [
    { attributes: { 'k8s.pod.name': 'sleep-7656cf8794-8fhdk', 'k8s.namespace.name': 'default' }, logs: [{ attributes: uo, timeUnixNano: '1766419683507000000' }] },
    {
      attributes: { 'k8s.deployment.name': 'mock-server', 'k8s.namespace.name': 'default', 'service.version': 'v1' },
      logs: [{ attributes: ucNoStart, timeUnixNano: '1767268727167000000' }],
    },
    { attributes: {}, logs: [{ attributes: aliased, timeUnixNano: '1766419683507000000' }] },
  ];

  it('builds the request from the labels: outcome error for a 503 with an upstream-failure flag', () => {
    for (const encode of [sdkLogsProtobuf, sdkLogsJson]) {
      const batch = batchOf(parseOtlpLogs(encode(resources), encode === sdkLogsJson ? 'json' : 'protobuf'));
      expect(batch.rejects).toEqual([]);
      const [client, server, alias] = batch.records;
      expect(client).toMatchObject({
        startTimeMs: Date.parse('2025-12-22T16:08:03.507Z'),
        reporter: 'source',
        sourceWorkload: 'sleep',
        sourceNamespace: 'default',
        destinationService: 'mock-server',
        responseCode: 503,
        responseFlags: 'UO',
        outcome: 'error',
        method: 'GET',
        path: '/delay/5000',
      });
      // Unknown labels stay as attributes.
      expect(client!.attributes).toMatchObject({ grpc_status: '-', upstream_request_attempt_count: '1' });
      expect(server).toMatchObject({
        startTimeMs: Date.parse('2026-01-01T11:58:47.167Z'),
        reporter: 'destination',
        destinationService: 'mock-server',
        destinationWorkload: 'mock-server',
        destinationVersion: 'v1',
        responseFlags: 'UC',
        outcome: 'error',
      });
      expect(alias).toMatchObject({
        reporter: 'source',
        sourceWorkload: 'sleep',
        sourceNamespace: 'default',
        method: 'GET',
        path: '/delay/5000',
        httpVersion: 'HTTP/1.1',
        responseCode: 503,
        responseFlags: 'UO',
        durationMs: 2,
        requestId: '4c299e03-e57f-9613-8817-6682e9deb675',
        outcome: 'error',
      });
    }
  });
});

describe('parseOtlpLogs: the record time that stands in for start_time must be plausible', () => {
  const labels = { response_code: '200', upstream_cluster: 'outbound|8080||mock-server.default.svc.cluster.local' };
  const body = (timeUnixNano: string | number, observed?: string): Buffer =>
    Buffer.from(
      JSON.stringify({
        resourceLogs: [
          {
            scopeLogs: [
              {
                logRecords: [
                  {
                    timeUnixNano,
                    ...(observed ? { observedTimeUnixNano: observed } : {}),
                    attributes: Object.entries(labels).map(([key, v]) => ({ key, value: { stringValue: v } })),
                  },
                ],
              },
            ],
          },
        ],
      }),
    );

  it('milliseconds or seconds sent as nanoseconds (1970), and times past 2100, are invalid_timestamp, not stored at 1970', () => {
    for (const t of ['1707149433975', '1707149433', '1', '16725225600000000000']) {
      const batch = batchOf(parseOtlpLogs(body(t), 'json'));
      expect(batch.records).toEqual([]);
      expect(batch.rejects.map((r) => r.reason)).toEqual(['invalid_timestamp']);
      expect(batch.rejects[0]!.message).toContain('timeUnixNano');
    }
    // observedTimeUnixNano stands in when timeUnixNano is unset, and is checked the same way.
    const observed = batchOf(parseOtlpLogs(body(0, '1707149433975'), 'json'));
    expect(observed.rejects[0]).toMatchObject({ reason: 'invalid_timestamp' });
    expect(observed.rejects[0]!.message).toContain('observedTimeUnixNano');
  });

  it('a plausible time is the start time', () => {
    const batch = batchOf(parseOtlpLogs(body('1707149433975948000'), 'json'));
    expect(batch.rejects).toEqual([]);
    expect(batch.records[0]!.startTimeMs).toBe(1707149433975);
  });
});

describe('parseOtlpLogs: NaN and Infinity in protobuf doubles', () => {
  it('a non-finite or fractional double where a count or code belongs is invalid_number, never a record', () => {
    const labels = { upstream_cluster: 'outbound|8080||mock-server.default.svc.cluster.local', start_time: '2025-12-22T16:08:03.507Z' };
    const resources: SdkLogResource[] = [
      {
        attributes: {},
        logs: [
          { attributes: { ...labels, response_code: Number.NaN } },
          { attributes: { ...labels, response_code: 200, duration: Number.POSITIVE_INFINITY } },
          { attributes: { ...labels, response_code: 503.5 } },
          { attributes: { ...labels, response_code: 200, bytes_sent: Number.NEGATIVE_INFINITY } },
        ],
      },
    ];
    const batch = batchOf(parseOtlpLogs(sdkLogsProtobuf(resources), 'protobuf'));
    expect(batch.records).toEqual([]);
    expect(batch.rejects.map((r) => r.reason)).toEqual(['invalid_number', 'invalid_number', 'invalid_number', 'invalid_number']);
    // The dead letter spells them as protojson does.
    expect(batch.rejects[0]!.raw).toContain('"doubleValue":"NaN"');
  });
});

describe('parseOtlpLogs: mixed good and bad records', () => {
  const resources: SdkLogResource[] = [
    {
      attributes: { cluster_name: 'fortio.default' },
      logs: [
        { body: RBAC_DENY_NAMED + '\n' },
        // Envoy's own integration test format (test/fixtures/otlp/envoy-otel-als-integration-test.json): not Istio's.
        { body: 'GET HTTP/1.1 404', attributes: { response_code_details: 'route_not_found' } },
      ],
    },
    {
      attributes: {},
      logs: [
        { attributes: { log_name: 'otel_envoy_accesslog' } },
        { attributes: { response_code: 'abc', start_time: '2025-12-22T16:08:03.507Z' } },
        { body: '{"start_time": "2025-12-22T16:08:03.507Z", "response_code": ' },
        { body: BLOCK_ALL },
      ],
    },
  ];

  it('rejects each bad record with its 1-based index across resources, a reason and the record as JSON', () => {
    const batch = batchOf(parseOtlpLogs(sdkLogsProtobuf(resources), 'protobuf'));
    expect(batch.records.map((r) => r.requestId)).toEqual(['090a1897-d696-99b1-90f0-2673113ba258', 'cb171c15-848a-93d8-88d6-beeadcbb683f']);
    expect(batch.rejects.map((r) => [r.index, r.reason])).toEqual([
      [2, 'unknown_layout'],
      [3, 'not_an_access_log'],
      [4, 'invalid_number'],
      [5, 'malformed_json'],
    ]);
    for (const r of batch.rejects) expect(r.message.length).toBeGreaterThan(0);
    expect(JSON.parse(batch.rejects[0]!.raw)).toMatchObject({
      body: { stringValue: 'GET HTTP/1.1 404' },
      attributes: [{ key: 'response_code_details', value: { stringValue: 'route_not_found' } }],
    });
  });

  it("Envoy's integration-test payloads (a custom body format) are rejected, not dropped", () => {
    const batch = batchOf(parseOtlpLogs(fixture('otlp/envoy-otel-als-integration-test.json'), 'json'));
    expect(batch.records).toEqual([]);
    expect(batch.rejects.map((r) => [r.index, r.reason])).toEqual([
      [1, 'unknown_layout'],
      [2, 'unknown_layout'],
    ]);
  });

  it('a body that does not decode is one rejection for the whole request', () => {
    expect(parseOtlpLogs(Buffer.from('\x0a\xff\xff'), 'protobuf')).toMatchObject({ ok: false, reason: 'malformed_protobuf' });
    expect(parseOtlpLogs(Buffer.from('{"resourceLogs": 3}'), 'json')).toMatchObject({ ok: false, reason: 'malformed_json' });
  });
});

describe('emitter helpers', () => {
  it("parses Envoy's node id as Istio writes it (sidecars and gateways)", () => {
    expect(parseNodeName('sidecar~10.1.4.22~reviews-v2-5b64f47978-x8k9q.default~default.svc.cluster.local')).toEqual({
      pod: 'reviews-v2-5b64f47978-x8k9q',
      namespace: 'default',
    });
    expect(parseNodeName('router~10.244.0.5~istio-ingressgateway-6785fcd48-zzqcl.istio-system~istio-system.svc.cluster.local')).toEqual({
      pod: 'istio-ingressgateway-6785fcd48-zzqcl',
      namespace: 'istio-system',
    });
    expect(parseNodeName('node_name')).toBeUndefined();
  });

  it('prefers k8s attributes, then node_name, then cluster_name', () => {
    const kv = (o: Record<string, string>) => Object.entries(o).map(([key, v]) => ({ key, value: { kind: 'string' as const, value: v } }));
    expect(emitterFromResource(kv({ node_name: 'sidecar~1.2.3.4~reviews-v2-5b64f47978-x8k9q.default~default.svc.cluster.local' }))).toEqual({
      workload: 'reviews-v2',
      namespace: 'default',
      version: '',
    });
    expect(emitterFromResource(kv({ cluster_name: 'fortio.default' }))).toEqual({ workload: 'fortio', namespace: 'default', version: '' });
    expect(
      emitterFromResource(kv({ 'k8s.deployment.name': 'reviews-v3', 'k8s.namespace.name': 'shop', node_name: 'sidecar~1~reviews-v2-5b64f47978-x8k9q.default~x' })),
    ).toEqual({ workload: 'reviews-v3', namespace: 'shop', version: '' });
    expect(emitterFromResource([])).toEqual({ workload: '', namespace: '', version: '' });
  });
});

describe('parseOtlpLogs never throws (fast-check)', () => {
  const valid = sdkLogsProtobuf(istio42196());

  const check = (r: Result<Batch<MeshRequest>>): void => {
    expectWellFormedBatch(r);
  };

  it('random bytes in both encodings, truncated and mutated valid protobuf', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.nat(), fc.integer({ min: 0, max: 255 }), (bytes, at, byte) => {
        check(parseOtlpLogs(Buffer.from(bytes), 'protobuf'));
        check(parseOtlpLogs(Buffer.from(bytes), 'json'));
        check(parseOtlpLogs(valid.subarray(0, at % valid.length), 'protobuf'));
        const mutated = Buffer.from(valid);
        mutated[at % mutated.length] = byte;
        check(parseOtlpLogs(mutated, 'protobuf'));
      }),
      { numRuns: 300 },
    );
  });

  it('OTLP/JSON records with random bodies and attributes', () => {
    const value = fc.oneof(
      fc.record({ stringValue: fc.oneof(fc.string(), fc.constantFrom('[2020-10-29T03:26:11.561Z] "GET / HTTP/1.1" 200', '{"start_time": 1}')) }),
      fc.record({ intValue: fc.oneof(fc.integer(), fc.string()) }),
      fc.record({ kvlistValue: fc.record({ values: fc.array(fc.record({ key: fc.string(), value: fc.record({ stringValue: fc.string() }) })) }) }),
      fc.jsonValue({ maxDepth: 2 }),
    );
    const attr = fc.record({ key: fc.constantFrom('response_code', 'start_time', 'upstream_cluster', 'duration_ms', 'pod', '__proto__', 'x'), value });
    const rec = fc.record({ body: value, attributes: fc.array(attr, { maxLength: 5 }), timeUnixNano: fc.oneof(fc.string(), fc.nat()) }, { requiredKeys: [] });
    fc.assert(
      fc.property(fc.array(rec, { maxLength: 5 }), (records) => {
        const body = Buffer.from(JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: records }] }] }));
        const r = parseOtlpLogs(body, 'json');
        check(r);
        if (r.ok) expect(r.value.records.length + r.value.rejects.length).toBe(records.length);
      }),
      { numRuns: 300 },
    );
  });
});
