/**
 * The access-log format k8s/istio/ gives Istio's envoyOtelAls provider, through meshlens's real OTLP logs parser.
 * Envoy is not here, so its substitutions are done by hand: every `%OPERATOR%` of the provider's logFormat (body
 * text and labels) is replaced by the value Envoy would print for one example request, Bookinfo's productpage
 * calling reviews subset v2, logged by both sidecars. An operator the table below does not know fails the test,
 * so a change of the format is a change of this test. The records are encoded as Envoy sends them (OTLP
 * protobuf, the labels as string attributes, the request start in timeUnixNano, and no resource attributes: Istio
 * turns Envoy's builtin ones off for this provider).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { MeshRequest } from '../lib/model';
import { parseOtlpLogs } from '../services/ingest';
import { sdkLogsProtobuf } from './support/otel-sdk';

const ROOT = join(__dirname, '..');

interface LogFormat {
  text: string;
  labels: Record<string, string>;
}

function logFormatOf(file: string, path: (doc: any) => any): LogFormat { // eslint-disable-line @typescript-eslint/no-explicit-any
  const doc = parse(readFileSync(join(ROOT, file), 'utf8'));
  const providers = path(doc).extensionProviders as Array<{ name: string; envoyOtelAls?: { logFormat: LogFormat } }>;
  const als = providers.filter((p) => p.envoyOtelAls);
  expect(als).toHaveLength(1);
  return als[0]!.envoyOtelAls!.logFormat;
}

/** What Envoy prints for each command operator, for one side of the example request. */
type Substitutions = Record<string, string>;

const START = '2026-03-14T09:26:53.589Z';
const REQUEST_ID = '7c1e9b52-3f0a-4d6e-8b21-5a9d0c4e7f13';
const common: Substitutions = {
  '%REQ(:METHOD)%': 'GET',
  '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%': '/reviews/0',
  '%PROTOCOL%': 'HTTP/1.1',
  '%CONNECTION_TERMINATION_DETAILS%': '-',
  '%UPSTREAM_TRANSPORT_FAILURE_REASON%': '-',
  '%BYTES_RECEIVED%': '0',
  '%REQ(X-FORWARDED-FOR)%': '-',
  '%REQ(USER-AGENT)%': 'python-requests/2.31.0',
  '%REQ(X-REQUEST-ID)%': REQUEST_ID,
  '%REQ(:AUTHORITY)%': 'reviews:9080',
  '%ENVIRONMENT(POD_NAMESPACE)%': 'default',
};

/** productpage-v1's sidecar, outbound to reviews subset v2 (Istio ≥ 1.22 may append `;` from alt_stat_name). */
const clientSide = (cluster: string): Substitutions => ({
  ...common,
  '%START_TIME%': START,
  '%RESPONSE_CODE%': '200',
  '%RESPONSE_FLAGS%': '-',
  '%RESPONSE_CODE_DETAILS%': 'via_upstream',
  '%BYTES_SENT%': '358',
  '%DURATION%': '12',
  '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%': '11',
  '%UPSTREAM_HOST%': '10.1.4.22:9080',
  '%UPSTREAM_CLUSTER%': cluster,
  '%UPSTREAM_LOCAL_ADDRESS%': '10.1.3.15:48812',
  '%DOWNSTREAM_LOCAL_ADDRESS%': '10.96.12.40:9080',
  '%DOWNSTREAM_REMOTE_ADDRESS%': '10.1.3.15:48800',
  '%REQUESTED_SERVER_NAME%': '-',
  '%ROUTE_NAME%': 'default',
  '%ENVIRONMENT(POD_NAME)%': 'productpage-v1-6b746f74dc-9stvs',
});

/** reviews-v2's sidecar, inbound, denying the request by an AuthorizationPolicy (as it logs an RBAC denial). */
const serverSideDenied: Substitutions = {
  ...common,
  '%START_TIME%': '2026-03-14T09:26:53.592Z',
  '%RESPONSE_CODE%': '403',
  '%RESPONSE_FLAGS%': '-',
  '%RESPONSE_CODE_DETAILS%': 'rbac_access_denied_matched_policy[ns[default]-policy[reviews-deny-productpage]-rule[0]]',
  '%BYTES_SENT%': '19',
  '%DURATION%': '0',
  '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%': '-',
  '%UPSTREAM_HOST%': '-',
  '%UPSTREAM_CLUSTER%': '-',
  '%UPSTREAM_LOCAL_ADDRESS%': '-',
  '%DOWNSTREAM_LOCAL_ADDRESS%': '10.1.4.22:9080',
  '%DOWNSTREAM_REMOTE_ADDRESS%': '10.1.3.15:48812',
  '%REQUESTED_SERVER_NAME%': 'outbound_.9080_.v2_.reviews.default.svc.cluster.local',
  '%ROUTE_NAME%': '-',
  '%ENVIRONMENT(POD_NAME)%': 'reviews-v2-5b64f47978-x8k9q',
};

