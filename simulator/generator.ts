/**
 * The traffic generator: Bookinfo page loads through the ingress gateway and the `sleep` client's calls, as
 * the sidecars would log them (both reporters, TEXT and JSON), trace them (Zipkin) and as Hubble would see the
 * database connections, with the ground truth of what meshlens must make of it.
 *
 * One page load: gateway → productpage v1 → details v1, then → reviews (v1/v2/v3 by the VirtualService) →
 * ratings v1 (reviews v2 and v3 only; v1 shows no stars and does not call ratings, as in Bookinfo). Every hop is
 * logged by the client proxy (reporter `source`, upstream cluster `outbound|9080|<subset>|<host>`) and, when the
 * request reached it, by the server sidecar (reporter `destination`, `inbound|9080||` and the mTLS SNI
 * `outbound_.9080_.<subset>_.<host>`), with the same `x-request-id`. Each hop has its own request id: Envoy
 * makes one when the caller sends none, and a per-hop id keeps the pairing of the two sidecars' lines exact
 * (Bookinfo's apps forward the caller's id, which would give every hop of a page the same one).
 *
 * The sleep client (4 % of root requests): calls ratings and is refused by the ratings sidecar's DENY policy
 * (`default/deny-sleep`, rule 0: 403 `rbac_access_denied_matched_policy[…]`; sleep's sidecar logs the 403 as
 * `via_upstream`); calls `http://httpbin.org` (Istio's `block_all` route, 502) and `https://api.github.com` (TCP to
 * `BlackHoleCluster`) under `REGISTRY_ONLY`; and connects to mysqldb:3306, which the NetworkPolicy drops (a Hubble
 * `DROPPED` flow; port 3306 is excluded from the sidecars, so no access log). Ratings' own connections to
 * mysqldb are allowed (`FORWARDED`).
 *
 * Determinism: three seeded streams, so that what varies with one option does not shift the others — `traffic`
 * (arrivals, routing, failures, durations, ids, addresses), `encoding` (TEXT or JSON per record) and `tracing`
 * (sampling, span ids). The same seed gives the same requests whatever `jsonShare`, `shipper` or
 * `traceSampling` are, and the same bytes when they are equal too. Root requests are generated one after the
 * other, so generating until T1 and then until T2 gives the same records as generating until T2 at once.
 */
import { BLACKHOLE_CLUSTER, BLACKHOLE_ROUTE, UNKNOWN, type Outcome } from '../lib/model';
import {
  CURL_USER_AGENT,
  DENY_SLEEP,
  DOWNSTREAM_DISCONNECT_RATE,
  EXTERNAL,
  IPHONE_USER_AGENTS,
  OTHER_USER_AGENTS,
  PODS,
  PROFILES,
  PUBLIC_HOST,
  RATINGS_DB_CONNECT_RATE,
  REVIEWS_ROUTING,
  ROOT_MIX,
  ROUTE_NAMES,
  SERVICES,
  type Pod,
  type Service,
  type SubsetProfile,
} from './mesh';
import { Rng } from './prng';
import {
  fluentBitRecord,
  formatHubbleFlow,
  formatJson,
  formatText,
  formatZipkinSpan,
  isoMillis,
  type AccessLogFields,
} from './records';
import { TruthAccumulator, type DestinationKey, type GroundTruth, type RecordFacts } from './truth';

/** How access-log lines leave the pod. */
export type Shipper = 'fluent-bit' | 'none';

export interface GeneratorOptions {
  /** Integer in [0, 2^32). */
  seed: number;
  /** Event time of the first root request, Unix ms. */
  startTimeMs: number;
  /** Root requests (page loads + sleep calls) per second of event time, Poisson arrivals. Default 20. */
  rps?: number;
  /** Share of access-log records in Istio's JSON encoding; the rest are TEXT. Default 0.5. */
  jsonShare?: number;
  /**
   * `fluent-bit` (default): each line is a Fluent Bit record with the pod's Kubernetes metadata, which is what
   * names the calling workload (`source_workload`) of client-side records. `none`: raw lines as the sidecar prints
   * them (what benchmarks want); meshlens then knows no source workload (`unknown`).
   */
  shipper?: Shipper;
  /** Share of root requests traced (Zipkin spans for each of their hops). Default 1. */
  traceSampling?: number;
}

