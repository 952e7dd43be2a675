/**
 * The mesh config named by `MESHLENS_MESH_CONFIG` (CONTRACT.md §2): Istio DestinationRules and VirtualServices,
 * Istio AuthorizationPolicies and Kubernetes NetworkPolicies, as YAML or JSON text. Pure: the caller reads the
 * files (lib/runtime/mesh-config.ts) and hands over `{name, text}` pairs.
 *
 * What it is for:
 * - **Subset** (CONTRACT.md §4): a record whose cluster name carries no subset (server-side `inbound|9080||`)
 *   gets one when the destination's `version` label selects exactly one DestinationRule subset
 *   (`subsetForVersion`, called per record: two Map gets).
 * - **Configured weight** beside the observed traffic share: the weights per subset of a host's default route
 *   (the first route without a match condition), and the subsets that match-conditioned routes reach besides
 *   (`configuredWeights`, `config.hosts.get(host).routing`).
 * - **Stable subset** for the canary judge: the DestinationRule annotation `meshlens.io/stable-subset: <subset>`
 *   names the baseline (`stableSubset`). Istio itself has no notion of a stable subset.
 * - **Policies** by `<namespace>/<name>` (the form deny reasons carry, CONTRACT.md §4).
 * - **Workloads** with an Istio sidecar, for Prometheus scrape targets (services/provisioner/prometheus/targets.ts):
 *   Kubernetes `Pod`s as `kubectl get pods -o yaml` prints them (with `status.podIP`) and Istio `WorkloadEntry`s
 *   (VMs and other non-Kubernetes workloads, `spec.address`). Only what a scrape target needs is kept.
 *
 * Bad input is a value (DESIGN.md): syntax errors, missing fields and inconsistent routes become
 * `MeshConfigProblem`s with file and line, and the rest of the config is still used. Kinds meshlens does not
 * model are counted in `ignoredKinds`, not reported.
 *
 * Semantics follow what `kubectl apply -f <folder>` then Istio would do:
 * - An object defined twice (same kind, namespace, name) keeps the later definition, at the position of the
 *   first (creation order), as a re-apply would.
 * - `metadata.namespace` absent means `default`.
 * - Hosts: a name without dots is `<name>.<namespace>.svc.<clusterDomain>` (Istio's `ResolveShortnameToFQDN`).
 *   Istio expands nothing else and keeps `reviews.prod` literally; users mean the service, so meshlens indexes
 *   such a host under both `reviews.prod` and `reviews.prod.svc.<clusterDomain>` (and `x.ns.svc` under
 *   `x.ns.svc.<clusterDomain>` too). The canonical name is the FQDN when `prod` is a namespace some object of
 *   the config lives in, else the literal host (`httpbin.org` stays `httpbin.org`). Wildcard hosts
 *   (`*.example.com`, `*`) are recorded, never indexed.
 * - DestinationRules for the same host are merged, the earlier one winning on conflicts: subsets are the union,
 *   a repeated subset name keeps the first. (Istio merges the rules of one host within a namespace; across
 *   namespaces the client's namespace decides, which a destination-side lookup cannot know.)
 * - Two VirtualServices claiming the same host for the mesh conflict (istioctl analyze IST0109); the earlier one
 *   wins, as Istio keeps the oldest.
 * - Route weights: one destination gets 100 whatever it says; absent weights among several are 0. Since
 *   istio/istio#39544 (2022, Istio 1.15) weights need not sum to 100: each destination gets weight/sum. meshlens
 *   normalizes to percent likewise and reports a sum other than 100 (older Istio rejects such a route).
 */
import { LineCounter, isSeq, parseAllDocuments } from 'yaml';

// ---------------------------------------------------------------------------------------------------------------
// Public types

export interface MeshConfigSource {
  /** File name, used in problems. */
  name: string;
  text: string;
}

export interface ParseMeshConfigOptions {
  /** Kubernetes cluster domain for short host names; `cluster.local` by default. */
  clusterDomain?: string;
}

/** The DestinationRule annotation naming the baseline subset for canary judgement. */
export const STABLE_SUBSET_ANNOTATION = 'meshlens.io/stable-subset';

export const MESH_CONFIG_PROBLEM_CODES = [
  /** The YAML (or JSON) text does not parse; the document is skipped, the file's other documents are used. */
  'yaml_syntax',
  /** A document that is not a Kubernetes object (no `kind`, not a mapping, too many aliases). */
  'invalid_object',
  /** A modelled kind in an API version meshlens does not know; parsed as the newest known version. */
  'unsupported_api_version',
  /** A required field is absent (`metadata.name`, DestinationRule `spec.host`, subset `name`, destination `host`). */
  'missing_field',
  /** A field of the wrong type or outside its vocabulary (weight, labels, action...); the field is skipped. */
  'invalid_field',
  /** The same kind, namespace and name defined twice; the later definition wins. */
  'duplicate_object',
  /** A subset name defined twice for one host; the first wins. */
  'duplicate_subset',
  /** Two VirtualServices claim the same host for the mesh (IST0109); the first wins. */
  'conflicting_hosts',
  /** Weights of a route with several destinations do not sum to 100; normalized as Istio >= 1.15 does. */
  'weights_not_100',
  /** Routes after a route without match conditions can never match. */
  'unreachable_route',
  /** A route names a subset no DestinationRule of the config defines for its host (IST0101). */
  'unknown_subset',
  /** The stable-subset annotation names no subset of its DestinationRule. */
  'unknown_stable_subset',
  /** DestinationRules of one host name different stable subsets; the first wins. */
  'conflicting_stable_subset',
  /** A file in the configured folder could not be read (lib/runtime loader only). */
  'read_error',
  /** The configured folder holds no `*.yaml`, `*.yml` or `*.json` file (lib/runtime loader only). */
  'no_files',
] as const;

