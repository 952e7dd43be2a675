/**
 * The mesh config named by `MESHLENS_MESH_CONFIG` (CONTRACT.md §2): Istio DestinationRules and VirtualServices,
 * Istio AuthorizationPolicies and Kubernetes NetworkPolicies, Pods and WorkloadEntries, as YAML or JSON text.
 * Pure: the loader (loader.ts) reads the files and hands over `{name, text}` pairs.
 *
 * One parse goes: text → objects (read.ts) → DestinationRules and hosts (hosts.ts) → VirtualServices and routing
 * (routes.ts) → policies (policies.ts) → workloads (workloads.ts).
 *
 * Bad input is a value (DESIGN.md): syntax errors, missing fields and inconsistent routes become
 * `MeshConfigProblem`s with file and line (problems.ts), and the rest of the config is still used. Kinds
 * meshlens does not model are counted in `ignoredKinds`, not reported.
 *
 * Semantics follow what `kubectl apply -f <folder>` then Istio would do:
 * - An object defined twice (same kind, namespace, name) keeps the later definition, at the position of the
 *   first (creation order), as a re-apply would.
 * - `metadata.namespace` absent means `default`.
 * - Hosts and DestinationRules merge as hosts.ts says, routes and weights as routes.ts says.
 */
import { HostIndex, buildHosts, readDestinationRule, type MeshDestinationRule, type MeshHost } from './hosts';
import { readPolicy, type MeshPolicy } from './policies';
import type { MeshConfigProblem } from './problems';
import { Reader } from './read';
import { RouteReader, type MeshVirtualService } from './routes';
import { readWorkload, type MeshWorkload } from './workloads';

export interface MeshConfigSource {
  /** File name, used in problems. */
  name: string;
  text: string;
}

export interface ParseMeshConfigOptions {
  /** Kubernetes cluster domain for short host names; `cluster.local` by default. */
  clusterDomain?: string;
}

export interface MeshConfig {
  /** Hosts with subsets or routes, under every key of `MeshHost.keys`. */
  readonly hosts: ReadonlyMap<string, MeshHost>;
  readonly destinationRules: readonly MeshDestinationRule[];
  readonly virtualServices: readonly MeshVirtualService[];
  /** By `<namespace>/<name>`. */
  readonly authorizationPolicies: ReadonlyMap<string, MeshPolicy>;
  /** By `<namespace>/<name>`. */
  readonly networkPolicies: ReadonlyMap<string, MeshPolicy>;
  /** Pods and WorkloadEntries, in creation order (see `MeshWorkload`). */
  readonly workloads: readonly MeshWorkload[];
  /** Documents of other kinds, by `<Kind>` or `<Kind>.<group>` (`Deployment.apps`, `Gateway.networking.istio.io`). */
  readonly ignoredKinds: ReadonlyMap<string, number>;
}

export interface MeshConfigResult {
  config: MeshConfig;
  problems: MeshConfigProblem[];
}

export function emptyMeshConfig(): MeshConfig {
  return {
    hosts: new Map(),
    destinationRules: [],
    virtualServices: [],
    authorizationPolicies: new Map(),
    networkPolicies: new Map(),
    workloads: [],
    ignoredKinds: new Map(),
  };
}

/**
 * Parse and interpret every source. Never throws on input: what cannot be used is a problem, and what can is
 * in `config`.
 */
export function parseMeshConfig(sources: readonly MeshConfigSource[], options: ParseMeshConfigOptions = {}): MeshConfigResult {
  const reader = new Reader();
  for (const src of sources) reader.readSource(src);
  const hosts = new HostIndex(reader, (options.clusterDomain ?? 'cluster.local').replace(/^\.+|\.+$/g, '') || 'cluster.local');
  const routes = new RouteReader(reader, hosts);
  const destinationRules: MeshDestinationRule[] = [];
  const authorizationPolicies = new Map<string, MeshPolicy>();
  const networkPolicies = new Map<string, MeshPolicy>();
  const workloads: MeshWorkload[] = [];
  const objects = [...reader.objects.values()];
  // DestinationRules first: route checks need every subset.
  for (const o of objects) {
    if (o.kind !== 'DestinationRule') continue;
    const rule = readDestinationRule(reader, hosts, o);
    if (rule !== undefined) destinationRules.push(rule);
  }
  for (const o of objects) if (o.kind === 'VirtualService') routes.virtualService(o);
  for (const o of objects) {
    if (o.kind !== 'AuthorizationPolicy' && o.kind !== 'NetworkPolicy') continue;
    const policy = readPolicy(reader, o);
    if (policy !== undefined) (o.kind === 'AuthorizationPolicy' ? authorizationPolicies : networkPolicies).set(o.ref, policy);
  }
  for (const o of objects) if (o.kind === 'Pod' || o.kind === 'WorkloadEntry') workloads.push(readWorkload(reader, o));
  // Routing first: it indexes the hosts that routes only send to.
  const routing = routes.routing(destinationRules);
  const virtualServices: readonly MeshVirtualService[] = routes.virtualServices;
  return {
    config: {
      hosts: buildHosts(hosts, routing),
      destinationRules,
      virtualServices,
      authorizationPolicies,
      networkPolicies,
      workloads,
      ignoredKinds: reader.ignoredKinds,
    },
    problems: reader.problems,
  };
}