export interface SimulationOptions extends GeneratorOptions {
  /** Number of root requests to generate. */
  requests?: number;
  /** Or: generate root requests starting within this much event time from `startTimeMs`. */
  durationMs?: number;
}

/** What one generation step emitted. Every array is in generation order (a hop's children before the hop). */
export interface TelemetryBatch {
  /**
   * Access-log records whose line is Istio TEXT: the raw line (`shipper: 'none'`) or a Fluent Bit NDJSON
   * record around it. Post to `POST :8080/v1/accesslogs`.
   */
  textLines: string[];
  /** Likewise, for records whose line is Istio JSON. */
  jsonLines: string[];
  /** Zipkin v2 spans, one JSON object each: `[${spans.join(',')}]` is a `POST :9411/api/v2/spans` body. */
  spans: string[];
  /** Hubble flows as `hubble observe -o json` prints them, one per line: `POST :8080/v1/flows` NDJSON. */
  flowLines: string[];
}

export interface Simulation extends TelemetryBatch {
  truth: GroundTruth;
}

/** A generator that keeps going: the demo calls `until(Date.now())` on a timer. */
export interface TrafficGenerator {
  /** Generate every root request that starts before `eventTimeMs` (and all of their hops). */
  until(eventTimeMs: number): TelemetryBatch;
  /** Generate the next `count` root requests. */
  next(count: number): TelemetryBatch;
  /** The truth over everything generated so far (a copy). */
  truth(): GroundTruth;
  /** Just the counts of `truth().emitted`, without copying the rest. */
  emitted(): GroundTruth['emitted'];
}

const DEFAULT_RPS = 20;

/** Generate a fixed amount of traffic and its ground truth. */
export function simulate(options: SimulationOptions): Simulation {
  const { requests, durationMs } = options;
  if ((requests === undefined) === (durationMs === undefined)) {
    throw new TypeError('simulate: give exactly one of `requests` and `durationMs`');
  }
  const gen = createTrafficGenerator(options);
  let batch: TelemetryBatch;
  if (requests !== undefined) {
    if (!Number.isInteger(requests) || requests < 0) throw new RangeError(`requests must be a non-negative integer, got ${requests}`);
    batch = gen.next(requests);
  } else {
    if (!(durationMs! >= 0)) throw new RangeError(`durationMs must be >= 0, got ${durationMs}`);
    batch = gen.until(options.startTimeMs + durationMs!);
  }
  return { ...batch, truth: gen.truth() };
}

export function createTrafficGenerator(options: GeneratorOptions): TrafficGenerator {
  return new Generator(options);
}

function share(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!(v >= 0 && v <= 1)) throw new RangeError(`${name} must be in [0, 1], got ${v}`);
  return v;
}

/** The span context a call inherits: the trace and the span of the work that makes the call. */
interface TraceContext {
  traceId: string;
  parentSpanId: string;
}

/** One client → server HTTP call inside the mesh. */
interface CallSpec {
  client: Pod;
  service: Service;
  profile: SubsetProfile;
  routeName: string;
  startMs: number;
  path: string;
  authority: string;
  userAgent: string;
  /** `x-forwarded-for` both proxies see ('' inside the mesh). */
  xForwardedFor: string;
  /** The client proxy's downstream addresses (the app's connection, or the browser's at the gateway). */
  downstreamLocal: string;
  downstreamRemote: string;
  trace: TraceContext | undefined;
  /** The browser goes away before the answer: both proxies log code 0 `DC`. */
  downstreamDisconnect?: boolean;
  /** The server sidecar's DENY policy refuses the caller (403 RBAC). */
  deniedBy?: { namespace: string; name: string; rule: number };
  /** The server's calls to its own dependencies, starting at `startMs`; returns the time they took, ms. */
  work?: (startMs: number, trace: TraceContext | undefined) => number;
}

const INBOUND_LOCAL_IP = '127.0.0.6';
const GATEWAY_LISTENER_PORT = 8080;
/** Fluent Bit's default flush interval: a line is collected at the next whole second after it was written. */
const COLLECT_INTERVAL_MS = 1000;

const BLACKHOLE_DESTINATION: DestinationKey = { namespace: '', service: BLACKHOLE_CLUSTER, host: BLACKHOLE_CLUSTER, subset: '' };
const MYSQLDB_DESTINATION: DestinationKey = { namespace: SERVICES.mysqldb.namespace, service: SERVICES.mysqldb.name, host: SERVICES.mysqldb.host, subset: '' };

