/**
 * The query API (CONTRACT.md §6): `/api/v1/subsets`, `/api/v1/flows`, `/api/v1/graph`, `/api/v1/canaries`, and
 * `/api/v1/openapi.json` describing them. Every answer comes from ClickHouse, so any stored period can be asked
 * for; the window is event time. Queries and answers are the TypeBox schemas of api-schema.ts: Fastify validates
 * the query with them and serializes the answer with them (fast-json-stringify writes only the listed fields).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { configuredWeights } from '../../lib/meshconfig';
import type { MeshConfig } from '../../lib/meshconfig';
import { HttpError, parseDuration } from '../../lib/runtime';
import type { CanaryConfig, Logger } from '../../lib/runtime';
import { FALSE_FAIL_RATE, LATENCY_RATIO, PASS_CONFIDENCE, judgeWindow } from './canary';
import { DEFAULT_QUERY_TIMEOUT_MS, queryEdges, queryLedger, querySpanEdges, querySubsets, countableScope } from '../../lib/store';
import type { Connection, LedgerRow, QueryLimits, QueryScope, ReporterFilter } from '../../lib/store';
import {
  API_PATHS,
  ApiError,
  MAX_NAME_LENGTH,
  CanariesAnswer,
  CanariesQuery,
  FlowsAnswer,
  GraphAnswer,
  ScopeQuery,
  SubsetsAnswer,
  openApiDocument,
} from './api-schema';
import type { FlowRow, GraphEdge, GraphNode } from './api-schema';

export const DEFAULT_WINDOW_MS = 5 * 60_000;
/** The first instant a window may start at: ClickHouse's DateTime64 holds nothing before 1970 (CONTRACT.md §9). */
export const MIN_INSTANT_MS = 0;
/** The last instant: the end of year 9999, where DateTime64 stops. */
export const MAX_INSTANT_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
/**
 * The longest window: the longest retention meshlens can keep (MESHLENS_ROLLUP_RETENTION_DAYS ≤ 3650). A longer one
 * cannot hold more data, only more work; `max_execution_time` bounds what is left.
 */
export const MAX_WINDOW_MS = 3650 * 86_400_000;
/** Longest namespace or service filter: a DNS name (external hosts are services of their own). */
const MAX_NAME = MAX_NAME_LENGTH;

type Query = Record<string, string | string[] | undefined>;

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:Z|[+-](\d{2}):(\d{2}))$/i;

/**
 * RFC 3339 (`2026-11-25T10:00:00Z`) or Unix milliseconds → milliseconds; undefined when malformed. Fields are
 * checked before `Date.parse`, which rolls `02-30` over into March and reads `24:00` as the next day.
 */
export function parseInstant(text: string): number | undefined {
  const t = text.trim();
  if (/^\d{1,16}$/.test(t)) return Number(t);
  const m = RFC3339.exec(t);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59) return undefined;
  if (m[7] !== undefined && (Number(m[7]) > 23 || Number(m[8]) > 59)) return undefined;
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? undefined : ms;
}

const badRequest = (message: string): HttpError => new HttpError(400, 'bad_request', message);

/** A parameter given at most once (`?a=1&a=2` reaches here as an array). */
function single(q: Query, name: string): string | undefined {
  const v = q[name];
  if (v === undefined || typeof v === 'string') return v;
  throw badRequest(`give ${name} once`);
}

function instant(name: string, text: string): number {
  const ms = parseInstant(text);
  if (ms === undefined) throw badRequest(`${name}=${JSON.stringify(text)}: expected RFC 3339 or Unix milliseconds`);
  if (ms < MIN_INSTANT_MS) throw badRequest(`${name}=${JSON.stringify(text)} is before 1970-01-01T00:00:00Z: nothing is stored that early`);
  if (ms > MAX_INSTANT_MS) throw badRequest(`${name}=${JSON.stringify(text)} is after 9999-12-31T23:59:59.999Z: nothing is stored that late`);
  return ms;
}

/**
 * Reads `window` | `from`+`to`, `namespace`, `service`, `reporter` (CONTRACT.md §6). Throws 400 on bad input:
 * instants before 1970 or after 9999, `to` not after `from`, windows longer than 3650 days, repeated parameters.
 */
