/**
 * Routes: VirtualServices, their routes and match conditions, and the configured weight of each subset.
 *
 * - **Configured weight** beside the observed traffic share: the weights per subset of a host's default route
 *   (the first route without a match condition), and the subsets that match-conditioned routes reach besides
 *   (`configuredWeights`, `config.hosts.get(host).routing`).
 * - Two VirtualServices claiming the same host for the mesh conflict (istioctl analyze IST0109); the earlier one
 *   wins, as Istio keeps the oldest.
 * - Route weights: one destination gets 100 whatever it says; absent weights among several are 0. Since
 *   istio/istio#39544 (2022, Istio 1.15) weights need not sum to 100: each destination gets weight/sum. meshlens
 *   normalizes to percent likewise and reports a sum other than 100 (older Istio rejects such a route).
 */
import { wildcardMatches, type HostBuilder, type HostIndex, type MeshDestinationRule, type ResolvedHost } from './hosts';
import type { MeshConfig } from './parse';
import { isObj, str, type Obj, type RawObject, type Reader } from './read';

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
/** Configured weights per subset of the host's default route (see `HostRouting.weights`). */
export function configuredWeights(config: MeshConfig, host: string): readonly SubsetWeight[] | undefined {
  return config.hosts.get(host)?.routing?.weights;
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
// Reading VirtualServices (parse.ts)

/** The VirtualServices of one parse; the hosts they claim and route to go into the host index. */
export class RouteReader {
  readonly virtualServices: MeshVirtualService[] = [];
  /** Every key a route destination's host resolves to, for indexing in routing(). */
  private readonly destinationHosts = new Map<MeshRouteDestination, ResolvedHost>();

  constructor(
    private readonly reader: Reader,
    private readonly index: HostIndex,
  ) {}

  virtualService(o: RawObject): void {
    const hostsRaw = Array.isArray(o.spec.hosts) ? o.spec.hosts : [];
    const hosts = hostsRaw.map(str).filter((h) => h.trim() !== '').map((h) => this.index.resolve(h, o.namespace));
    const gateways = Array.isArray(o.spec.gateways) ? o.spec.gateways.map(str).filter(Boolean) : [];
    const appliesToMesh = gateways.length === 0 || gateways.includes('mesh');
    const routes: MeshRoute[] = [];
    for (const protocol of ['http', 'tcp', 'tls'] as const) {
      const list = o.spec[protocol];
      if (list === undefined) continue;
      if (!Array.isArray(list)) {
        this.reader.problem('invalid_field', o.source, o.line, o.label, `${o.label}: spec.${protocol} is not a list; ignored`);
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
        this.reader.problem(
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
      const hb = this.index.hostFor(h);
      if (hb.claimedBy === undefined) hb.claimedBy = vs;
      else if (hb.claimedBy !== vs) {
        this.reader.problem(
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
      this.reader.problem('invalid_field', o.source, o.line, o.label, `${where}.route is not a list; ignored`);
    }
    const list = Array.isArray(raw) ? raw : [];
    const weights: number[] = [];
    list.forEach((d, i) => {
      const dest = isObj(d) && isObj(d.destination) ? d.destination : undefined;
      const host = dest === undefined ? '' : str(dest.host);
      if (dest === undefined || host.trim() === '') {
        this.reader.problem('missing_field', o.source, o.line, o.label, `${where}.route[${i}] has no destination.host; skipped`);
        return;
      }
      let w = isObj(d) ? d.weight : undefined;
      if (w === undefined || w === null) w = 0;
      if (typeof w !== 'number' || !Number.isInteger(w) || w < 0) {
        this.reader.problem('invalid_field', o.source, o.line, o.label, `${where}.route[${i}].weight ${JSON.stringify(w)} is not a non-negative integer; read as 0`);
        w = 0;
      }
      const port = isObj(dest.port) && typeof dest.port.number === 'number' ? dest.port.number : 0;
      const subset = typeof dest.subset === 'string' ? dest.subset : '';
      const resolved = this.index.resolve(host, o.namespace);
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
        this.reader.problem('invalid_field', o.source, o.line, o.label, `${where}: every destination weight is 0, so the route sends nowhere`);
      } else {
        if (sum !== 100) {
          this.reader.problem(
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

  /**
   * Route references to undefined subsets, then per-host routing: call once every DestinationRule and
   * VirtualService is read.
   */
  routing(destinationRules: readonly MeshDestinationRule[]): Map<HostBuilder, HostRouting> {
    const wildcardDrs = destinationRules.filter((d) => d.wildcard);
    const routing = new Map<HostBuilder, { weights?: SubsetWeight[]; vs: string; protocol?: RouteProtocol; conditional: ConditionalRoute[] }>();
    for (const vs of this.virtualServices) {
      const label = `VirtualService ${vs.ref}`;
      for (const route of vs.routes) {
        if (route.unreachable) continue;
        const perHost = new Map<HostBuilder, SubsetWeight[]>();
        for (const d of route.destinations) {
          const resolved = this.destinationHosts.get(d);
          if (resolved === undefined || resolved.wildcard) continue;
          const hb = this.index.hostFor(resolved);
          if (d.subset !== '' && !hb.subsets.some((s) => s.name === d.subset)) {
            const viaWildcard = wildcardDrs.some((w) => wildcardMatches(w.host, hb.host) && w.subsets.some((s) => s.name === d.subset));
            if (!viaWildcard) {
              this.reader.problem(
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
    const out = new Map<HostBuilder, HostRouting>();
    for (const [hb, r] of routing) out.set(hb, { weights: r.weights, virtualService: r.vs, protocol: r.protocol, conditional: r.conditional });
    return out;
  }
}
