/**
 * Destinations resolved once per distinct name (DESIGN.md, "Cheap per line"). A mesh has a few hundred upstream
 * clusters and SNIs at most, and every access-log line names one of them: parsing the name, slicing its host
 * and splitting that into service and namespace on every line allocated five strings and two objects for an
 * answer that never changes. Here each distinct name is parsed once into a frozen `Destination`, and every
 * record of that destination shares its strings, which also makes later Map lookups keyed by them (metric
 * series) cheap: the hash of a shared string is computed once.
 *
 * The caches are bounded: cluster names, SNIs and authorities come from the input, and a sender that makes up
 * a new one per line must not grow memory. A cache that reaches DESTINATION_CACHE_MAX entries is cleared and
 * refilled, rather than evicted entry by entry (an LRU would cost bookkeeping on every hit to serve an input
 * that is hostile or broken anyway).
 */
import { parseSni, parseUpstreamCluster, serviceFromHost, type ClusterDirection, type ClusterRef } from './cluster';

/** A parsed cluster name or SNI with its host split into service and namespace (`serviceFromHost`). Frozen. */
export interface Destination {
  readonly direction: ClusterDirection;
  /** As ClusterRef.port: service or target port, 0 when the name has none. */
  readonly port: number;
  readonly subset: string;
  /** As ClusterRef.host: '' for ≥ 1.8 inbound clusters. */
  readonly host: string;
  /** `reviews` of `reviews.default.svc.cluster.local`; the host itself outside `*.svc.<domain>`. */
  readonly service: string;
  /** `default` of `reviews.default.svc.cluster.local`; '' outside `*.svc.<domain>`. */
  readonly namespace: string;
}

/** Entries per cache before it is cleared: far above the distinct names of a real mesh. */
export const DESTINATION_CACHE_MAX = 4096;

/** Cluster name (raw, as logged) → destination. */
const byCluster = new Map<string, Destination>();
/** SNI (raw) → destination, or null for a name that is not Istio's `outbound_.` form. */
const bySni = new Map<string, Destination | null>();
/** `:authority` (raw) → destination of its host, or null when it names none. */
const byAuthority = new Map<string, Destination | null>();

/**
 * A copy of `s` that holds nothing else alive. A TEXT parser's fields are slices of the line, which V8 keeps as
 * views into the whole decoded request body: a cache key (and the destination strings cut from it) kept as such a
 * view would hold a body of up to 16 MiB for as long as the entry lives. Written out and read back through a
 * buffer, the copy is a string of its own. Only on a cache miss.
 */
function detached(s: string): string {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0xff) return Buffer.from(s, 'utf16le').toString('utf16le');
  }
  return Buffer.from(s, 'latin1').toString('latin1');
}

function freeze(ref: ClusterRef): Destination {
  const s = serviceFromHost(ref.host);
  return Object.freeze({ direction: ref.direction, port: ref.port, subset: ref.subset, host: ref.host, service: s.service, namespace: s.namespace });
}

function remember<V>(cache: Map<string, V>, key: string, value: V): V {
  if (cache.size >= DESTINATION_CACHE_MAX) cache.clear();
  cache.set(key, value);
  return value;
}

/** `parseUpstreamCluster(name)` with its host's service and namespace, cached. */
export function destinationOfCluster(name: string): Destination {
  const hit = byCluster.get(name);
  if (hit !== undefined) return hit;
  const own = detached(name);
  return remember(byCluster, own, freeze(parseUpstreamCluster(own)));
}

/** `parseSni(name)` with its host's service and namespace, cached; undefined when `name` is not Istio's SNI form. */
export function destinationOfSni(name: string): Destination | undefined {
  let hit = bySni.get(name);
  if (hit === undefined) {
    const own = detached(name);
    const ref = parseSni(own);
    hit = remember(bySni, own, ref === undefined ? null : freeze(ref));
  }
  return hit === null ? undefined : hit;
}

/** `reviews:9080` → `reviews`; `[::1]:80` → `[::1]`. */
function authorityHost(authority: string): string {
  if (authority.length === 0) return '';
  if (authority.charCodeAt(0) === 91 /* [ */) {
    const end = authority.indexOf(']');
    return end > 0 ? authority.slice(0, end + 1) : authority;
  }
  const colon = authority.lastIndexOf(':');
  return colon > 0 ? authority.slice(0, colon) : authority;
}

/**
 * The destination an `:authority` names when nothing better does (inbound lines without an Istio SNI): its host
 * without the port, direction 'none', no port, no subset; undefined for an empty authority. Cached.
 */
export function destinationOfAuthority(authority: string): Destination | undefined {
  let hit = byAuthority.get(authority);
  if (hit === undefined) {
    const own = detached(authority);
    const host = authorityHost(own);
    hit = remember(byAuthority, own, host.length === 0 ? null : freeze({ direction: 'none', port: 0, subset: '', host }));
  }
  return hit === null ? undefined : hit;
}

/** Entries held per cache (tests of the bound). */
export function destinationCacheSizes(): { clusters: number; snis: number; authorities: number } {
  return { clusters: byCluster.size, snis: bySni.size, authorities: byAuthority.size };
}
