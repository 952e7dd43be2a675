/**
 * Envoy cluster names as Istio builds them (`BuildSubsetKey`/`ParseSubsetKey`,
 * https://github.com/istio/istio/blob/master/pilot/pkg/model/service.go) and the forms listed in
 * shared/reference/telemetry-formats.md §3. Pure string scanning: this runs once per access-log line.
 */

export type ClusterDirection = 'outbound' | 'inbound' | 'inbound-vip' | 'special' | 'none';

export interface ClusterRef {
  direction: ClusterDirection;
  /** Service port (outbound), target port (inbound ≥ 1.8); 0 when absent. */
  port: number;
  /**
   * DestinationRule subset; '' when none. For the pre-1.8 inbound form the third field is the service
   * *port name*, not a subset, and for waypoints it is `http`/`tcp`[`/SUBSET`]: both are reduced here.
   */
  subset: string;
  /** FQDN or external host; '' for ≥ 1.8 inbound clusters; the name itself for special clusters. */
  host: string;
}

export const PASSTHROUGH_CLUSTER = 'PassthroughCluster';
export const BLACKHOLE_CLUSTER = 'BlackHoleCluster';
const INBOUND_PASSTHROUGH_PREFIX = 'InboundPassthroughCluster';

const NONE: ClusterRef = Object.freeze({ direction: 'none', port: 0, subset: '', host: '' }) as ClusterRef;

/** Strip the one trailing `;` Istio ≥ 1.22 adds through `alt_stat_name` (istio/istio#51861, #54219). */
export function stripAltStatSuffix(name: string): string {
  return name.length > 0 && name.charCodeAt(name.length - 1) === 59 /* ; */ ? name.slice(0, -1) : name;
}

function parsePort(s: string): number {
  if (s.length === 0 || s.length > 5) return 0;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return 0;
    n = n * 10 + c;
  }
  return n <= 65535 ? n : 0;
}

/**
 * The port of an Envoy address `%UPSTREAM_HOST%`/`%DOWNSTREAM_LOCAL_ADDRESS%` in `s[start, end)`: `10.0.0.1:443`,
 * `[2001:db8::1]:443`. 0 for anything else: unset, a bare IPv6 address (its last group is not a port), a pipe
 * path, an internal listener `envoy://…`. Scans in place so a parser can read it from its line unsliced.
 */
export function addressPort(s: string, start = 0, end = s.length): number {
  const colon = s.lastIndexOf(':', end - 1);
  if (colon <= start || colon === end - 1) return 0; // no host, or no port
  if (s.charCodeAt(start) === 91 /* [ */) {
    if (s.charCodeAt(colon - 1) !== 93 /* ] */) return 0;
  } else if (s.lastIndexOf(':', colon - 1) >= start) {
    return 0; // more than one colon outside brackets: IPv6 without a port
  }
  if (end - colon - 1 > 5) return 0;
  let n = 0;
  for (let i = colon + 1; i < end; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return 0;
    n = n * 10 + c;
  }
  return n <= 65535 ? n : 0;
}

/**
 * Parse any upstream cluster name: `outbound|9080|v1|reviews.default.svc.cluster.local`, `inbound|9080||`,
 * `inbound|9080|http|reviews.default.svc.cluster.local` (pre-1.8), `inbound-vip|9080|http/v1|host` (waypoint),
 * `outbound_.9080_.v1_.host` (SNI-routed), `PassthroughCluster`, `BlackHoleCluster`, `InboundPassthroughClusterIpv4`,
 * `-`/'' (none) — each optionally with a trailing `;`.
 */
export function parseUpstreamCluster(raw: string): ClusterRef {
  const name = stripAltStatSuffix(raw);
  if (name.length === 0 || name === '-') return NONE;
  const p1 = name.indexOf('|');
  if (p1 < 0) {
    if (name.startsWith('outbound_.')) {
      const sni = parseSni(name);
      if (sni) return sni;
    }
    if (name.startsWith(INBOUND_PASSTHROUGH_PREFIX)) return { direction: 'inbound', port: 0, subset: '', host: name };
    return { direction: 'special', port: 0, subset: '', host: name };
  }
  const p2 = name.indexOf('|', p1 + 1);
  const p3 = p2 < 0 ? -1 : name.indexOf('|', p2 + 1);
  if (p3 < 0 || name.indexOf('|', p3 + 1) >= 0) return { direction: 'special', port: 0, subset: '', host: name };
  const dir = name.slice(0, p1);
  const port = parsePort(name.slice(p1 + 1, p2));
  let subset = name.slice(p2 + 1, p3);
  const host = name.slice(p3 + 1);
  if (dir === 'outbound') return { direction: 'outbound', port, subset, host };
  if (dir === 'inbound') {
    // Pre-1.8 inbound clusters carry the service port *name* in the subset slot (istio/istio#27303).
    return { direction: 'inbound', port, subset: '', host };
  }
  if (dir === 'inbound-vip') {
    // Waypoint service clusters: `http`, `tcp`, `http/SUBSET`, `tcp/SUBSET` (cluster_waypoint.go).
    const slash = subset.indexOf('/');
    subset = slash >= 0 ? subset.slice(slash + 1) : '';
    return { direction: 'inbound-vip', port, subset, host };
  }
  return { direction: 'special', port: 0, subset: '', host: name };
}

/**
 * The "DNS SRV" form `outbound_.<port>_.<subset>_.<host>` used as the mTLS SNI (seen in
 * `%REQUESTED_SERVER_NAME%` on server-side lines) and for SNI-routed clusters. No subset gives `_._.`.
 * Returns undefined for anything else (plain hostnames in the SNI column of TLS passthrough traffic).
 */
export function parseSni(raw: string): ClusterRef | undefined {
  const name = stripAltStatSuffix(raw);
  if (!name.startsWith('outbound_.')) return undefined;
  const a = 10; // after `outbound_.`
  const b = name.indexOf('_.', a);
  if (b < 0) return undefined;
  const c = name.indexOf('_.', b + 2);
  if (c < 0) return undefined;
  const port = parsePort(name.slice(a, b));
  if (port === 0) return undefined;
  const subsetField = name.slice(b + 2, c);
  const host = name.slice(c + 2);
  if (host.length === 0) return undefined;
  return { direction: 'outbound', port, subset: subsetField === '_' ? '' : subsetField, host };
}

export interface ServiceName {
  host: string;
  service: string;
  namespace: string;
}

const SVC_MARKER = '.svc.';

/**
 * `reviews.default.svc.cluster.local` → service `reviews`, namespace `default`. Hosts outside
 * `*.svc.<domain>` keep the whole host as the service and an empty namespace (CONTRACT.md §4), and so do
 * `PassthroughCluster` and `BlackHoleCluster`, which are destinations of their own.
 */
export function serviceFromHost(host: string): ServiceName {
  let svc = host.indexOf(SVC_MARKER);
  if (svc < 0 && host.endsWith('.svc')) svc = host.length - 4; // `reviews.default.svc`, no cluster domain
  if (svc > 0) {
    const dot = host.indexOf('.');
    if (dot > 0 && dot < svc) {
      return { host, service: host.slice(0, dot), namespace: host.slice(dot + 1, svc) };
    }
  }
  return { host, service: host, namespace: '' };
}