export type MeshConfigProblemCode = (typeof MESH_CONFIG_PROBLEM_CODES)[number];

export interface MeshConfigProblem {
  code: MeshConfigProblemCode;
  /** Source (file) name. */
  source: string;
  /** 1-based line of the error or of the object it concerns; 0 when unknown. */
  line: number;
  /** `<Kind> <namespace>/<name>` the problem concerns; '' when none. */
  object: string;
  message: string;
}

export interface MeshSubset {
  name: string;
  labels: Readonly<Record<string, string>>;
  /** `<namespace>/<name>` of the DestinationRule that defines it. */
  destinationRule: string;
}

export interface MeshDestinationRule {
  namespace: string;
  name: string;
  /** `<namespace>/<name>`. */
  ref: string;
  /** `spec.host` as written. */
  declaredHost: string;
  /** Resolved host (see the module comment); the declared host itself when wildcard. */
  host: string;
  wildcard: boolean;
  subsets: readonly MeshSubset[];
  /** The `meshlens.io/stable-subset` annotation when it names one of `subsets`. */
  stableSubset: string | undefined;
  source: string;
  line: number;
}

export interface MeshRouteDestination {
  /** Resolved host. */
  host: string;
  /** '' when the destination names no subset. */
  subset: string;
  /** `destination.port.number`; 0 when absent. */
  port: number;
  /** Share of the route's traffic in percent (normalized, see the module comment). */
  weight: number;
}

export type RouteProtocol = 'http' | 'tcp' | 'tls';

export interface MeshRoute {
  protocol: RouteProtocol;
  /** Index in `spec.http` / `spec.tcp` / `spec.tls`. */
  index: number;
  /** One description per match block (blocks are ORed); empty for a route without conditions. */
  conditions: readonly string[];
  /** Empty for redirects, direct responses and delegations. */
  destinations: readonly MeshRouteDestination[];
  /** Listed after a route without conditions of the same protocol, so never used. */
  unreachable: boolean;
}

export interface MeshVirtualService {
  namespace: string;
  name: string;
  ref: string;
  /** Resolved `spec.hosts` (wildcards as written). */
  hosts: readonly string[];
  gateways: readonly string[];
  /** `spec.gateways` absent or listing `mesh`: the VirtualService applies to sidecars. */
  appliesToMesh: boolean;
  routes: readonly MeshRoute[];
  source: string;
  line: number;
}

export interface SubsetWeight {
  /** '' for a destination without subset. */
  subset: string;
  /** Percent of the default route's traffic. */
  weight: number;
}

export interface ConditionalRoute {
  subset: string;
  /** Percent of the traffic matching this route. */
  weight: number;
  virtualService: string;
  protocol: RouteProtocol;
  /** As in `MeshRoute.conditions`, e.g. `headers[end-user] exact "jason"`. */
  conditions: readonly string[];
}

export interface HostRouting {
  /**
   * Per subset of this host, its configured weight in the default route (the first route without match
   * conditions); undefined when no VirtualService has such a route to this host. When the default route also
   * sends traffic to other hosts, the weights here sum to less than 100.
   */
  weights: readonly SubsetWeight[] | undefined;
  /** `<namespace>/<name>` of the VirtualService `weights` come from: the one claiming the host for the mesh if it routes to it, else the first that does; ''. */
  virtualService: string;
  protocol: RouteProtocol | undefined;
  /** Subsets of this host that match-conditioned routes reach, from every VirtualService. */
  conditional: readonly ConditionalRoute[];
}

export interface MeshHost {
  /** Canonical host (FQDN for Kubernetes services). */
  host: string;
  /** Every key this host is indexed under in `MeshConfig.hosts` (the canonical one first). */
  keys: readonly string[];
  destinationRules: readonly string[];
  subsets: readonly MeshSubset[];
  stableSubset: string | undefined;
  routing: HostRouting | undefined;
  /**
   * Precomputed answers of `subsetForVersion` for labels `{version}`: version → subset, '' where several
   * subsets match. Versions not in the map get `otherVersionSubset`.
   */
  subsetByVersion: ReadonlyMap<string, string>;
  /** The answer for a version no subset names (or no version): the one subset without labels, else ''. */
  otherVersionSubset: string;
}

export type PolicyAction = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';

export interface MeshPolicy {
  kind: 'AuthorizationPolicy' | 'NetworkPolicy';
  namespace: string;
  name: string;
  /** `<namespace>/<name>`, as deny reasons name policies (CONTRACT.md §4). */
  ref: string;
  /**
   * AuthorizationPolicy `spec.action` (ALLOW when absent). A NetworkPolicy is always ALLOW: an allow-list,
   * whose selected pods refuse whatever no policy allows.
   */
  action: PolicyAction;
  /** `matchLabels` of `spec.selector` / `spec.podSelector`; empty = every workload of the namespace. */
  selector: Readonly<Record<string, string>>;
  /** Number of `matchExpressions` in the selector (not evaluated). */
  selectorExpressions: number;
  /** AuthorizationPolicy `targetRef`/`targetRefs` as `<Kind>/<name>`; empty otherwise. */
  targetRefs: readonly string[];
  /** AuthorizationPolicy: `spec.rules` entries. NetworkPolicy: ingress plus egress rules. */
  rules: number;
  /** NetworkPolicy `policyTypes` (defaulted as Kubernetes does); empty for AuthorizationPolicy. */
  policyTypes: readonly ('Ingress' | 'Egress')[];
  /** CUSTOM action's `spec.provider.name`; ''. */
  provider: string;
  source: string;
  line: number;
}

