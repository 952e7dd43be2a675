/**
 * lib/meshconfig: the Istio/Kubernetes YAML the operator points `MESHLENS_MESH_CONFIG` at, interpreted into hosts,
 * subsets, routes, policies and workloads. May use lib/model; lib/model never uses it.
 */

// Loading and parsing: files → sources → one MeshConfig, problems as values.
export { loadMeshConfig } from './loader';
export { emptyMeshConfig, parseMeshConfig } from './parse';
export type { MeshConfig, MeshConfigResult, MeshConfigSource, ParseMeshConfigOptions } from './parse';
export { MESH_CONFIG_PROBLEM_CODES } from './problems';
export type { MeshConfigProblem, MeshConfigProblemCode } from './problems';

// Hosts and subsets: DestinationRules, the subset a workload's labels select, the canary's stable subset.
export { STABLE_SUBSET_ANNOTATION, stableSubset, subsetForVersion } from './hosts';
export type { MeshDestinationRule, MeshHost, MeshSubset, WorkloadLabels } from './hosts';

// Routes: VirtualServices and the configured weight of each subset.
export { configuredWeights } from './routes';
export type { ConditionalRoute, HostRouting, MeshRoute, MeshRouteDestination, MeshVirtualService, RouteProtocol, SubsetWeight } from './routes';

// Policies: AuthorizationPolicies and NetworkPolicies by `<namespace>/<name>`.
export type { MeshPolicy, PolicyAction } from './policies';

// Workloads: Pods and WorkloadEntries with a sidecar, for scrape targets.
export { ISTIO_PROXY_CONTAINER, SIDECAR_STATUS_ANNOTATION } from './workloads';
export type { MeshWorkload } from './workloads';
