/**
 * The query API's shapes, in one place (issue 13 part 2): TypeBox schemas of every `/api` route's query and
 * answer, and of the error body. The same objects serve
 * - Fastify: `schema: { querystring, response }` on each route (api.ts, targets.ts), for validation and for
 *   fast-json-stringify's serialization — which writes only the properties listed here, so every field an answer
 *   carries is listed;
 * - the types of the answers (`Static<typeof …>`), which the demo's summary and the tests read instead of
 *   retyping them;
 * - `GET /api/v1/openapi.json`, an OpenAPI 3.1 document built from `API_ROUTES` below (OpenAPI 3.1 takes JSON
 *   Schema 2020-12, which TypeBox writes).
 */
import { FormatRegistry, Type } from '@sinclair/typebox';
import type { Static, TObject, TSchema } from '@sinclair/typebox';

// TypeBox's Value.Check refuses formats it does not know; `from`/`to` are RFC 3339 date-times.
if (!FormatRegistry.Has('date-time')) {
  FormatRegistry.Set('date-time', (v) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i.test(v) && !Number.isNaN(Date.parse(v)));
}

/** `T` or null (null where nothing is known, or where JSON cannot carry the value: ±∞). */
const Nullable = <T extends TSchema>(t: T, description?: string) => Type.Union([t, Type.Null()], description === undefined ? {} : { description });
const Count = (description?: string) => Type.Integer({ minimum: 0, ...(description === undefined ? {} : { description }) });
const Ratio = (description: string) => Type.Number({ minimum: 0, maximum: 1, description });

// ---------------------------------------------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------------------------------------------

/** Longest namespace or service filter: a DNS name (external hosts are services of their own). */
export const MAX_NAME_LENGTH = 253;

export const Reporter = Type.Union([Type.Literal('source'), Type.Literal('destination'), Type.Literal('all')], {
  description:
    'whose records to count: `source` (the client sidecar or gateway, which knows the subset), `destination` (the server sidecar, ' +
    'which enforces policy) or `all`, the joined view: one answer per request, subset and source from the client, a denial from the server',
});
export type Reporter = Static<typeof Reporter>;

/**
 * The period and filters every query route takes. No `default` keywords: Fastify's validator would fill them in,
 * and a filled-in `window` would clash with `from`/`to`. The route's defaults are in the descriptions.
 */
function scopeQuery(defaults: { reporter: Reporter; window: string }): TObject {
  return Type.Object({
    window: Type.Optional(
      Type.String({
        description: `length of the period ending now, such as 30s, 5m, 1h, 7d (default ${defaults.window}); not with from/to`,
        examples: ['30s', '5m', '1h'],
      }),
    ),
    from: Type.Optional(Type.String({ description: 'start of the period: RFC 3339 (2026-11-25T10:00:00Z) or Unix milliseconds, not before 1970', examples: ['2026-11-25T10:00:00Z'] })),
    to: Type.Optional(Type.String({ description: 'end of the period (exclusive), as from; default now; needs from', examples: ['2026-11-25T10:05:00Z'] })),
    namespace: Type.Optional(Type.String({ maxLength: MAX_NAME_LENGTH, description: "only destinations in this namespace (the service's namespace)" })),
    service: Type.Optional(Type.String({ maxLength: MAX_NAME_LENGTH, description: 'only this destination service (its short name, such as reviews)' })),
    reporter: Type.Optional(Type.Union(Reporter.anyOf, { description: `${Reporter.description} (default ${defaults.reporter})` })),
  });
}

/** `/api/v1/subsets`, `/api/v1/flows`, `/api/v1/graph`: the joined view and the last 5 minutes by default. */
export const ScopeQuery = scopeQuery({ reporter: 'all', window: '5m' });
/** `/api/v1/canaries`: what clients saw, over the canary judge's window (MESHLENS_CANARY_WINDOW). */
export const CanariesQuery = scopeQuery({ reporter: 'source', window: 'the canary judge’s window, MESHLENS_CANARY_WINDOW (10m)' });
/** The query parameters as Fastify hands them over (a repeated parameter arrives as an array, which is refused). */
export type ScopeQuery = { [K in 'window' | 'from' | 'to' | 'namespace' | 'service' | 'reporter']?: string | string[] };

// ---------------------------------------------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------------------------------------------

