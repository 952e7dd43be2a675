/**
 * The aggregator target: consumes the bus into ClickHouse and the Prometheus metrics, judges canaries, and
 * answers the query API and Prometheus service discovery. Built without listening (DESIGN.md): the caller passes
 * the HTTP app to register routes on.
 */

// The aggregator: consumers into the store, readiness, close.
export { createAggregator } from './aggregator';
export type { Aggregator, AggregatorOptions } from './aggregator';
export { AGGREGATOR_GROUP } from './consumer';

// The query API (`/api/v1/subsets`, flows, graph, canaries): its routes, and the parsing helpers the tests share.
export { DEFAULT_WINDOW_MS, foldLedger, parseInstant, parseScope, registerQueryRoutes } from './api';

// The query API's shapes (TypeBox): what Fastify validates and serializes, the answers' types, the OpenAPI document.
export {
  API_PATHS,
  API_ROUTES,
  ApiError,
  CanariesAnswer,
  CanariesQuery,
  CanaryRow,
  FlowRow,
  FlowsAnswer,
  GraphAnswer,
  GraphEdge,
  GraphNode,
  Reporter,
  ScopeQuery,
  SubsetRow,
  SubsetsAnswer,
  TargetGroups,
  openApiDocument,
} from './api-schema';
export type { ApiRoute } from './api-schema';

// The canary judge: verdicts per canary/baseline pair.
export { FALSE_FAIL_RATE, LATENCY_RATIO, PASS_CONFIDENCE, canaryPairs, judgeCanaries, ratioCheck } from './canary';
export type { CanaryResult, JudgeOptions, Verdict } from './canary';

// Prometheus metrics from aggregated state: subset RED, configured weights, the series cap.
export { MeshMetrics } from './metrics';
export { ConfiguredWeights } from './weights';
export { OVERFLOW } from './series';

// Prometheus scrape targets (`GET /api/v1/prometheus/targets`, file_sd): meshlens processes and mesh sidecars.
export {
  SOURCE_LABEL,
  SOURCE_MEMBERSHIP,
  SOURCE_MESH_CONFIG,
  TARGETS_PATH,
  buildTargetGroups,
  createPrometheusTargets,
  writeFileSd,
} from './targets';
export type { PrometheusTargets, PrometheusTargetsOptions, TargetGroup } from './targets';
