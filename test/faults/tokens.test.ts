/**
 * Tokens on every receiver, gRPC included, and on the query API (CONTRACT §2 MESHLENS_INGEST_TOKEN and
 * MESHLENS_API_TOKEN, issue 9 "Security"). The auth scheme is case-insensitive (RFC 7235 §2.1: "bearer" and
 * "BEARER" are "Bearer"); a wrong token is refused whatever its length; the API token opens /api/* and
 * nothing else, the ingest token opens the receivers and not /api/*; /metrics and the health endpoints stay
 * open for Prometheus and probes. A refused body is not taken: only the accepted ones are stored.
 *
 * Baseline 2bc1333: `bearer s3cret` and `BEARER s3cret` got 401 on every HTTP receiver and UNAUTHENTICATED
 * on gRPC; /api/v1/* answered 200 with no token at all (MESHLENS_API_TOKEN was read and not enforced).
 */
import { GRPC, grpcExport, periodOf, request, startMeshlens, storedRequests, settle, useFaultHarness, type Meshlens } from './support';
import { accessLogBody, hubbleFlow, otlpLogsJson, otlpLogsProtobuf, otlpTracesProtobuf, storedFlows, storedSpanCalls, zipkinSpans } from './records';

useFaultHarness();

const INGEST = 's3cret';
const API = 'r3ad3r';

/** Authorization values that must be refused, by what each gets wrong. */
const REFUSED: [string, string | undefined][] = [
  ['no header', undefined],
  ['a wrong token of the same length', 'Bearer s3creX'],
  ['a wrong token of another length', 'Bearer s3cret-and-more'],
  ['an empty token', 'Bearer '],
  ['the token without a scheme', INGEST],
  ['the token under another scheme', `Basic ${INGEST}`],
  ['the API token', `Bearer ${API}`],
];
/** The scheme is case-insensitive (RFC 7235 §2.1). */
const ACCEPTED = [`Bearer ${INGEST}`, `bearer ${INGEST}`, `BEARER ${INGEST}`];

let m: Meshlens;
const t0 = Date.now();
const apiAuth = { authorization: `Bearer ${API}` };

beforeAll(async () => {
  m = await startMeshlens({ scope: 'file', env: { MESHLENS_INGEST_TOKEN: INGEST, MESHLENS_API_TOKEN: API } });
}, 90_000);

interface Receiver {
  name: string;
  url: () => string;
  contentType: string;
  body: (service: string) => string | Buffer;
  stored: (service: string) => Promise<number>;
}

const period = () => periodOf([t0, Date.now()]);
const RECEIVERS: Receiver[] = [
  {
    name: 'POST /v1/accesslogs',
    url: () => `${m.base}/v1/accesslogs`,
    contentType: 'application/x-ndjson',
    body: (s) => accessLogBody(s, Date.now()),
    stored: (s) => storedRequests(m, s, period(), apiAuth),
  },
  {
    name: 'POST /v1/flows',
    url: () => `${m.base}/v1/flows`,
    contentType: 'application/x-ndjson',
    body: (s) => hubbleFlow(s, Date.now()) + '\n',
    stored: (s) => storedFlows(m, s, period(), apiAuth),
  },
  {
    name: 'OTLP/HTTP /v1/logs',
    url: () => `${m.otlpHttpBase}/v1/logs`,
    contentType: 'application/json',
    body: (s) => otlpLogsJson(s, Date.now()),
    stored: (s) => storedRequests(m, s, period(), apiAuth),
  },
  {
    name: 'OTLP/HTTP /v1/traces',
    url: () => `${m.otlpHttpBase}/v1/traces`,
    contentType: 'application/x-protobuf',
    body: (s) => otlpTracesProtobuf(s, Date.now()),
    stored: (s) => storedSpanCalls(m, s, period(), apiAuth),
  },
  {
    name: 'Zipkin /api/v2/spans',
    url: () => `${m.zipkinBase}/api/v2/spans`,
    contentType: 'application/json',
    body: (s) => zipkinSpans(s, Date.now()),
    stored: (s) => storedSpanCalls(m, s, period(), apiAuth),
  },
];