/** The error body of every 4xx and 5xx answer. */
export const ApiError = Type.Object(
  {
    error: Type.String({ description: 'a stable code: bad_request, unauthorized, query_timeout, store_unavailable, ...' }),
    message: Type.String({ description: 'what went wrong and what to change, in a sentence' }),
  },
  { description: 'the error body of every 4xx and 5xx answer' },
);
export type ApiError = Static<typeof ApiError>;

const Period = {
  from: Type.String({ format: 'date-time', description: 'start of the period answered (widened to whole minutes when raw rows are sampled)' }),
  to: Type.String({ format: 'date-time', description: 'end of the period answered (exclusive)' }),
  reporter: Type.Union(Reporter.anyOf, { description: 'the reporter this answer counted (the default when none was asked for)' }),
};

const LatencyMs = Type.Object(
  {
    p50: Nullable(Type.Number()),
    p90: Nullable(Type.Number()),
    p99: Nullable(Type.Number()),
  },
  { description: 'nearest-rank quantiles of request duration in milliseconds, within 1 %; null when no duration is known' },
);

export const SubsetRow = Type.Object({
  namespace: Type.String(),
  service: Type.String(),
  host: Type.String(),
  subset: Type.String({ description: "the DestinationRule subset; '' when none is known" }),
  requests: Count('every request, denied ones included'),
  errors: Count('requests whose outcome is error (5xx, or no response with an upstream failure flag)'),
  error_ratio: Ratio('errors / requests'),
  denied: Count('requests an authorization decision refused'),
  app_errors: Count('errors the application answered (5xx without a proxy failure flag)'),
  mesh_failures: Count('failures the proxy generated (no healthy upstream, connect failure, no route, ...)'),
  rps: Type.Number({ minimum: 0, description: 'requests per second over the period' }),
  latency_ms: LatencyMs,
  latency_samples: Count('durations behind the quantiles'),
  traffic_share: Type.Number({ minimum: 0, maximum: 100, description: "percent of the service's requests this subset served" }),
  configured_weight: Nullable(Type.Number(), 'route weight the mesh config gives this subset, in percent; null when it names none'),
});
export type SubsetRow = Static<typeof SubsetRow>;

export const SubsetsAnswer = Type.Object({ ...Period, subsets: Type.Array(SubsetRow) }, { description: 'per-subset request rate, errors, denials and latency' });
export type SubsetsAnswer = Static<typeof SubsetsAnswer>;

export const FlowRow = Type.Object({
  source: Type.Object({ namespace: Type.String(), workload: Type.String() }),
  destination: Type.Object({
    namespace: Type.String(),
    service: Type.String(),
    host: Type.String(),
    subset: Type.String(),
    port: Type.Integer({ minimum: 0, description: '0 when unknown' }),
  }),
  layer: Type.Union([Type.Literal('L7'), Type.Literal('L4')], { description: 'L7: requests from access logs; L4: connections from flow logs (Hubble, Calico)' }),
  allowed: Count(),
  denied: Count(),
  deny_reasons: Type.Record(Type.String(), Type.Integer({ minimum: 0 }), { description: 'denials by reason: rbac, ext_authz, blackhole, network_policy' }),
  policies: Type.Array(
    Type.Object({
      policy: Type.String({ description: 'the AuthorizationPolicy as namespace/name' }),
      rule: Type.Integer({ description: 'its rule index; -1 when the denial names none' }),
      count: Count(),
    }),
  ),
});
export type FlowRow = Static<typeof FlowRow>;

export const FlowsAnswer = Type.Object({ ...Period, flows: Type.Array(FlowRow) }, { description: 'the flows ledger: allowed and denied traffic by source and destination' });
export type FlowsAnswer = Static<typeof FlowsAnswer>;

export const GraphNode = Type.Union([
  Type.Object({ id: Type.String(), type: Type.Literal('service'), namespace: Type.String(), name: Type.String(), host: Type.String() }),
  Type.Object({ id: Type.String(), type: Type.Literal('workload'), namespace: Type.String(), name: Type.String() }),
  Type.Object({ id: Type.String(), type: Type.Literal('app'), name: Type.String({ description: 'the tracing service name of a caller only spans saw' }) }),
]);
export type GraphNode = Static<typeof GraphNode>;