/** Envoy's substitution, by hand: every operator must have a value. */
function substitute(format: string, values: Substitutions): string {
  return format.replace(/%[A-Z_]+(\([^)]*\))?(:\d+)?%/g, (op) => {
    const v = values[op];
    if (v === undefined) throw new Error(`no example value for ${op}: add it to this test`);
    return v;
  });
}

function record(format: LogFormat, values: Substitutions) {
  return {
    body: substitute(format.text, values),
    attributes: Object.fromEntries(Object.entries(format.labels).map(([k, v]) => [k, substitute(v, values)])),
    // Envoy sets the request start time here.
    timeUnixNano: `${BigInt(Date.parse(values['%START_TIME%']!)) * 1_000_000n}`,
  };
}

function parseAll(format: LogFormat, sides: Substitutions[]): MeshRequest[] {
  const body = sdkLogsProtobuf([{ attributes: {}, logs: sides.map((s) => record(format, s)) }]);
  const r = parseOtlpLogs(body, 'protobuf');
  if (!r.ok) throw new Error(`${r.reason}: ${r.message}`);
  expect(r.value.rejects).toEqual([]);
  return r.value.records;
}

const operatorFormat = logFormatOf('k8s/istio/istio-operator.yaml', (d) => d.spec.meshConfig);
const helmFormat = logFormatOf('k8s/istio/istiod-values.yaml', (d) => d.meshConfig);

describe("the envoyOtelAls logFormat of k8s/istio/, through meshlens's OTLP logs parser", () => {
  it('is one line ending in a newline, as Istio\'s default, with the pod and namespace labels', () => {
    expect(helmFormat).toEqual(operatorFormat);
    expect(operatorFormat.text.endsWith('\n')).toBe(true);
    expect(operatorFormat.text.trimEnd()).not.toContain('\n');
    expect(Object.keys(operatorFormat.labels).sort()).toEqual(['namespace', 'pod']);
  });

  it('the client side: subset v2 of reviews, ok, from the productpage-v1 workload', () => {
    const [client] = parseAll(operatorFormat, [clientSide('outbound|9080|v2|reviews.default.svc.cluster.local')]);
    expect(client).toMatchObject({
      reporter: 'source',
      sourceWorkload: 'productpage-v1',
      sourceNamespace: 'default',
      destinationHost: 'reviews.default.svc.cluster.local',
      destinationService: 'reviews',
      destinationNamespace: 'default',
      destinationSubset: 'v2',
      destinationPort: 9080,
      method: 'GET',
      path: '/reviews/0',
      responseCode: 200,
      outcome: 'ok',
      durationMs: 12,
      requestId: REQUEST_ID,
      startTimeMs: Date.parse(START),
    });
  });

  it("the client side with the `;` Istio's alt_stat_name appends to %UPSTREAM_CLUSTER%", () => {
    const [client] = parseAll(operatorFormat, [clientSide('outbound|9080|v2|reviews.default.svc.cluster.local;')]);
    expect(client).toMatchObject({ destinationSubset: 'v2', destinationService: 'reviews', upstreamCluster: 'outbound|9080|v2|reviews.default.svc.cluster.local', outcome: 'ok' });
  });

  it('the server side: the same request denied by RBAC, subset v2 from the mTLS server name, at the reviews-v2 workload', () => {
    const [server] = parseAll(operatorFormat, [serverSideDenied]);
    expect(server).toMatchObject({
      reporter: 'destination',
      destinationWorkload: 'reviews-v2',
      destinationService: 'reviews',
      destinationNamespace: 'default',
      destinationSubset: 'v2',
      responseCode: 403,
      outcome: 'denied',
      denyReason: 'rbac',
      policy: 'default/reviews-deny-productpage',
      rule: 0,
      requestId: REQUEST_ID,
    });
  });

  it('without the labels the emitter would be unknown: they are what names the workload', () => {
    const bare = { text: operatorFormat.text, labels: {} };
    const [client] = parseAll(bare, [clientSide('outbound|9080|v2|reviews.default.svc.cluster.local')]);
    expect(client!.sourceWorkload).toBe('unknown');
  });

  it('an operator without an example value fails the substitution (a changed format changes this test)', () => {
    expect(() => substitute(`${operatorFormat.text.trimEnd()} %GRPC_STATUS%\n`, clientSide('x'))).toThrow('no example value for %GRPC_STATUS%');
  });
});