/** The Istio annotation the sidecar injector writes on every pod it injected. */
export const SIDECAR_STATUS_ANNOTATION = 'sidecar.istio.io/status';
/** The name of Istio's sidecar container (a regular container, or an init container with native sidecars). */
export const ISTIO_PROXY_CONTAINER = 'istio-proxy';

export interface MeshWorkload {
  kind: 'Pod' | 'WorkloadEntry';
  namespace: string;
  name: string;
  /** `<namespace>/<name>`. */
  ref: string;
  /** Pod `status.podIP`; WorkloadEntry `spec.address` (an IP, a DNS name or `unix://...`); '' when absent. */
  address: string;
  /** Pod `metadata.labels`; WorkloadEntry `spec.labels`. */
  labels: Readonly<Record<string, string>>;
  /** `metadata.annotations` with string values. */
  annotations: Readonly<Record<string, string>>;
  /**
   * Pod: Istio injected a sidecar (the `sidecar.istio.io/status` annotation, or a container or init container
   * named `istio-proxy`). WorkloadEntry: always true, the workload runs the proxy itself (that is what a
   * WorkloadEntry is for).
   */
  sidecar: boolean;
  /** Pod `status.phase` (`Running`, `Succeeded`...); '' when absent and for WorkloadEntries. */
  phase: string;
  source: string;
  line: number;
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

// ---------------------------------------------------------------------------------------------------------------
// Lookups

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

/** Labels of the destination workload as known; '' and undefined values count as unknown. */
export type WorkloadLabels = Readonly<Record<string, string | undefined>>;

/**
 * The DestinationRule subset of `host` the workload with `labels` belongs to, when exactly one subset matches.
 * A subset matches when none of its labels contradicts a known label and at least one of them is confirmed by
 * one (or it has no labels: it is the whole service). Labels the caller does not know neither confirm nor
 * contradict: records carry only `version`, so a subset `{app: reviews, version: v2}` matches version `v2`,
 * while `{version: v2}` and `{version: v2, zone: a}` together make `v2` ambiguous (undefined).
 *
 * Hot path: labels `{version}` cost two Map gets.
 */
export function subsetForVersion(config: MeshConfig, host: string, labels: WorkloadLabels): string | undefined {
  const h = config.hosts.get(host);
  if (h === undefined || h.subsets.length === 0) return undefined;
  for (const k in labels) {
    if (k !== 'version' && labels[k]) return subsetForLabels(h.subsets, labels);
  }
  const version = labels.version;
  const s = (version ? h.subsetByVersion.get(version) : undefined) ?? h.otherVersionSubset;
  return s === '' ? undefined : s;
}

/** Configured weights per subset of the host's default route (see `HostRouting.weights`). */
export function configuredWeights(config: MeshConfig, host: string): readonly SubsetWeight[] | undefined {
  return config.hosts.get(host)?.routing?.weights;
}

/** The subset the `meshlens.io/stable-subset` annotation of the host's DestinationRule names. */
export function stableSubset(config: MeshConfig, host: string): string | undefined {
  return config.hosts.get(host)?.stableSubset;
}

function subsetMatches(labels: Readonly<Record<string, string>>, known: WorkloadLabels): boolean {
  let any = false;
  let evidence = false;
  for (const k in labels) {
    any = true;
    const v = known[k];
    if (v === undefined || v === '') continue; // unknown: neither confirms nor contradicts
    if (v !== labels[k]) return false;
    evidence = true;
  }
  return !any || evidence;
}

function subsetForLabels(subsets: readonly MeshSubset[], known: WorkloadLabels): string | undefined {
  let found: string | undefined;
  for (const s of subsets) {
    if (!subsetMatches(s.labels, known)) continue;
    if (found !== undefined) return undefined;
    found = s.name;
  }
  return found;
}

// ---------------------------------------------------------------------------------------------------------------
// Parsing

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** A Kubernetes object as read, before its kind is interpreted. */
interface RawObject {
  kind: Kind;
  version: string;
  namespace: string;
  name: string;
  ref: string;
  label: string;
  metadata: Obj;
  spec: Obj;
  /** Read for Pods only (`status.podIP`, `status.phase`). */
  status: Obj;
  source: string;
  line: number;
}

type Kind = 'DestinationRule' | 'VirtualService' | 'AuthorizationPolicy' | 'NetworkPolicy' | 'Pod' | 'WorkloadEntry';

/** Modelled kinds: group and known versions, newest first. */
const KINDS: Record<Kind, { group: string; versions: readonly string[] }> = {
  DestinationRule: { group: 'networking.istio.io', versions: ['v1', 'v1beta1', 'v1alpha3'] },
  VirtualService: { group: 'networking.istio.io', versions: ['v1', 'v1beta1', 'v1alpha3'] },
  AuthorizationPolicy: { group: 'security.istio.io', versions: ['v1', 'v1beta1'] },
  NetworkPolicy: { group: 'networking.k8s.io', versions: ['v1'] },
  Pod: { group: '', versions: ['v1'] },
  WorkloadEntry: { group: 'networking.istio.io', versions: ['v1', 'v1beta1', 'v1alpha3'] },
};

const MAX_ALIASES = 1000;
const MAX_LIST_DEPTH = 4;

class Parser {
  readonly problems: MeshConfigProblem[] = [];
  readonly objects = new Map<string, RawObject>();
  readonly namespaces = new Set<string>(['default']);
  readonly ignoredKinds = new Map<string, number>();

  problem(code: MeshConfigProblemCode, source: string, line: number, object: string, message: string): void {
    this.problems.push({ code, source, line, object, message });
  }