/**
 * The destination a subset profile serves (each profile belongs to one service), one object per profile: the
 * truth accumulator recognizes destinations by identity first.
 */
const destinations = new Map<SubsetProfile, DestinationKey>();
function destinationOf(svc: Service, p: SubsetProfile): DestinationKey {
  let d = destinations.get(p);
  if (!d) {
    d = { namespace: svc.namespace, service: svc.name, host: svc.host, subset: p.subset };
    destinations.set(p, d);
  }
  return d;
}

/** Body sizes of Envoy's and the apps' short answers. */
const BODY_BYTES = { rbacDenied: 19, connectFailure: 91, appError: 21 } as const;

class Generator implements TrafficGenerator {
  private readonly traffic: Rng;
  private readonly encoding: Rng;
  private readonly tracing: Rng;
  private readonly meanGapMs: number;
  private readonly jsonShare: number;
  private readonly traceSampling: number;
  private readonly namesSource: boolean;
  private readonly acc: TruthAccumulator;
  private nextRootMs: number;
  private out: TelemetryBatch = emptyBatch();

  constructor(o: GeneratorOptions) {
    const rps = o.rps ?? DEFAULT_RPS;
    if (!(rps > 0 && Number.isFinite(rps))) throw new RangeError(`rps must be a positive number, got ${rps}`);
    if (!Number.isFinite(o.startTimeMs)) throw new RangeError(`startTimeMs must be a number, got ${o.startTimeMs}`);
    if (o.shipper !== undefined && o.shipper !== 'fluent-bit' && o.shipper !== 'none') {
      throw new RangeError(`shipper must be 'fluent-bit' or 'none', got ${String(o.shipper)}`);
    }
    this.traffic = new Rng(o.seed);
    // Independent streams for what must not shift the traffic when its option changes (see the header).
    this.encoding = new Rng((o.seed ^ 0x5bd1e995) >>> 0);
    this.tracing = new Rng((o.seed ^ 0x27d4eb2f) >>> 0);
    this.meanGapMs = 1000 / rps;
    this.jsonShare = share('jsonShare', o.jsonShare, 0.5);
    this.traceSampling = share('traceSampling', o.traceSampling, 1);
    this.namesSource = (o.shipper ?? 'fluent-bit') === 'fluent-bit';
    this.nextRootMs = o.startTimeMs;
    this.acc = new TruthAccumulator(o.seed, {
      user_agent_regex: REVIEWS_ROUTING.userAgentRegex,
      header_match_share: REVIEWS_ROUTING.iphoneShare,
      weights: { ...REVIEWS_ROUTING.weights },
      expected_shares: { ...REVIEWS_ROUTING.expectedShares },
    });
  }

  until(eventTimeMs: number): TelemetryBatch {
    while (this.nextRootMs < eventTimeMs) this.rootRequest();
    return this.flush();
  }

  next(count: number): TelemetryBatch {
    for (let i = 0; i < count; i++) this.rootRequest();
    return this.flush();
  }

  truth(): GroundTruth {
    return this.acc.snapshot();
  }

  emitted(): GroundTruth['emitted'] {
    return { ...this.acc.emitted };
  }

  private flush(): TelemetryBatch {
    const batch = this.out;
    this.out = emptyBatch();
    return batch;
  }

  // ---------------------------------------------------------------------------------------------------
  // Root requests
  // ---------------------------------------------------------------------------------------------------

  private rootRequest(): void {
    const rng = this.traffic;
    // Envoy logs millisecond start times; the arrival process runs on fractional ms.
    const startMs = Math.floor(this.nextRootMs);
    this.nextRootMs += rng.exponential(this.meanGapMs);
    this.acc.emitted.root_requests++;
    const trace = this.tracing.chance(this.traceSampling) ? { traceId: this.tracing.hex(4), parentSpanId: '' } : undefined;
    if (rng.chance(ROOT_MIX.sleepShare)) {
      this.acc.emitted.sleep_calls++;
      this.sleepCall(startMs, trace);
    } else {
      this.acc.emitted.page_loads++;
      this.pageLoad(startMs, trace);
    }
  }