export const GraphEdge = Type.Object({
  source: Type.String({ description: 'a node id' }),
  target: Type.String({ description: 'a node id (a service)' }),
  subset: Type.String(),
  requests: Count(),
  errors: Count(),
  denied: Count(),
  error_ratio: Ratio('errors / requests'),
  p99_ms: Nullable(Type.Number()),
  from: Type.Union([Type.Literal('access_logs'), Type.Literal('spans')], { description: 'spans: a call only traces saw' }),
});
export type GraphEdge = Static<typeof GraphEdge>;

export const GraphAnswer = Type.Object({ ...Period, nodes: Type.Array(GraphNode), edges: Type.Array(GraphEdge) }, { description: 'the service graph' });
export type GraphAnswer = Static<typeof GraphAnswer>;

export const Verdict = Type.Union([Type.Literal('pass'), Type.Literal('fail'), Type.Literal('inconclusive')]);
export type Verdict = Static<typeof Verdict>;

const CanarySide = Type.Object({
  subset: Type.String(),
  requests: Count(),
  errors: Count('application errors'),
  error_ratio: Ratio('errors / requests'),
  mesh_failures: Count(),
  mesh_failure_ratio: Ratio('mesh_failures / requests'),
  denied: Count(),
  latency_p50_ms: Nullable(Type.Number()),
});

const RatioCheck = Type.Object({
  signal: Type.Union([Type.Literal('errors'), Type.Literal('mesh_failures')]),
  verdict: Verdict,
  baseline_ratio: Type.Number(),
  canary_ratio: Type.Number(),
  margin: Type.Number(),
  z: Nullable(Type.Number(), 'Farrington-Manning z of "canary − baseline = margin"; null when infinite'),
  p_value: Type.Number(),
});

const LatencyCheck = Type.Object({
  signal: Type.Literal('latency'),
  verdict: Verdict,
  baseline_median_ms: Type.Number(),
  canary_median_ms: Type.Number(),
  ratio: Nullable(Type.Number(), "canary median / baseline median; null when infinite (the baseline's median is 0)"),
  allowed_ratio: Type.Number(),
  p_value: Type.Number({ description: 'Mann-Whitney U one-sided p-value' }),
});

export const CanaryRow = Type.Object({
  namespace: Type.String(),
  service: Type.String(),
  host: Type.String(),
  baseline: CanarySide,
  canary: CanarySide,
  baseline_source: Type.Union([Type.Literal('mesh_config'), Type.Literal('most_requests')]),
  traffic_share: Type.Number({ minimum: 0, maximum: 100, description: "the canary's percent of the service's requests" }),
  verdict: Verdict,
  confidence: Type.Number({ minimum: 0, maximum: 1, description: 'how sure the verdict is; 0 when inconclusive' }),
  reason: Type.String({ description: 'why, in a sentence' }),
  checks: Type.Array(Type.Union([RatioCheck, LatencyCheck])),
});
export type CanaryRow = Static<typeof CanaryRow>;

export const CanariesAnswer = Type.Object(
  {
    ...Period,
    settings: Type.Object({
      min_requests: Count('requests baseline and canary each need before a verdict other than inconclusive'),
      margin: Type.Number(),
      false_fail_rate: Type.Number(),
      pass_confidence: Type.Number(),
      latency_ratio: Type.Number(),
    }),
    canaries: Type.Array(CanaryRow),
  },
  { description: 'each canary subset judged against its baseline' },
);
export type CanariesAnswer = Static<typeof CanariesAnswer>;

export const TargetGroup = Type.Object({
  targets: Type.Array(Type.String({ description: 'host:port' })),
  labels: Type.Record(Type.String(), Type.String()),
});
export type TargetGroup = Static<typeof TargetGroup>;

export const TargetGroups = Type.Array(TargetGroup, {
  description: 'Prometheus HTTP service discovery (http_sd_configs): meshlens processes and the mesh sidecars, told apart by meshlens_source',
});
export type TargetGroups = Static<typeof TargetGroups>;

// ---------------------------------------------------------------------------------------------------------------
// The routes, and the OpenAPI document built from them
// ---------------------------------------------------------------------------------------------------------------

export const API_PATHS = {
  subsets: '/api/v1/subsets',
  flows: '/api/v1/flows',
  graph: '/api/v1/graph',
  canaries: '/api/v1/canaries',
  targets: '/api/v1/prometheus/targets',
  openapi: '/api/v1/openapi.json',
} as const;

