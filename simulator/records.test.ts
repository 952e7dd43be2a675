import { PODS } from './mesh';
import { fluentBitRecord, formatJson, formatText, isoMillis, type AccessLogFields } from './records';

const FIELDS: AccessLogFields = {
  startMs: Date.UTC(2026, 2, 14, 9, 26, 53, 589),
  method: 'GET',
  path: '/reviews/0?q="x"\\y',
  protocol: 'HTTP/1.1',
  responseCode: 200,
  responseFlags: '',
  responseCodeDetails: 'via_upstream',
  connectionTerminationDetails: '',
  upstreamTransportFailureReason: '',
  bytesReceived: 0,
  bytesSent: 358,
  durationMs: 23,
  upstreamServiceTimeMs: 21,
  xForwardedFor: '',
  userAgent: 'curl/8.5.0',
  requestId: '7c1e9b52-3f0a-4d6e-8b21-5a9d0c4e7f13',
  authority: 'reviews:9080',
  upstreamHost: '10.1.4.22:9080',
  upstreamCluster: 'outbound|9080|v2|reviews.default.svc.cluster.local',
  upstreamLocalAddress: '10.1.3.15:48812',
  downstreamLocalAddress: '10.1.200.14:9080',
  downstreamRemoteAddress: '10.1.3.15:48800',
  requestedServerName: '',
  routeName: 'default',
};

describe('access-log serializers', () => {
  it('formats millisecond timestamps as Envoy does', () => {
    expect(isoMillis(FIELDS.startMs)).toBe('2026-03-14T09:26:53.589Z');
    expect(isoMillis(FIELDS.startMs + 411)).toBe('2026-03-14T09:26:54.000Z');
    expect(isoMillis(FIELDS.startMs - 580)).toBe('2026-03-14T09:26:53.009Z');
    expect(isoMillis(0)).toBe(new Date(0).toISOString());
  });

  it('writes the Istio ≥ 1.9 TEXT layout (the reference page example)', () => {
    expect(formatText({ ...FIELDS, path: '/reviews/0' })).toBe(
      '[2026-03-14T09:26:53.589Z] "GET /reviews/0 HTTP/1.1" 200 - via_upstream - "-" 0 358 23 21 "-" "curl/8.5.0" "7c1e9b52-3f0a-4d6e-8b21-5a9d0c4e7f13" "reviews:9080" "10.1.4.22:9080" outbound|9080|v2|reviews.default.svc.cluster.local 10.1.3.15:48812 10.1.200.14:9080 10.1.3.15:48800 - default',
    );
  });

  it('writes typed Istio JSON: 24 keys in Istio order, numbers, nulls for unset, escaped strings', () => {
    const line = formatJson(FIELDS);
    const o = JSON.parse(line) as Record<string, unknown>;
    expect(Object.keys(o)).toEqual([
      'start_time', 'route_name', 'method', 'path', 'protocol', 'response_code', 'response_flags', 'response_code_details',
      'connection_termination_details', 'bytes_received', 'bytes_sent', 'duration', 'upstream_service_time', 'x_forwarded_for',
      'user_agent', 'request_id', 'authority', 'upstream_host', 'upstream_cluster', 'upstream_local_address',
      'downstream_local_address', 'downstream_remote_address', 'requested_server_name', 'upstream_transport_failure_reason',
    ]);
    expect(o).toMatchObject({
      start_time: '2026-03-14T09:26:53.589Z',
      path: '/reviews/0?q="x"\\y',
      response_code: 200,
      response_flags: '-',
      bytes_sent: 358,
      duration: 23,
      upstream_service_time: '21',
      x_forwarded_for: null,
      connection_termination_details: null,
    });
    expect(JSON.parse(formatJson({ ...FIELDS, upstreamServiceTimeMs: -1, method: '', path: '', protocol: '' }))).toMatchObject({
      upstream_service_time: null,
      method: null,
      path: null,
      protocol: null,
    });
  });

  it('wraps a line in a Fluent Bit record naming the istio-proxy container of the pod', () => {
    const rec = JSON.parse(fluentBitRecord('a "line"', PODS.reviewsV2, FIELDS.startMs)) as Record<string, unknown>;
    expect(rec).toEqual({
      time: '2026-03-14T09:26:53.589Z',
      stream: 'stdout',
      _p: 'F',
      log: 'a "line"\n',
      kubernetes: {
        pod_name: 'reviews-v2-7c6f9b8d45-p5rkj',
        namespace_name: 'default',
        labels: { app: 'reviews', version: 'v2', 'pod-template-hash': '7c6f9b8d45' },
        host: 'kind-worker2',
        container_name: 'istio-proxy',
        container_image: 'docker.io/istio/proxyv2:1.24.2',
      },
    });
  });
});