  private pageLoad(startMs: number, trace: TraceContext | undefined): void {
    const rng = this.traffic;
    const iphone = rng.chance(REVIEWS_ROUTING.iphoneShare);
    const userAgent = rng.pick(iphone ? IPHONE_USER_AGENTS : OTHER_USER_AGENTS);
    const browserIp = `198.51.100.${rng.int(2, 254)}`;
    const gw = PODS.gateway;
    this.call({
      client: gw,
      service: SERVICES.productpage,
      profile: PROFILES.productpage,
      routeName: ROUTE_NAMES.gateway,
      startMs,
      path: '/productpage',
      authority: PUBLIC_HOST,
      userAgent,
      xForwardedFor: browserIp,
      downstreamLocal: `${gw.ip}:${GATEWAY_LISTENER_PORT}`,
      downstreamRemote: `${browserIp}:${this.ephemeralPort()}`,
      trace,
      downstreamDisconnect: rng.chance(DOWNSTREAM_DISCONNECT_RATE),
      work: (t, tr) => this.productpageWork(t, tr, userAgent),
    });
  }

  /** productpage asks details, then reviews (sequentially, as Bookinfo's productpage does). */
  private productpageWork(startMs: number, trace: TraceContext | undefined, userAgent: string): number {
    const rng = this.traffic;
    const pp = PODS.productpage;
    let t = startMs + rng.int(0, 2);
    t += this.call(this.meshCall(pp, SERVICES.details, PROFILES.details, ROUTE_NAMES.details, t, '/details/0', userAgent, trace));
    t += rng.int(0, 1);
    const route = this.routeReviews(userAgent);
    t += this.call({
      ...this.meshCall(pp, SERVICES.reviews, route.profile, route.routeName, t, '/reviews/0', userAgent, trace),
      work: route.profile.subset === 'v1' ? undefined : (t2, tr2) => this.reviewsWork(route.profile.pod, t2, tr2, userAgent),
    });
    return t - startMs;
  }

  /** The reviews VirtualService: the iPhone header match first, then the weighted route. */
  private routeReviews(userAgent: string): { profile: SubsetProfile; routeName: string } {
    const byHeader = userAgent.includes('iPhone'); // the route's regex `.*iPhone.*`
    let subset: 'v1' | 'v2' | 'v3';
    if (byHeader) {
      subset = 'v2';
    } else {
      const w = REVIEWS_ROUTING.weights;
      const x = this.traffic.next() * (w.v1 + w.v2 + w.v3);
      subset = x < w.v1 ? 'v1' : x < w.v1 + w.v2 ? 'v2' : 'v3';
    }
    this.acc.routed(subset, byHeader);
    const profile = subset === 'v1' ? PROFILES.reviewsV1 : subset === 'v2' ? PROFILES.reviewsV2 : PROFILES.reviewsV3;
    return { profile, routeName: byHeader ? REVIEWS_ROUTING.headerMatchRoute : REVIEWS_ROUTING.weightedRoute };
  }

  private reviewsWork(reviews: Pod, startMs: number, trace: TraceContext | undefined, userAgent: string): number {
    const t = startMs + this.traffic.int(0, 2);
    const d = this.call({
      ...this.meshCall(reviews, SERVICES.ratings, PROFILES.ratings, ROUTE_NAMES.ratings, t, '/ratings/0', userAgent, trace),
      work: (t2) => this.ratingsWork(t2),
    });
    return t + d - startMs;
  }

  /** Ratings sometimes opens a new pooled connection to mysqldb: an allowed L4 flow, no access log. */
  private ratingsWork(startMs: number): number {
    if (this.traffic.chance(RATINGS_DB_CONNECT_RATE)) this.mysqlConnection(PODS.ratings, startMs, 'FORWARDED');
    return 0;
  }