describe('MESHLENS_INGEST_TOKEN on the HTTP receivers', () => {
  it.each(RECEIVERS.map((r) => [r.name, r] as const))('%s: 401 for every wrong credential, 2xx for the token under any case of "Bearer", only those stored', async (_name, r) => {
    const service = `tok-${r.name.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').toLowerCase()}`;
    const got: Record<string, string> = {};
    const want: Record<string, string> = {};
    for (const [why, authorization] of REFUSED) {
      const res = await request(r.url(), { body: r.body(service), headers: { 'content-type': r.contentType, ...(authorization === undefined ? {} : { authorization }) } });
      got[why] = `${res.status}${res.headers['www-authenticate'] ? ' with WWW-Authenticate' : ''}`;
      want[why] = '401 with WWW-Authenticate';
    }
    for (const authorization of ACCEPTED) {
      const res = await request(r.url(), { body: r.body(service), headers: { 'content-type': r.contentType, authorization } });
      got[authorization] = res.status >= 200 && res.status < 300 ? '2xx' : `${res.status} ${res.text().slice(0, 120)}`;
      want[authorization] = '2xx';
    }
    expect(got).toEqual(want);
    // The three accepted bodies, and none of the refused ones.
    expect(await settle(() => r.stored(service), ACCEPTED.length, 15_000)).toBe(ACCEPTED.length);
  }, 60_000);
});

describe('MESHLENS_INGEST_TOKEN on OTLP/gRPC', () => {
  it.each(['logs', 'traces'] as const)('%s: UNAUTHENTICATED for every wrong credential, OK for the token under any case of "Bearer", only those stored', async (kind) => {
    const service = `tok-grpc-${kind}`;
    const body = () => (kind === 'logs' ? otlpLogsProtobuf(service, Date.now()) : otlpTracesProtobuf(service, Date.now()));
    const got: Record<string, number> = {};
    const want: Record<string, number> = {};
    for (const [why, authorization] of REFUSED) {
      got[why] = (await grpcExport(m.ports.otlpGrpc, kind, body(), authorization === undefined ? {} : { authorization })).code;
      want[why] = GRPC.UNAUTHENTICATED;
    }
    for (const authorization of ACCEPTED) {
      got[authorization] = (await grpcExport(m.ports.otlpGrpc, kind, body(), { authorization })).code;
      want[authorization] = GRPC.OK;
    }
    expect(got).toEqual(want);
    const stored = kind === 'logs' ? () => storedRequests(m, service, period(), apiAuth) : () => storedSpanCalls(m, service, period(), apiAuth);
    expect(await settle(stored, ACCEPTED.length, 15_000)).toBe(ACCEPTED.length);
  }, 60_000);
});

describe('MESHLENS_API_TOKEN on the query API', () => {
  const range = () => `from=${t0 - 60_000}&to=${Date.now() + 60_000}`;
  const API_PATHS = ['/api/v1/subsets', '/api/v1/flows', '/api/v1/graph', '/api/v1/canaries', '/api/v1/prometheus/targets', '/api/v1/openapi.json'];

  it.each(API_PATHS)('%s: 401 without the API token (the ingest token included), 200 with it under any case of "Bearer"', async (path) => {
    const url = () => `${m.base}${path}?${/targets|openapi/.test(path) ? '' : range()}`;
    const got: Record<string, string> = {};
    const want: Record<string, string> = {};
    const refused: [string, string | undefined][] = [
      ['no header', undefined],
      ['the ingest token', `Bearer ${INGEST}`],
      ['a wrong token of the same length', 'Bearer r3ad3X'],
      ['a wrong token of another length', 'Bearer r3ad3r-and-more'],
    ];
    for (const [why, authorization] of refused) {
      const res = await request(url(), { headers: authorization === undefined ? {} : { authorization } });
      got[why] = `${res.status}${res.headers['www-authenticate'] ? ' with WWW-Authenticate' : ''}`;
      want[why] = '401 with WWW-Authenticate';
    }
    for (const authorization of [`Bearer ${API}`, `bearer ${API}`, `BEARER ${API}`]) {
      const res = await request(url(), { headers: { authorization } });
      got[authorization] = `${res.status}`;
      want[authorization] = '200';
    }
    expect(got).toEqual(want);
  }, 30_000);

  it('/metrics, /readyz, /livez and /healthz stay open for Prometheus and probes', async () => {
    const got: Record<string, number> = {};
    for (const path of ['/metrics', '/readyz', '/livez', '/healthz']) got[path] = (await request(`${m.base}${path}`)).status;
    expect(got).toEqual({ '/metrics': 200, '/readyz': 200, '/livez': 200, '/healthz': 200 });
  });
});
