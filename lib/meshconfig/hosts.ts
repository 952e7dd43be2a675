/**
 * Hosts and subsets: DestinationRules, the hosts they and the routes name, and the subset a workload belongs to.
 *
 * - A host without dots is `<name>.<namespace>.svc.<clusterDomain>` (Istio's `ResolveShortnameToFQDN`). Istio
 *   expands nothing else and keeps `reviews.prod` literally; users mean the service, so meshlens indexes such a
 *   host under both `reviews.prod` and `reviews.prod.svc.<clusterDomain>` (and `x.ns.svc` under
 *   `x.ns.svc.<clusterDomain>` too). The canonical name is the FQDN when `prod` is a namespace some object of the
 *   config lives in, else the literal host (`httpbin.org` stays `httpbin.org`). Wildcard hosts (`*.example.com`,
 *   `*`) are recorded, never indexed.
 * - DestinationRules for the same host are merged, the earlier one winning on conflicts: subsets are the union, a
 *   repeated subset name keeps the first. (Istio merges the rules of one host within a namespace; across
 *   namespaces the client's namespace decides, which a destination-side lookup cannot know.)
 * - **Subset** (CONTRACT.md §4): a record whose cluster name carries no subset (server-side `inbound|9080||`)
 *   gets one when the destination's `version` label selects exactly one DestinationRule subset
 *   (`subsetForVersion`, called per record: two Map gets).
 * - **Stable subset** for the canary judge: the DestinationRule annotation `meshlens.io/stable-subset: <subset>`
 *   names the baseline (`stableSubset`). Istio itself has no notion of a stable subset.
 */
import type { MeshConfig } from './parse';
import { isObj, readLabels, str, type RawObject, type Reader } from './read';
import type { HostRouting, MeshVirtualService } from './routes';

/** The DestinationRule annotation naming the baseline subset for canary judgement. */
export const STABLE_SUBSET_ANNOTATION = 'meshlens.io/stable-subset';

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
// Building the host index (parse.ts)

export interface ResolvedHost {
  host: string;
  keys: string[];
  wildcard: boolean;
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

export function resolveHost(raw: string, namespace: string, domain: string, namespaces: ReadonlySet<string>): ResolvedHost {
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

export function wildcardMatches(pattern: string, host: string): boolean {
  return pattern === '*' || (pattern.startsWith('*.') && host.endsWith(pattern.slice(1)));
}

export interface HostBuilder {
  host: string;
  keys: string[];
  destinationRules: string[];
  subsets: MeshSubset[];
  stableSubset: string | undefined;
  stableFrom: string;
  claimedBy: MeshVirtualService | undefined;
}

/** Every host of one parse, under each of its keys; routes add the hosts they send to. */
export class HostIndex {
  readonly hosts = new Map<string, HostBuilder>();

  constructor(
    private readonly reader: Reader,
    private readonly domain: string,
  ) {}

  resolve(raw: string, namespace: string): ResolvedHost {
    return resolveHost(raw, namespace, this.domain, this.reader.namespaces);
  }

  hostFor(r: ResolvedHost): HostBuilder {
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

}

/** Reads one DestinationRule into the index; undefined (and a problem) when it names no host. */
export function readDestinationRule(reader: Reader, index: HostIndex, o: RawObject): MeshDestinationRule | undefined {
  const declaredHost = str(o.spec.host);
  if (declaredHost.trim() === '') {
    reader.problem('missing_field', o.source, o.line, o.label, `${o.label} has no spec.host; skipped`);
    return;
  }
  const r = index.resolve(declaredHost, o.namespace);
  const subsets: MeshSubset[] = [];
  const raw = o.spec.subsets;
  if (raw !== undefined && !Array.isArray(raw)) {
    reader.problem('invalid_field', o.source, o.line, o.label, `${o.label}: spec.subsets is not a list`);
  }
  const seen = new Set<string>();
  (Array.isArray(raw) ? raw : []).forEach((s, i) => {
    const name = isObj(s) ? str(s.name) : '';
    if (name === '') {
      reader.problem('missing_field', o.source, o.line, o.label, `${o.label}: subset ${i} has no name; skipped`);
      return;
    }
    if (seen.has(name)) {
      reader.problem('duplicate_subset', o.source, o.line, o.label, `${o.label}: subset ${name} is defined twice; the first is used`);
      return;
    }
    seen.add(name);
    subsets.push({ name, labels: readLabels(reader, isObj(s) ? s.labels : undefined, o, `subset ${name} labels`), destinationRule: o.ref });
  });
  const annotations = isObj(o.metadata.annotations) ? o.metadata.annotations : {};
  const stableRaw = annotations[STABLE_SUBSET_ANNOTATION];
  let stable: string | undefined;
  if (stableRaw !== undefined) {
    const s = typeof stableRaw === 'string' ? stableRaw.trim() : String(stableRaw);
    if (seen.has(s)) stable = s;
    else {
      reader.problem(
        'unknown_stable_subset',
        o.source,
        o.line,
        o.label,
        `${o.label}: annotation ${STABLE_SUBSET_ANNOTATION}: ${JSON.stringify(s)} names none of its subsets (${[...seen].join(', ') || 'none'}); ignored`,
      );
    }
  }
  const rule: MeshDestinationRule = {
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
  };
  if (r.wildcard) return rule;
  const hb = index.hostFor(r);
  hb.destinationRules.push(o.ref);
  for (const s of subsets) {
    const prev = hb.subsets.find((x) => x.name === s.name);
    if (prev !== undefined) {
      reader.problem(
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
      reader.problem(
        'conflicting_stable_subset',
        o.source,
        o.line,
        o.label,
        `${o.label} names stable subset ${stable} of ${hb.host}, DestinationRule ${hb.stableFrom} names ${hb.stableSubset}; the first is used`,
      );
    }
  }
  return rule;
}

/** The hosts of the index, each under every key, with their routing (routes.ts) and version index. */
export function buildHosts(index: HostIndex, routing: ReadonlyMap<HostBuilder, HostRouting>): Map<string, MeshHost> {
  const out = new Map<string, MeshHost>();
  const built = new Map<HostBuilder, MeshHost>();
  for (const [key, hb] of index.hosts) {
    let h = built.get(hb);
    if (h === undefined) {
      const { byVersion, other } = versionIndex(hb.subsets);
      h = {
        host: hb.host,
        keys: hb.keys,
        destinationRules: hb.destinationRules,
        subsets: hb.subsets,
        stableSubset: hb.stableSubset,
        routing: routing.get(hb),
        subsetByVersion: byVersion,
        otherVersionSubset: other,
      };
      built.set(hb, h);
    }
    out.set(key, h);
  }
  return out;
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