export function parseScope(q: Query, defaultReporter: ReporterFilter, nowMs: number, defaultWindowMs = DEFAULT_WINDOW_MS): QueryScope {
  const [window, from, to] = [single(q, 'window'), single(q, 'from'), single(q, 'to')];
  let fromMs: number;
  let toMs: number;
  if (from !== undefined || to !== undefined) {
    if (window !== undefined) throw badRequest('give either window or from/to, not both');
    if (from === undefined) throw badRequest('to needs from');
    fromMs = instant('from', from);
    toMs = to === undefined ? nowMs : instant('to', to);
    if (fromMs >= toMs) throw badRequest('from must be before to');
    if (toMs - fromMs > MAX_WINDOW_MS) throw badRequest('from and to are more than 3650 days apart: ask for a shorter period');
  } else {
    const ms = window === undefined ? defaultWindowMs : parseDuration(window);
    if (ms === undefined || ms <= 0) throw badRequest(`window=${JSON.stringify(window)}: expected a duration such as 30s, 5m, 1h`);
    if (ms > MAX_WINDOW_MS) throw badRequest(`window=${JSON.stringify(window)} is longer than 3650 days`);
    toMs = nowMs;
    fromMs = nowMs - ms;
    if (fromMs < MIN_INSTANT_MS) throw badRequest(`window=${JSON.stringify(window)} starts before 1970-01-01T00:00:00Z`);
  }
  const reporter = single(q, 'reporter') ?? defaultReporter;
  if (reporter !== 'source' && reporter !== 'destination' && reporter !== 'all') {
    throw badRequest(`reporter=${JSON.stringify(reporter)}: expected source, destination or all`);
  }
  const name = (key: 'namespace' | 'service'): string => {
    const v = single(q, key) ?? '';
    if (v.length > MAX_NAME) throw badRequest(`${key} is longer than ${MAX_NAME} characters`);
    return v;
  };
  return { fromMs, toMs, namespace: name('namespace'), service: name('service'), reporter };
}

export interface ApiDeps {
  conn: Connection;
  meshConfig: MeshConfig;
  logger: Logger;
  canary: CanaryConfig;
  /** Bound on one query's execution in ClickHouse (`max_execution_time`), MESHLENS_QUERY_TIMEOUT. */
  queryTimeoutMs?: number;
  /**
   * MESHLENS_RAW_REQUESTS. Below 1, raw rows cannot count the partial minutes at a window's edges, so every window
   * is widened to the whole minutes it touches (the answer's `from` and `to` say so) and counted from the rollups.
   */
  rawRequests?: number;
  now?: () => number;
}

const round = (x: number, digits = 3): number => Math.round(x * 10 ** digits) / 10 ** digits;
/** A quantile as answered: null when no duration is known (minutes rolled up before migration 004). */
const roundOrNull = (x: number | null): number | null => (x === null ? null : round(x));

/** Seconds a caller should wait before asking again after a 503. */
const RETRY_AFTER_SECONDS = 5;

/**
 * `max_execution_time` ran out (ClickHouse TIMEOUT_EXCEEDED 159, TOO_SLOW 160), or the client's own request
 * timeout did first (@clickhouse/client rejects with "Timeout error.").
 */
function isTimeout(err: unknown): boolean {
  const e = err as { code?: unknown; type?: unknown; message?: unknown };
  if (e.code === '159' || e.code === '160' || e.type === 'TIMEOUT_EXCEEDED' || e.type === 'TOO_SLOW') return true;
  return typeof e.message === 'string' && e.message.startsWith('Timeout error');
}