  readSource(src: MeshConfigSource): void {
    const lc = new LineCounter();
    const lineOf = (offset: number | undefined): number => (offset === undefined ? 0 : lc.linePos(offset).line);
    let docs;
    try {
      docs = parseAllDocuments(src.text, { lineCounter: lc, prettyErrors: false });
    } catch (e) {
      // The parser reports errors per document; this guards against the unforeseen (never throw on input).
      this.problem('yaml_syntax', src.name, 0, '', `does not parse: ${(e as Error).message}`);
      return;
    }
    for (const doc of docs) {
      const err = doc.errors[0];
      if (err !== undefined) {
        // The first error only: the ones after it are mostly its echo (an unclosed `[` also ends the file early).
        const line = lineOf(err.pos[0]);
        const more = doc.errors.length > 1 ? ` (and ${doc.errors.length - 1} more error(s) after it)` : '';
        this.problem('yaml_syntax', src.name, line, '', `${src.name}:${line}: ${err.message} (${err.code}); document skipped${more}`);
        continue;
      }
      const contents = doc.contents;
      if (contents === null) continue;
      const line = lineOf(contents.range?.[0]);
      let value: unknown;
      try {
        value = doc.toJS({ maxAliasCount: MAX_ALIASES });
      } catch (e) {
        this.problem('invalid_object', src.name, line, '', `document does not convert: ${(e as Error).message}`);
        continue;
      }
      if (value === null || value === undefined) continue; // comments only
      const itemsNode = isObj(value) && Array.isArray(value.items) ? doc.get('items', true) : undefined;
      const itemLines = isSeq(itemsNode) ? itemsNode.items.map((n) => lineOf((n as { range?: [number] }).range?.[0])) : [];
      this.readValue(value, src.name, line, itemLines, 0);
    }
  }