export interface ApiRoute {
  path: string;
  operationId: string;
  summary: string;
  /** Named in the document's components.schemas. */
  name: string;
  response: TSchema;
  query?: TObject;
  /** Answers from the store: 503 with Retry-After when it cannot. */
  fromStore: boolean;
}

export const API_ROUTES: readonly ApiRoute[] = [
  { path: API_PATHS.subsets, operationId: 'getSubsets', summary: 'Request rate, errors, denials and latency per subset', name: 'SubsetsAnswer', response: SubsetsAnswer, query: ScopeQuery, fromStore: true },
  { path: API_PATHS.flows, operationId: 'getFlows', summary: 'Allowed and denied flows, with deny reasons and policies', name: 'FlowsAnswer', response: FlowsAnswer, query: ScopeQuery, fromStore: true },
  { path: API_PATHS.graph, operationId: 'getGraph', summary: 'The service graph', name: 'GraphAnswer', response: GraphAnswer, query: ScopeQuery, fromStore: true },
  { path: API_PATHS.canaries, operationId: 'getCanaries', summary: 'Canary verdicts against their baselines', name: 'CanariesAnswer', response: CanariesAnswer, query: CanariesQuery, fromStore: true },
  { path: API_PATHS.targets, operationId: 'getPrometheusTargets', summary: 'Prometheus HTTP service discovery target groups', name: 'TargetGroups', response: TargetGroups, fromStore: false },
];

const json = (schema: object) => ({ 'application/json': { schema } });

/**
 * The OpenAPI 3.1 document of every `/api` route: parameters from the query schemas, the answers and the error
 * body under components.schemas. A bearer token is optional in the document: the server requires one only when
 * MESHLENS_API_TOKEN is set (then 401 without it).
 */
export function openApiDocument(options: { version: string }): Record<string, unknown> {
  const schemas: Record<string, TSchema> = { ApiError };
  const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
  const error = (description: string, headers?: object) => ({ description, ...(headers ? { headers } : {}), content: json(ref('ApiError')) });
  const retryAfter = { 'Retry-After': { description: 'seconds to wait before asking again', schema: { type: 'integer' } } };
  const paths: Record<string, unknown> = {};
  const operation = (r: Pick<ApiRoute, 'operationId' | 'summary' | 'query' | 'fromStore'>, ok: object) => {
    const responses: Record<string, unknown> = { '200': ok };
    if (r.query) responses['400'] = error('a bad parameter (the message names it)');
    responses['401'] = error('no valid Authorization: Bearer token, when the server requires one (MESHLENS_API_TOKEN)', {
      'WWW-Authenticate': { schema: { type: 'string' } },
    });
    if (r.fromStore) responses['503'] = error('the store did not answer, or the query took too long (query_timeout: narrow the period or filter)', retryAfter);
    const parameters = Object.entries(r.query?.properties ?? {}).map(([name, schema]) => {
      const { description, ...rest } = schema as TSchema & { description?: string };
      return { name, in: 'query', required: false, description, schema: rest };
    });
    return {
      operationId: r.operationId,
      summary: r.summary,
      ...(parameters.length ? { parameters } : {}),
      security: [{}, { bearer: [] }],
      responses,
    };
  };
  for (const r of API_ROUTES) {
    schemas[r.name] = r.response;
    paths[r.path] = { get: operation(r, { description: r.response.description ?? r.summary, content: json(ref(r.name)) }) };
  }
  paths[API_PATHS.openapi] = {
    get: operation(
      { operationId: 'getOpenApi', summary: 'This document', fromStore: false },
      { description: 'the OpenAPI 3.1 document of the query API', content: json({ type: 'object' }) },
    ),
  };
  // Through JSON: TypeBox's schemas carry symbol keys (its Kind), which a document has no place for.
  return JSON.parse(
    JSON.stringify({
      openapi: '3.1.0',
      info: {
        title: 'meshlens query API',
        version: options.version,
        description:
          'Per-subset RED, the flows ledger, the service graph and canary verdicts from what the mesh sidecars report, and the Prometheus targets. ' +
          'Every query route takes either window or from and to, plus optional namespace, service and reporter filters.',
      },
      paths,
      components: { schemas, securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'MESHLENS_API_TOKEN, when the server sets it' } } },
    }),
  ) as Record<string, unknown>;
}