  private sleepCall(startMs: number, trace: TraceContext | undefined): void {
    const rng = this.traffic;
    const mix = ROOT_MIX.sleep;
    const x = rng.next() * (mix.ratings + mix.httpEgress + mix.tlsEgress + mix.mysql);
    if (x < mix.ratings) {
      this.call({
        ...this.meshCall(PODS.sleep, SERVICES.ratings, PROFILES.ratings, ROUTE_NAMES.ratings, startMs, '/ratings/0', CURL_USER_AGENT, trace),
        deniedBy: DENY_SLEEP,
      });
    } else if (x < mix.ratings + mix.httpEgress) {
      this.blackholeHttp(startMs);
    } else if (x < mix.ratings + mix.httpEgress + mix.tlsEgress) {
      this.blackholeTls(startMs);
    } else {
      this.mysqlConnection(PODS.sleep, startMs, 'DROPPED');
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // Hops
  // ---------------------------------------------------------------------------------------------------

  /** The fields every in-mesh call shares: the app connects to the Service VIP through its sidecar. */
  private meshCall(
    client: Pod,
    service: Service,
    profile: SubsetProfile,
    routeName: string,
    startMs: number,
    path: string,
    userAgent: string,
    trace: TraceContext | undefined,
  ): CallSpec {
    return {
      client,
      service,
      profile,
      routeName,
      startMs,
      path,
      authority: `${service.name}:${service.port}`,
      userAgent,
      xForwardedFor: '',
      downstreamLocal: `${service.clusterIp}:${service.port}`,
      downstreamRemote: `${client.ip}:${this.ephemeralPort()}`,
      trace,
    };
  }

  /**
   * Emit one call's records (client side always; server side when the request reached it) and spans, record
   * its truth, and return the client-side duration in ms.
   */
  private call(c: CallSpec): number {
    const rng = this.traffic;
    const { profile: p, service: svc, client } = c;
    const server = p.pod;
    const requestId = rng.uuid();
    const clientLocal = `${client.ip}:${this.ephemeralPort()}`;
    const outboundCluster = `outbound|${svc.port}|${p.subset}|${svc.host}`;
    const dest = destinationOf(svc, p);
    const upstreamHost = `${server.ip}:${svc.port}`;
    const clientSpanId = c.trace ? this.tracing.hex(2) : '';
    // Istio's default operation name: `<host>:<port>/*`, on both sides.
    const spanName = `${svc.host}:${svc.port}/*`;
    this.acc.emitted.requests++;

    const clientFields: AccessLogFields = {
      startMs: c.startMs,
      method: 'GET',
      path: c.path,
      protocol: 'HTTP/1.1',
      responseCode: 200,
      responseFlags: '',
      responseCodeDetails: 'via_upstream',
      connectionTerminationDetails: '',
      upstreamTransportFailureReason: '',
      bytesReceived: 0,
      bytesSent: 0,
      durationMs: 0,
      upstreamServiceTimeMs: -1,
      xForwardedFor: c.xForwardedFor,
      userAgent: c.userAgent,
      requestId,
      authority: c.authority,
      upstreamHost,
      upstreamCluster: outboundCluster,
      upstreamLocalAddress: clientLocal,
      downstreamLocalAddress: c.downstreamLocal,
      downstreamRemoteAddress: c.downstreamRemote,
      requestedServerName: '',
      routeName: c.routeName,
    };

    // The client proxy cannot connect (pod restarting): 503 after its retries; the server logs nothing.
    if (!c.deniedBy && rng.chance(p.connectFailureRate)) {
      clientFields.responseCode = 503;
      clientFields.responseFlags = 'UF,URX';
      clientFields.responseCodeDetails = 'upstream_reset_before_response_started{connection_failure}';
      clientFields.upstreamTransportFailureReason = 'delayed_connect_error:_111';
      clientFields.bytesSent = BODY_BYTES.connectFailure;
      clientFields.durationMs = rng.int(1, 40);
      this.clientRecord(c, clientFields, dest, 'error');
      this.meshFlow(c.client, dest, svc.port, false);
      if (c.trace) this.span(c.trace, clientSpanId, c.trace.parentSpanId, 'CLIENT', client, clientFields, spanName);
      return clientFields.durationMs;
    }

    const serverStart = c.startMs + rng.int(0, 1);
    const serverSpanId = c.trace ? this.tracing.hex(2) : '';
    const serverFields: AccessLogFields = {
      ...clientFields,
      startMs: serverStart,
      upstreamCluster: `inbound|${svc.port}||`,
      upstreamLocalAddress: `${INBOUND_LOCAL_IP}:${this.ephemeralPort()}`,
      downstreamLocalAddress: upstreamHost,
      downstreamRemoteAddress: clientLocal,
      requestedServerName: `outbound_.${svc.port}_.${p.subset}_.${svc.host}`,
      routeName: ROUTE_NAMES.inbound,
    };
    let serverOutcome: Outcome = 'ok';
    let clientOutcome: Outcome = 'ok';

    if (c.deniedBy) {
      // The ratings sidecar's RBAC filter answers before the app sees anything; the client passes the 403 on.
      const d = c.deniedBy;
      serverFields.responseCode = 403;
      serverFields.responseCodeDetails = `rbac_access_denied_matched_policy[ns[${d.namespace}]-policy[${d.name}]-rule[${d.rule}]]`;
      serverFields.bytesSent = BODY_BYTES.rbacDenied;
      serverFields.durationMs = 0;
      serverFields.upstreamHost = '';
      serverFields.upstreamLocalAddress = '';
      clientFields.responseCode = 403;
      clientFields.bytesSent = BODY_BYTES.rbacDenied;
      clientFields.upstreamServiceTimeMs = rng.int(0, 1);
      clientFields.durationMs = clientFields.upstreamServiceTimeMs + (serverStart - c.startMs);
      serverOutcome = 'denied';
    } else {
      const ownMs = Math.max(1, Math.round(rng.logNormal(p.medianMs, p.sigma)));
      const childTrace = c.trace ? { traceId: c.trace.traceId, parentSpanId: serverSpanId } : undefined;
      const dependenciesMs = c.work ? c.work(serverStart + 1, childTrace) : 0;
      const appMs = ownMs + dependenciesMs;
      serverFields.durationMs = appMs + rng.int(0, 1);
      serverFields.upstreamServiceTimeMs = appMs;
      clientFields.durationMs = serverFields.durationMs + (serverStart - c.startMs) + rng.int(0, 1);
      clientFields.upstreamServiceTimeMs = serverFields.durationMs;
      const appError = rng.chance(p.appErrorRate);
      const [lo, hi] = p.responseBytes;
      const bytes = appError ? BODY_BYTES.appError : rng.int(lo, hi);
      if (c.downstreamDisconnect) {
        // The browser left mid-request: no response on either side, and a downstream disconnect is no error.
        for (const f of [clientFields, serverFields]) {
          f.responseCode = 0;
          f.responseFlags = 'DC';
          f.responseCodeDetails = 'downstream_remote_disconnect';
          f.upstreamServiceTimeMs = -1;
        }
        clientFields.durationMs = rng.int(1, clientFields.durationMs);
        serverFields.durationMs = Math.min(serverFields.durationMs, clientFields.durationMs);
      } else {
        const code = appError ? 500 : 200;
        clientFields.responseCode = serverFields.responseCode = code;
        clientFields.bytesSent = serverFields.bytesSent = bytes;
        if (appError) serverOutcome = clientOutcome = 'error';
      }
    }

    this.serverRecord(server, serverFields, dest, serverOutcome);
    this.clientRecord(c, clientFields, dest, clientOutcome);
    this.meshFlow(c.client, dest, svc.port, serverOutcome === 'denied', c.deniedBy);
    if (c.trace) {
      this.span(c.trace, clientSpanId, c.trace.parentSpanId, 'CLIENT', client, clientFields, spanName);
      this.span(c.trace, serverSpanId, clientSpanId, 'SERVER', server, serverFields, spanName);
    }
    return clientFields.durationMs;
  }

  /** `curl http://httpbin.org/get` under `REGISTRY_ONLY`: Istio's `block_all` route answers 502, no cluster. */
  private blackholeHttp(startMs: number): void {
    const sleep = PODS.sleep;
    this.acc.emitted.requests++;
    const fields: AccessLogFields = {
      startMs,
      method: 'GET',
      path: '/get',
      protocol: 'HTTP/1.1',
      responseCode: 502,
      responseFlags: '',
      responseCodeDetails: 'direct_response',
      connectionTerminationDetails: '',
      upstreamTransportFailureReason: '',
      bytesReceived: 0,
      bytesSent: 0,
      durationMs: this.traffic.int(0, 1),
      upstreamServiceTimeMs: -1,
      xForwardedFor: '',
      userAgent: CURL_USER_AGENT,
      requestId: this.traffic.uuid(),
      authority: EXTERNAL.httpHost,
      upstreamHost: '',
      upstreamCluster: '',
      upstreamLocalAddress: '',
      downstreamLocalAddress: `${EXTERNAL.httpIp}:80`,
      downstreamRemoteAddress: `${sleep.ip}:${this.ephemeralPort()}`,
      requestedServerName: '',
      routeName: BLACKHOLE_ROUTE,
    };
    this.blackholeRecord(fields);
  }

  /** `curl https://api.github.com` under `REGISTRY_ONLY`: a TCP connection to BlackHoleCluster (`UH`). */
  private blackholeTls(startMs: number): void {
    const sleep = PODS.sleep;
    this.acc.emitted.requests++;
    const fields: AccessLogFields = {
      startMs,
      method: '',
      path: '',
      protocol: '',
      responseCode: 0,
      responseFlags: 'UH',
      responseCodeDetails: '',
      connectionTerminationDetails: '',
      upstreamTransportFailureReason: '',
      bytesReceived: 0,
      bytesSent: 0,
      durationMs: this.traffic.int(0, 1),
      upstreamServiceTimeMs: -1,
      xForwardedFor: '',
      userAgent: '',
      requestId: '',
      authority: '',
      upstreamHost: '',
      upstreamCluster: BLACKHOLE_CLUSTER,
      upstreamLocalAddress: '',
      downstreamLocalAddress: `${EXTERNAL.tlsIp}:443`,
      downstreamRemoteAddress: `${sleep.ip}:${this.ephemeralPort()}`,
      // The TLS inspector read the ClientHello's SNI before the filter chain sent it nowhere.
      requestedServerName: EXTERNAL.tlsHost,
      routeName: '',
    };
    this.blackholeRecord(fields);
  }

  private blackholeRecord(fields: AccessLogFields): void {
    const sleep = PODS.sleep;
    this.emit(fields, sleep, {
      reporter: 'source',
      sourceWorkload: this.namesSource ? sleep.workload : UNKNOWN,
      sourceNamespace: this.namesSource ? sleep.namespace : UNKNOWN,
      destination: BLACKHOLE_DESTINATION,
      responseCode: fields.responseCode,
      outcome: 'denied',
      durationMs: fields.durationMs,
    });
    // No server side: BlackHoleCluster has no endpoints. The port is the one the client dialled, which the line
    // names as the downstream local address (the original destination the sidecar intercepted).
    // A TCP connection (no HTTP protocol in the line) is L4 traffic in the ledger, whoever logged it.
    this.acc.flow({
      layer: fields.protocol === '' ? 'L4' : 'L7',
      source: this.sourceOf(sleep),
      destination: BLACKHOLE_DESTINATION,
      port: Number(fields.downstreamLocalAddress.slice(fields.downstreamLocalAddress.lastIndexOf(':') + 1)),
      denied: true,
      denyReason: 'blackhole',
      policy: '',
      rule: -1,
    });
  }

  /** A TCP connection attempt to mysqldb:3306 as Hubble sees it at mysqldb's endpoint. */
  private mysqlConnection(client: Pod, atMs: number, verdict: 'FORWARDED' | 'DROPPED'): void {
    const rng = this.traffic;
    const db = SERVICES.mysqldb;
    const nanos = String(rng.int(0, 999_999)).padStart(6, '0');
    const iso = isoMillis(atMs);
    this.out.flowLines.push(
      formatHubbleFlow({
        time: `${iso.slice(0, -1)}${nanos}Z`,
        uuid: rng.uuid(),
        verdict,
        source: client,
        sourcePort: this.ephemeralPort(),
        destination: PODS.mysqldb,
        destinationPort: db.port,
        destinationService: { name: db.name, namespace: db.namespace },
      }),
    );
    this.acc.emitted.flow_records++;
    this.acc.eventTime(atMs);
    const denied = verdict === 'DROPPED';
    this.acc.flow({
      layer: 'L4',
      // Hubble names both endpoints itself (workloads, namespace): no shipper metadata needed.
      source: { namespace: client.namespace, workload: client.workload },
      destination: MYSQLDB_DESTINATION,
      port: db.port,
      denied,
      denyReason: denied ? 'network_policy' : '',
      policy: '',
      rule: -1,
    });
  }

  // ---------------------------------------------------------------------------------------------------
  // Emission and truth
  // ---------------------------------------------------------------------------------------------------

  /** The caller as the flows ledger and `source_workload` will know it: only shipped metadata names it. */
  private sourceOf(client: Pod): { namespace: string; workload: string } {
    return this.namesSource ? { namespace: client.namespace, workload: client.workload } : { namespace: UNKNOWN, workload: UNKNOWN };
  }

  private clientRecord(c: CallSpec, f: AccessLogFields, dest: DestinationKey, outcome: Outcome): void {
    const src = this.sourceOf(c.client);
    this.emit(f, c.client, {
      reporter: 'source',
      sourceWorkload: src.workload,
      sourceNamespace: src.namespace,
      destination: dest,
      responseCode: f.responseCode,
      outcome,
      durationMs: f.durationMs,
    });
  }

  private serverRecord(server: Pod, f: AccessLogFields, dest: DestinationKey, outcome: Outcome): void {
    // A server-side line does not name its caller, with or without metadata (that names the server).
    this.emit(f, server, {
      reporter: 'destination',
      sourceWorkload: UNKNOWN,
      sourceNamespace: UNKNOWN,
      destination: dest,
      responseCode: f.responseCode,
      outcome,
      durationMs: f.durationMs,
    });
  }

  /** One request in the flows ledger (reporter `all`): counted once, the server side's verdict. */
  private meshFlow(client: Pod, dest: DestinationKey, port: number, denied: boolean, policy?: { namespace: string; name: string; rule: number }): void {
    this.acc.flow({
      layer: 'L7',
      source: this.sourceOf(client),
      destination: dest,
      port,
      denied,
      denyReason: denied ? 'rbac' : '',
      policy: denied && policy ? `${policy.namespace}/${policy.name}` : '',
      rule: denied && policy ? policy.rule : -1,
    });
  }

  private emit(f: AccessLogFields, emitter: Pod, facts: Omit<RecordFacts, 'responseFlags'>): void {
    const json = this.encoding.chance(this.jsonShare);
    const line = json ? formatJson(f) : formatText(f);
    const endMs = f.startMs + f.durationMs;
    const out = this.namesSource ? fluentBitRecord(line, emitter, (Math.floor(endMs / COLLECT_INTERVAL_MS) + 1) * COLLECT_INTERVAL_MS) : line;
    if (json) {
      this.out.jsonLines.push(out);
      this.acc.emitted.json_lines++;
    } else {
      this.out.textLines.push(out);
      this.acc.emitted.text_lines++;
    }
    this.acc.record({ ...facts, responseFlags: f.responseFlags });
    this.acc.eventTime(f.startMs);
  }

  /** A Zipkin span with the tags Envoy and Istio set (telemetry-formats.md §6). */
  private span(
    trace: TraceContext,
    id: string,
    parentId: string,
    kind: 'CLIENT' | 'SERVER',
    emitter: Pod,
    f: AccessLogFields,
    name: string,
  ): void {
    const code = f.responseCode;
    const tags: Record<string, string> = {
      component: 'proxy',
      node_id: emitter.nodeId,
      'guid:x-request-id': f.requestId,
      'http.url': `http://${f.authority}${f.path}`,
      'http.method': f.method,
      'http.protocol': f.protocol,
      'http.status_code': String(code),
      response_flags: f.responseFlags || '-',
      request_size: String(f.bytesReceived),
      response_size: String(f.bytesSent),
      upstream_cluster: f.upstreamCluster,
      'upstream_cluster.name': f.upstreamCluster,
      downstream_cluster: '-',
      user_agent: f.userAgent,
      // The downstream peer: the caller's address on both sides (what the server's sidecar sees connecting).
      'peer.address': f.downstreamRemoteAddress.slice(0, f.downstreamRemoteAddress.lastIndexOf(':')),
      'istio.canonical_service': emitter.labels.app ?? emitter.workload,
      'istio.canonical_revision': emitter.labels.version ?? 'latest',
      'istio.mesh_id': 'cluster.local',
      'istio.namespace': emitter.namespace,
    };
    // Envoy marks a span failed when there was no response or a 5xx (HttpTracerUtility::finalizeDownstreamSpan).
    if (code === 0 || code >= 500) tags.error = 'true';
    const t = this.tracing;
    this.out.spans.push(
      formatZipkinSpan({
        traceId: trace.traceId,
        id,
        parentId,
        kind,
        name,
        timestampUs: f.startMs * 1000 + t.int(0, 999),
        durationUs: f.durationMs * 1000 + t.int(0, 999),
        emitter,
        tags,
      }),
    );
    this.acc.emitted.spans++;
  }

  private ephemeralPort(): number {
    // Linux's default ip_local_port_range.
    return this.traffic.int(32768, 60999);
  }
}

function emptyBatch(): TelemetryBatch {
  return { textLines: [], jsonLines: [], spans: [], flowLines: [] };
}