export function registerQueryRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const now = deps.now ?? Date.now;
  const period = (s: QueryScope) => ({ from: new Date(s.fromMs).toISOString(), to: new Date(s.toMs).toISOString() });
  const limits: QueryLimits = { timeoutMs: deps.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS };
  const scopeOf = (q: Query, reporter: ReporterFilter, windowMs?: number): QueryScope =>
    countableScope(parseScope(q, reporter, now(), windowMs), deps.rawRequests);
  const seconds = Math.max(1, Math.ceil((limits.timeoutMs as number) / 1000));
  // Answers never carry the store's text (CONTRACT.md §9): it names tables, settings and versions. The log has it.
  const fromStore = async <T>(what: string, run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (err) {
      if (isTimeout(err)) {
        deps.logger.warn({ err, what, timeoutSeconds: seconds }, 'query ran out of time');
        throw new HttpError(
          503,
          'query_timeout',
          `the ${what} query took longer than ${seconds} s: narrow the window (window, or from and to) or filter by namespace or service`,
          { 'Retry-After': String(RETRY_AFTER_SECONDS) },
        );
      }
      deps.logger.error({ err, what }, 'ClickHouse query failed');
      throw new HttpError(503, 'store_unavailable', `the store could not answer the ${what} query; try again shortly`, {
        'Retry-After': String(RETRY_AFTER_SECONDS),
      });
    }
  };

  /**
   * The route's scope. The schema is checked first (Fastify, `attachValidation`); a query it refuses, and any
   * query it lets through, is then read by parseScope, whose 400 names the parameter and what to give instead
   * (`reporter="both": expected source, destination or all`). A refusal parseScope would not make is still a 400
   * in the API's error shape, with the validator's words.
   */
  const scopeFor = (request: FastifyRequest<{ Querystring: ScopeQuery }>, reporter: ReporterFilter, windowMs?: number): QueryScope => {
    const scope = scopeOf(request.query as Query, reporter, windowMs);
    if (request.validationError) throw badRequest(request.validationError.message.replace(/^querystring\//, ''));
    return scope;
  };
  const errors = { '4xx': ApiError, '5xx': ApiError };
  const routeOptions = (querystring: typeof ScopeQuery, answer: object) => ({ schema: { querystring, response: { 200: answer, ...errors } }, attachValidation: true });

  app.get<{ Querystring: ScopeQuery }>(API_PATHS.subsets, routeOptions(ScopeQuery, SubsetsAnswer), async (request): Promise<SubsetsAnswer> => {
    // Joined by default (CONTRACT.md §6), so a subset's `denied` shows the RBAC denials only the server logs.
    const scope = scopeFor(request, 'all');
    const rows = await fromStore('subsets', () => querySubsets(deps.conn, scope, limits));
    const seconds = (scope.toMs - scope.fromMs) / 1000;
    const perHost = new Map<string, number>();
    for (const r of rows) perHost.set(r.host, (perHost.get(r.host) ?? 0) + r.requests);
    return {
      ...period(scope),
      reporter: scope.reporter,
      subsets: rows.map((r) => {
        const weight = configuredWeights(deps.meshConfig, r.host)?.find((w) => w.subset === r.subset);
        return {
          namespace: r.namespace,
          service: r.service,
          host: r.host,
          subset: r.subset,
          requests: r.requests,
          errors: r.errors,
          error_ratio: r.requests === 0 ? 0 : r.errors / r.requests,
          denied: r.denied,
          // The two kinds of error (docs/canary.md): the application's 5xx, and failures the proxy generated.
          app_errors: r.appErrors,
          mesh_failures: r.meshFailures,
          rps: round(r.requests / seconds),
          // Nearest rank, within 1 % (docs/api.md, "Latency quantiles"); `latency_samples` durations behind them.
          latency_ms: { p50: roundOrNull(r.latencyMs.p50), p90: roundOrNull(r.latencyMs.p90), p99: roundOrNull(r.latencyMs.p99) },
          latency_samples: r.latencySamples ?? r.requests,
          // Observed share of the host's requests beside the configured route weight (mesh config), in percent.
          traffic_share: round((100 * r.requests) / (perHost.get(r.host) || 1), 2),
          configured_weight: weight === undefined ? null : weight.weight,
        };
      }),
    };
  });

  // Defaults to the judge's own window, so the answer matches meshlens_canary_verdict.
  app.get<{ Querystring: ScopeQuery }>(API_PATHS.canaries, routeOptions(CanariesQuery, CanariesAnswer), async (request): Promise<CanariesAnswer> => {
    const scope = scopeFor(request, 'source', deps.canary.windowMs);
    const canaries = await fromStore('canaries', () => judgeWindow(deps.conn, deps.meshConfig, scope, deps.canary, limits));
    return {
      ...period(scope),
      reporter: scope.reporter,
      settings: { min_requests: deps.canary.minRequests, margin: deps.canary.margin, false_fail_rate: FALSE_FAIL_RATE, pass_confidence: PASS_CONFIDENCE, latency_ratio: LATENCY_RATIO },
      // JSON has no ±∞: a z or a latency ratio that is infinite is answered null, as the schema says.
      canaries: canaries.map((c) => ({
        ...c,
        checks: c.checks.map((k) => (k.signal === 'latency' ? { ...k, ratio: finiteOrNull(k.ratio) } : { ...k, z: finiteOrNull(k.z) })),
      })),
    };
  });

  app.get<{ Querystring: ScopeQuery }>(API_PATHS.flows, routeOptions(ScopeQuery, FlowsAnswer), async (request): Promise<FlowsAnswer> => {
    const scope = scopeFor(request, 'all');
    const rows = await fromStore('flows', () => queryLedger(deps.conn, scope, limits));
    return { ...period(scope), reporter: scope.reporter, flows: foldLedger(rows) };
  });

  app.get<{ Querystring: ScopeQuery }>(API_PATHS.graph, routeOptions(ScopeQuery, GraphAnswer), async (request): Promise<GraphAnswer> => {
    const scope = scopeFor(request, 'all');
    const [edges, spanEdges] = await fromStore('graph', () => Promise.all([queryEdges(deps.conn, scope, limits), querySpanEdges(deps.conn, scope, limits)]));
    const nodes = new Map<string, GraphNode>();
    const service = (namespace: string, name: string, host: string): string => {
      const id = `service:${namespace}/${name}`;
      nodes.set(id, { id, type: 'service', namespace, name, host });
      return id;
    };
    const out: GraphEdge[] = edges.map((e) => {
      const source = `workload:${e.sourceNamespace}/${e.sourceWorkload}`;
      nodes.set(source, { id: source, type: 'workload', namespace: e.sourceNamespace, name: e.sourceWorkload });
      return {
        source,
        target: service(e.destinationNamespace, e.destinationService, e.destinationHost),
        subset: e.subset,
        requests: e.requests,
        errors: e.errors,
        denied: e.denied,
        error_ratio: e.requests === 0 ? 0 : e.errors / e.requests,
        p99_ms: roundOrNull(e.p99Ms),
        from: 'access_logs',
      };
    });
    // Calls only traces saw; the caller is the tracing service name (`productpage.default`), not a workload.
    for (const e of spanEdges) {
      const source = `app:${e.caller}`;
      nodes.set(source, { id: source, type: 'app', name: e.caller });
      out.push({
        source,
        target: service(e.destinationNamespace, e.destinationService, e.destinationHost),
        subset: e.subset,
        requests: e.requests,
        errors: e.errors,
        denied: 0,
        error_ratio: e.requests === 0 ? 0 : e.errors / e.requests,
        p99_ms: roundOrNull(e.p99Ms),
        from: 'spans',
      });
    }
    return { ...period(scope), reporter: scope.reporter, nodes: [...nodes.values()], edges: out };
  });

  // Built once: the schemas do not change while the process runs.
  const openapi = JSON.stringify(openApiDocument({ version: packageVersion() }));
  app.get(API_PATHS.openapi, async (_request, reply) => reply.header('content-type', 'application/json; charset=utf-8').send(openapi));
}

const finiteOrNull = (x: number): number | null => (Number.isFinite(x) ? x : null);

/** meshlens's version, for the OpenAPI document's info; `0.0.0` where package.json is not beside the code. */
function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

type LedgerEntry = FlowRow;

/** One ledger entry per (layer, source, destination, subset, port), with its verdict details folded in. */
export function foldLedger(rows: readonly LedgerRow[]): LedgerEntry[] {
  const entries = new Map<string, LedgerEntry>();
  for (const r of rows) {
    const key = [r.layer, r.sourceNamespace, r.sourceWorkload, r.destinationNamespace, r.destinationService, r.destinationHost, r.subset, r.port].join('\u0001');
    let e = entries.get(key);
    if (!e) {
      e = {
        source: { namespace: r.sourceNamespace, workload: r.sourceWorkload },
        destination: { namespace: r.destinationNamespace, service: r.destinationService, host: r.destinationHost, subset: r.subset, port: r.port },
        layer: r.layer,
        allowed: 0,
        denied: 0,
        deny_reasons: {},
        policies: [],
      };
      entries.set(key, e);
    }
    if (!r.denied) {
      e.allowed += r.count;
      continue;
    }
    e.denied += r.count;
    const reason = r.denyReason || 'unknown';
    e.deny_reasons[reason] = (e.deny_reasons[reason] ?? 0) + r.count;
    if (r.policy !== '') {
      const p = e.policies.find((x) => x.policy === r.policy && x.rule === r.rule);
      if (p) p.count += r.count;
      else e.policies.push({ policy: r.policy, rule: r.rule, count: r.count });
    }
  }
  const out = [...entries.values()];
  for (const e of out) e.policies.sort((a, b) => b.count - a.count || a.policy.localeCompare(b.policy) || a.rule - b.rule);
  return out.sort((a, b) => b.denied - a.denied || b.allowed - a.allowed);
}