  private readValue(value: unknown, source: string, line: number, itemLines: number[], depth: number): void {
    if (!isObj(value)) {
      this.problem('invalid_object', source, line, '', 'a document that is not a mapping is not a Kubernetes object');
      return;
    }
    const kind = str(value.kind);
    const apiVersion = str(value.apiVersion);
    if (kind === '') {
      this.problem('invalid_object', source, line, '', 'a document without `kind` is not a Kubernetes object');
      return;
    }
    // `kubectl get -o yaml` prints `kind: List`; typed lists (`VirtualServiceList`) have the same shape.
    if (kind.endsWith('List') && Array.isArray(value.items)) {
      if (depth >= MAX_LIST_DEPTH) {
        this.problem('invalid_object', source, line, '', `lists nested deeper than ${MAX_LIST_DEPTH}`);
        return;
      }
      value.items.forEach((item, i) => this.readValue(item, source, itemLines[i] ?? line, [], depth + 1));
      return;
    }
    const slash = apiVersion.lastIndexOf('/');
    const group = slash < 0 ? '' : apiVersion.slice(0, slash);
    const version = apiVersion.slice(slash + 1);
    const metadata = isObj(value.metadata) ? value.metadata : {};
    const namespace = str(metadata.namespace) || 'default';
    this.namespaces.add(namespace);
    if (kind === 'Namespace' && group === '' && str(metadata.name)) this.namespaces.add(str(metadata.name));

    const known = (KINDS as Record<string, { group: string; versions: readonly string[] } | undefined>)[kind];
    if (known === undefined || known.group !== group) {
      const key = group === '' ? kind : `${kind}.${group}`;
      this.ignoredKinds.set(key, (this.ignoredKinds.get(key) ?? 0) + 1);
      return;
    }
    const name = str(metadata.name);
    if (name === '') {
      this.problem('missing_field', source, line, kind, `${kind} without metadata.name skipped`);
      return;
    }
    const ref = `${namespace}/${name}`;
    const label = `${kind} ${ref}`;
    if (!known.versions.includes(version)) {
      this.problem(
        'unsupported_api_version',
        source,
        line,
        label,
        `apiVersion ${apiVersion} is not one of ${known.versions.map((v) => `${group}/${v}`).join(', ')}; read as ${group}/${known.versions[0]}`,
      );
    }
    const obj: RawObject = {
      kind: kind as Kind,
      version,
      namespace,
      name,
      ref,
      label,
      metadata,
      spec: isObj(value.spec) ? value.spec : {},
      status: isObj(value.status) ? value.status : {},
      source,
      line,
    };
    const key = `${kind} ${ref}`;
    const prev = this.objects.get(key);
    if (prev !== undefined) {
      this.problem(
        'duplicate_object',
        source,
        line,
        label,
        `${label} is defined again (first at ${prev.source}:${prev.line}); the later definition is used, as kubectl apply would`,
      );
    }
    this.objects.set(key, obj);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Hosts

interface ResolvedHost {
  host: string;
  keys: string[];
  wildcard: boolean;
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

function resolveHost(raw: string, namespace: string, domain: string, namespaces: ReadonlySet<string>): ResolvedHost {
  const h = raw.trim().toLowerCase();
  if (h.startsWith('*')) return { host: h, keys: [], wildcard: true };
  if (IPV4.test(h) || h.includes(':')) return { host: h, keys: [h], wildcard: false };
  const parts = h.split('.');
  if (parts.length === 1) {
    const fqdn = `${h}.${namespace}.svc.${domain}`;
    return { host: fqdn, keys: [fqdn], wildcard: false };
  }
  if (parts.length === 2 || (parts.length === 3 && parts[2] === 'svc')) {
    const fqdn = `${parts[0]}.${parts[1]}.svc.${domain}`;
    const isService = parts.length === 3 || namespaces.has(parts[1] ?? '');
    return isService ? { host: fqdn, keys: [fqdn, h], wildcard: false } : { host: h, keys: [h, fqdn], wildcard: false };
  }
  return { host: h, keys: [h], wildcard: false };
}

function wildcardMatches(pattern: string, host: string): boolean {
  return pattern === '*' || (pattern.startsWith('*.') && host.endsWith(pattern.slice(1)));
}

interface HostBuilder {
  host: string;
  keys: string[];
  destinationRules: string[];
  subsets: MeshSubset[];
  stableSubset: string | undefined;
  stableFrom: string;
  claimedBy: MeshVirtualService | undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Matches

/** `uri: {prefix: /}` alone matches every HTTP request: a common way of writing the default route. */
function isMatchAll(block: Obj, protocol: RouteProtocol): boolean {
  for (const k of Object.keys(block)) {
    if (k === 'name') continue;
    if (protocol === 'http' && k === 'uri' && isObj(block.uri) && block.uri.prefix === '/' && Object.keys(block.uri).length === 1) continue;
    if (protocol === 'http' && k === 'ignoreUriCase') continue;
    // TLS routes must name `sniHosts`; matching on them alone is the route for the VirtualService's hosts.
    if (protocol === 'tls' && k === 'sniHosts') continue;
    return false;
  }
  return true;
}

function describeValue(v: unknown): string {
  if (isObj(v)) {
    const ops = Object.entries(v);
    if (ops.length === 1 && ops[0] !== undefined && typeof ops[0][1] !== 'object') return `${ops[0][0]} ${JSON.stringify(ops[0][1])}`;
    return JSON.stringify(v);
  }
  if (Array.isArray(v)) return `[${v.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join(', ')}]`;
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

/** `headers[end-user] exact "jason" and uri prefix "/api"`. */
function describeMatch(block: Obj): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(block)) {
    if (k === 'name') continue;
    if ((k === 'headers' || k === 'queryParams' || k === 'withoutHeaders') && isObj(v)) {
      for (const [n, m] of Object.entries(v)) parts.push(`${k}[${n}] ${describeValue(m)}`);
    } else if ((k === 'sourceLabels' || k === 'sourceLabel') && isObj(v)) {
      parts.push(`${k} ${Object.entries(v).map(([a, b]) => `${a}=${String(b)}`).join(',')}`);
    } else {
      parts.push(`${k} ${describeValue(v)}`);
    }
  }
  return parts.join(' and ');
}

// ---------------------------------------------------------------------------------------------------------------
// Builder

class Builder {
  readonly hosts = new Map<string, HostBuilder>();
  readonly destinationRules: MeshDestinationRule[] = [];
  readonly virtualServices: MeshVirtualService[] = [];
  readonly authorizationPolicies = new Map<string, MeshPolicy>();
  readonly networkPolicies = new Map<string, MeshPolicy>();
  readonly workloads: MeshWorkload[] = [];
  /** Every key a route destination's host resolves to, for indexing in finish(). */
  private readonly destinationHosts = new Map<MeshRouteDestination, ResolvedHost>();

  constructor(
    private readonly p: Parser,
    private readonly domain: string,
  ) {}

  private resolve(raw: string, namespace: string): ResolvedHost {
    return resolveHost(raw, namespace, this.domain, this.p.namespaces);
  }

  private hostFor(r: ResolvedHost): HostBuilder {
    let hb: HostBuilder | undefined;
    for (const k of r.keys) {
      hb = this.hosts.get(k);
      if (hb !== undefined) break;
    }
    if (hb === undefined) {
      hb = { host: r.host, keys: [], destinationRules: [], subsets: [], stableSubset: undefined, stableFrom: '', claimedBy: undefined };
    }
    for (const k of r.keys) {
      if (!this.hosts.has(k)) {
        this.hosts.set(k, hb);
        hb.keys.push(k);
      }
    }
    return hb;
  }

  destinationRule(o: RawObject): void {
    const declaredHost = str(o.spec.host);
    if (declaredHost.trim() === '') {
      this.p.problem('missing_field', o.source, o.line, o.label, `${o.label} has no spec.host; skipped`);
      return;
    }
    const r = this.resolve(declaredHost, o.namespace);
    const subsets: MeshSubset[] = [];
    const raw = o.spec.subsets;
    if (raw !== undefined && !Array.isArray(raw)) {
      this.p.problem('invalid_field', o.source, o.line, o.label, `${o.label}: spec.subsets is not a list`);
    }
    const seen = new Set<string>();
    (Array.isArray(raw) ? raw : []).forEach((s, i) => {
      const name = isObj(s) ? str(s.name) : '';
      if (name === '') {
        this.p.problem('missing_field', o.source, o.line, o.label, `${o.label}: subset ${i} has no name; skipped`);
        return;
      }
      if (seen.has(name)) {
        this.p.problem('duplicate_subset', o.source, o.line, o.label, `${o.label}: subset ${name} is defined twice; the first is used`);
        return;
      }
      seen.add(name);
      subsets.push({ name, labels: this.labels(isObj(s) ? s.labels : undefined, o, `subset ${name} labels`), destinationRule: o.ref });
    });
    const annotations = isObj(o.metadata.annotations) ? o.metadata.annotations : {};
    const stableRaw = annotations[STABLE_SUBSET_ANNOTATION];
    let stable: string | undefined;
    if (stableRaw !== undefined) {
      const s = typeof stableRaw === 'string' ? stableRaw.trim() : String(stableRaw);
      if (seen.has(s)) stable = s;
      else {
        this.p.problem(
          'unknown_stable_subset',
          o.source,
          o.line,
          o.label,
          `${o.label}: annotation ${STABLE_SUBSET_ANNOTATION}: ${JSON.stringify(s)} names none of its subsets (${[...seen].join(', ') || 'none'}); ignored`,
        );
      }
    }
    this.destinationRules.push({
      namespace: o.namespace,
      name: o.name,
      ref: o.ref,
      declaredHost,
      host: r.host,
      wildcard: r.wildcard,
      subsets,
      stableSubset: stable,
      source: o.source,
      line: o.line,
    });
    if (r.wildcard) return;
    const hb = this.hostFor(r);
    hb.destinationRules.push(o.ref);
    for (const s of subsets) {
      const prev = hb.subsets.find((x) => x.name === s.name);
      if (prev !== undefined) {
        this.p.problem(
          'duplicate_subset',
          o.source,
          o.line,
          o.label,
          `subset ${s.name} of ${hb.host} is defined by DestinationRule ${prev.destinationRule} and ${o.ref}; the first is used`,
        );
      } else hb.subsets.push(s);
    }
    if (stable !== undefined) {
      if (hb.stableSubset === undefined) {
        hb.stableSubset = stable;
        hb.stableFrom = o.ref;
      } else if (hb.stableSubset !== stable) {
        this.p.problem(
          'conflicting_stable_subset',
          o.source,
          o.line,
          o.label,
          `${o.label} names stable subset ${stable} of ${hb.host}, DestinationRule ${hb.stableFrom} names ${hb.stableSubset}; the first is used`,
        );
      }
    }
  }

  private labels(v: unknown, o: RawObject, what: string): Record<string, string> {
    const out: Record<string, string> = {};
    if (v === undefined || v === null) return out;
    if (!isObj(v)) {
      this.p.problem('invalid_field', o.source, o.line, o.label, `${o.label}: ${what} is not a mapping; ignored`);
      return out;
    }
    for (const [k, x] of Object.entries(v)) {
      if (typeof x === 'string') out[k] = x;
      else if (typeof x === 'number' || typeof x === 'boolean') {
        // Kubernetes labels are strings; `version: 2` would be refused by the API server. Read as written.
        this.p.problem('invalid_field', o.source, o.line, o.label, `${o.label}: ${what}: ${k} is not a string; read as "${String(x)}"`);
        out[k] = String(x);
      } else {
        this.p.problem('invalid_field', o.source, o.line, o.label, `${o.label}: ${what}: ${k} is not a string; ignored`);
      }
    }
    return out;
  }

  virtualService(o: RawObject): void {
    const hostsRaw = Array.isArray(o.spec.hosts) ? o.spec.hosts : [];
    const hosts = hostsRaw.map(str).filter((h) => h.trim() !== '').map((h) => this.resolve(h, o.namespace));
    const gateways = Array.isArray(o.spec.gateways) ? o.spec.gateways.map(str).filter(Boolean) : [];
    const appliesToMesh = gateways.length === 0 || gateways.includes('mesh');
    const routes: MeshRoute[] = [];
    for (const protocol of ['http', 'tcp', 'tls'] as const) {
      const list = o.spec[protocol];
      if (list === undefined) continue;
      if (!Array.isArray(list)) {
        this.p.problem('invalid_field', o.source, o.line, o.label, `${o.label}: spec.${protocol} is not a list; ignored`);
        continue;
      }
      let defaultAt = -1;
      list.forEach((r, index) => {
        const route = this.route(o, protocol, index, isObj(r) ? r : {});
        if (defaultAt >= 0) route.unreachable = true;
        else if (route.conditions.length === 0) defaultAt = index;
        routes.push(route);
      });
      if (defaultAt >= 0 && defaultAt < list.length - 1) {
        this.p.problem(
          'unreachable_route',
          o.source,
          o.line,
          o.label,
          `${o.label}: spec.${protocol}[${defaultAt}] has no match conditions, so the ${list.length - 1 - defaultAt} route(s) after it never match`,
        );
      }
    }
    const vs: MeshVirtualService = {
      namespace: o.namespace,
      name: o.name,
      ref: o.ref,
      hosts: hosts.map((h) => h.host),
      gateways,
      appliesToMesh,
      routes,
      source: o.source,
      line: o.line,
    };
    this.virtualServices.push(vs);
    if (!appliesToMesh) return;
    for (const h of hosts) {
      if (h.wildcard) continue;
      const hb = this.hostFor(h);
      if (hb.claimedBy === undefined) hb.claimedBy = vs;
      else if (hb.claimedBy !== vs) {
        this.p.problem(
          'conflicting_hosts',
          o.source,
          o.line,
          o.label,
          `${o.label} and VirtualService ${hb.claimedBy.ref} both route host ${hb.host} for the mesh (IST0109); the first is used`,
        );
      }
    }
  }

  private route(o: RawObject, protocol: RouteProtocol, index: number, r: Obj): MeshRoute {
    const where = `${o.label}: spec.${protocol}[${index}]`;
    const conditions: string[] = [];
    if (r.match !== undefined && r.match !== null) {
      const blocks = Array.isArray(r.match) ? r.match : [r.match];
      const described: string[] = [];
      let all = blocks.length === 0;
      for (const b of blocks) {
        if (!isObj(b) || isMatchAll(b, protocol)) all = true;
        else described.push(describeMatch(b));
      }
      if (!all) conditions.push(...described);
    }
    const destinations: MeshRouteDestination[] = [];
    const raw = r.route;
    if (raw !== undefined && !Array.isArray(raw)) {
      this.p.problem('invalid_field', o.source, o.line, o.label, `${where}.route is not a list; ignored`);
    }
    const list = Array.isArray(raw) ? raw : [];
    const weights: number[] = [];
    list.forEach((d, i) => {
      const dest = isObj(d) && isObj(d.destination) ? d.destination : undefined;
      const host = dest === undefined ? '' : str(dest.host);
      if (dest === undefined || host.trim() === '') {
        this.p.problem('missing_field', o.source, o.line, o.label, `${where}.route[${i}] has no destination.host; skipped`);
        return;
      }
      let w = isObj(d) ? d.weight : undefined;
      if (w === undefined || w === null) w = 0;
      if (typeof w !== 'number' || !Number.isInteger(w) || w < 0) {
        this.p.problem('invalid_field', o.source, o.line, o.label, `${where}.route[${i}].weight ${JSON.stringify(w)} is not a non-negative integer; read as 0`);
        w = 0;
      }
      const port = isObj(dest.port) && typeof dest.port.number === 'number' ? dest.port.number : 0;
      const subset = typeof dest.subset === 'string' ? dest.subset : '';
      const resolved = this.resolve(host, o.namespace);
      const rd: MeshRouteDestination = { host: resolved.host, subset, port, weight: 0 };
      this.destinationHosts.set(rd, resolved);
      destinations.push(rd);
      weights.push(w as number);
    });
    if (destinations.length === 1 && destinations[0] !== undefined) {
      destinations[0].weight = 100; // Istio: a single destination takes all traffic, whatever its weight says.
    } else if (destinations.length > 1) {
      const sum = weights.reduce((a, b) => a + b, 0);
      if (sum === 0) {
        this.p.problem('invalid_field', o.source, o.line, o.label, `${where}: every destination weight is 0, so the route sends nowhere`);
      } else {
        if (sum !== 100) {
          this.p.problem(
            'weights_not_100',
            o.source,
            o.line,
            o.label,
            `${where}: weights sum to ${sum}, not 100; Istio >= 1.15 sends weight/${sum} of the traffic to each destination (older Istio rejects the route)`,
          );
        }
        destinations.forEach((d, i) => (d.weight = ((weights[i] ?? 0) * 100) / sum));
      }
    }
    return { protocol, index, conditions, destinations, unreachable: false };
  }

  policy(o: RawObject): void {
    const s = o.spec;
    let action: PolicyAction = 'ALLOW';
    let selectorRaw: unknown;
    const targetRefs: string[] = [];
    let rules = 0;
    const policyTypes: ('Ingress' | 'Egress')[] = [];
    let provider = '';
    if (o.kind === 'AuthorizationPolicy') {
      const a = s.action === undefined ? 'ALLOW' : str(s.action);
      if (a !== 'ALLOW' && a !== 'DENY' && a !== 'AUDIT' && a !== 'CUSTOM') {
        this.p.problem('invalid_field', o.source, o.line, o.label, `${o.label}: action ${JSON.stringify(s.action)} is not ALLOW, DENY, AUDIT or CUSTOM; skipped`);
        return;
      }
      action = a;
      selectorRaw = s.selector;
      const refs = [...(isObj(s.targetRef) ? [s.targetRef] : []), ...(Array.isArray(s.targetRefs) ? s.targetRefs : [])];
      for (const t of refs) if (isObj(t)) targetRefs.push(`${str(t.kind)}/${str(t.name)}`);
      rules = Array.isArray(s.rules) ? s.rules.length : 0;
      provider = isObj(s.provider) ? str(s.provider.name) : '';
    } else {
      selectorRaw = s.podSelector;
      if (selectorRaw === undefined) {
        this.p.problem('missing_field', o.source, o.line, o.label, `${o.label} has no spec.podSelector (use {} to select every pod); read as {}`);
      }
      const ingress = Array.isArray(s.ingress) ? s.ingress.length : 0;
      const egress = Array.isArray(s.egress) ? s.egress.length : 0;
      rules = ingress + egress;
      if (Array.isArray(s.policyTypes)) {
        for (const t of s.policyTypes) {
          if (t === 'Ingress' || t === 'Egress') policyTypes.push(t);
          else this.p.problem('invalid_field', o.source, o.line, o.label, `${o.label}: policyType ${JSON.stringify(t)} is not Ingress or Egress; ignored`);
        }
      } else {
        // Kubernetes' default: Ingress always, Egress when egress rules are present.
        policyTypes.push('Ingress');
        if (s.egress !== undefined) policyTypes.push('Egress');
      }
    }
    const sel = isObj(selectorRaw) ? selectorRaw : {};
    const policy: MeshPolicy = {
      kind: o.kind as MeshPolicy['kind'],
      namespace: o.namespace,
      name: o.name,
      ref: o.ref,
      action,
      selector: this.labels(sel.matchLabels, o, 'selector matchLabels'),
      selectorExpressions: Array.isArray(sel.matchExpressions) ? sel.matchExpressions.length : 0,
      targetRefs,
      rules,
      policyTypes,
      provider,
      source: o.source,
      line: o.line,
    };
    (o.kind === 'AuthorizationPolicy' ? this.authorizationPolicies : this.networkPolicies).set(o.ref, policy);
  }

  workload(o: RawObject): void {
    const annotations = this.labels(o.metadata.annotations, o, 'metadata.annotations');
    if (o.kind === 'Pod') {
      const named = (list: unknown): boolean => Array.isArray(list) && list.some((c) => isObj(c) && c.name === ISTIO_PROXY_CONTAINER);
      this.workloads.push({
        kind: 'Pod',
        namespace: o.namespace,
        name: o.name,
        ref: o.ref,
        address: str(o.status.podIP).trim(),
        labels: this.labels(o.metadata.labels, o, 'metadata.labels'),
        annotations,
        sidecar: annotations[SIDECAR_STATUS_ANNOTATION] !== undefined || named(o.spec.containers) || named(o.spec.initContainers),
        phase: str(o.status.phase),
        source: o.source,
        line: o.line,
      });
      return;
    }
    this.workloads.push({
      kind: 'WorkloadEntry',
      namespace: o.namespace,
      name: o.name,
      ref: o.ref,
      address: str(o.spec.address).trim(),
      labels: this.labels(o.spec.labels, o, 'spec.labels'),
      annotations,
      sidecar: true,
      phase: '',
      source: o.source,
      line: o.line,
    });
  }

  /** Route references to undefined subsets, then per-host routing and the version index. */
  finish(): Map<string, MeshHost> {
    const wildcardDrs = this.destinationRules.filter((d) => d.wildcard);
    const routing = new Map<HostBuilder, { weights?: SubsetWeight[]; vs: string; protocol?: RouteProtocol; conditional: ConditionalRoute[] }>();
    for (const vs of this.virtualServices) {
      const label = `VirtualService ${vs.ref}`;
      for (const route of vs.routes) {
        if (route.unreachable) continue;
        const perHost = new Map<HostBuilder, SubsetWeight[]>();
        for (const d of route.destinations) {
          const resolved = this.destinationHosts.get(d);
          if (resolved === undefined || resolved.wildcard) continue;
          const hb = this.hostFor(resolved);
          if (d.subset !== '' && !hb.subsets.some((s) => s.name === d.subset)) {
            const viaWildcard = wildcardDrs.some((w) => wildcardMatches(w.host, hb.host) && w.subsets.some((s) => s.name === d.subset));
            if (!viaWildcard) {
              this.p.problem(
                'unknown_subset',
                vs.source,
                vs.line,
                label,
                `${label}: spec.${route.protocol}[${route.index}] routes to subset ${d.subset} of ${hb.host}, which no DestinationRule of the mesh config defines (IST0101; Istio answers 503)`,
              );
            }
          }
          let ws = perHost.get(hb);
          if (ws === undefined) perHost.set(hb, (ws = []));
          const same = ws.find((w) => w.subset === d.subset);
          if (same !== undefined) same.weight += d.weight;
          else ws.push({ subset: d.subset, weight: d.weight });
        }
        for (const [hb, ws] of perHost) {
          let r = routing.get(hb);
          if (r === undefined) routing.set(hb, (r = { vs: '', conditional: [] }));
          if (route.conditions.length > 0) {
            for (const w of ws) {
              if (w.weight > 0) {
                r.conditional.push({ subset: w.subset, weight: w.weight, virtualService: vs.ref, protocol: route.protocol, conditions: route.conditions });
              }
            }
            continue;
          }
          // The VirtualService that claims the host wins over one that merely routes to it.
          const claims = hb.claimedBy === vs;
          const held = r.weights !== undefined;
          const heldByClaimer = held && hb.claimedBy !== undefined && r.vs === hb.claimedBy.ref;
          if (!held || (claims && !heldByClaimer)) {
            r.weights = ws;
            r.vs = vs.ref;
            r.protocol = route.protocol;
          }
        }
      }
    }

    const out = new Map<string, MeshHost>();
    const built = new Map<HostBuilder, MeshHost>();
    for (const [key, hb] of this.hosts) {
      let h = built.get(hb);
      if (h === undefined) {
        const r = routing.get(hb);
        const { byVersion, other } = versionIndex(hb.subsets);
        h = {
          host: hb.host,
          keys: hb.keys,
          destinationRules: hb.destinationRules,
          subsets: hb.subsets,
          stableSubset: hb.stableSubset,
          routing: r === undefined ? undefined : { weights: r.weights, virtualService: r.vs, protocol: r.protocol, conditional: r.conditional },
          subsetByVersion: byVersion,
          otherVersionSubset: other,
        };
        built.set(hb, h);
      }
      out.set(key, h);
    }
    return out;
  }
}

/** `subsetForLabels` answered once per version any subset names, and once for every other version. */
function versionIndex(subsets: readonly MeshSubset[]): { byVersion: Map<string, string>; other: string } {
  const byVersion = new Map<string, string>();
  for (const s of subsets) {
    const v = s.labels.version;
    if (v !== undefined && v !== '' && !byVersion.has(v)) byVersion.set(v, subsetForLabels(subsets, { version: v }) ?? '');
  }
  return { byVersion, other: subsetForLabels(subsets, {}) ?? '' };
}

/**
 * Parse and interpret every source. Never throws on input: what cannot be used is a problem, and what can is
 * in `config`.
 */
export function parseMeshConfig(sources: readonly MeshConfigSource[], options: ParseMeshConfigOptions = {}): MeshConfigResult {
  const p = new Parser();
  for (const src of sources) p.readSource(src);
  const b = new Builder(p, (options.clusterDomain ?? 'cluster.local').replace(/^\.+|\.+$/g, '') || 'cluster.local');
  // DestinationRules first: route checks need every subset.
  for (const o of p.objects.values()) if (o.kind === 'DestinationRule') b.destinationRule(o);
  for (const o of p.objects.values()) if (o.kind === 'VirtualService') b.virtualService(o);
  for (const o of p.objects.values()) if (o.kind === 'AuthorizationPolicy' || o.kind === 'NetworkPolicy') b.policy(o);
  for (const o of p.objects.values()) if (o.kind === 'Pod' || o.kind === 'WorkloadEntry') b.workload(o);
  const hosts = b.finish();
  return {
    config: {
      hosts,
      destinationRules: b.destinationRules,
      virtualServices: b.virtualServices,
      authorizationPolicies: b.authorizationPolicies,
      networkPolicies: b.networkPolicies,
      workloads: b.workloads,
      ignoredKinds: p.ignoredKinds,
    },
    problems: p.problems,
  };
}
