/**
 * Building a MeshRequest: defaults, the destination and reporter derived from the cluster columns, and the
 * emitting workload named by envelope or OTLP resource metadata. Shared by every access-log format.
 */
import * as clusters from './cluster';
import * as destinations from './destination';
import type { Destination } from './destination';
import * as outcomes from './outcome';
import type { MeshRequest } from './records';

// Bound once at load: CommonJS re-exports compile to property getters, and finishRequest runs once per line.
const { addressPort, BLACKHOLE_CLUSTER, PASSTHROUGH_CLUSTER } = clusters;
const { destinationOfAuthority, destinationOfCluster, destinationOfSni } = destinations;
const { applyOutcome, BLACKHOLE_ROUTE } = outcomes;

export const UNKNOWN = 'unknown';

/** A metric label for an identity the record leaves empty: Istio's `unknown` (CONTRACT.md §5; subsets stay ''). */
export function orUnknown(value: string): string {
  return value === '' ? UNKNOWN : value;
}

/**
 * The `attributes` of every record that has none, which is nearly every record: one frozen object instead of
 * an empty object per line (issue 10: with a 38-field record per line it was a fifth of the garbage). Frozen so
 * that a write into it throws instead of showing up in every other record; `setRequestAttribute` gives a record
 * its own object before the first write.
 */
export const NO_ATTRIBUTES: Readonly<Record<string, string>> = Object.freeze({});

/**
 * Sets one attribute of `r`, first giving it an object of its own if it still shares NO_ATTRIBUTES. `__proto__`
 * becomes an ordinary own key (a plain assignment would hit Object.prototype's setter and keep nothing).
 */
export function setRequestAttribute(r: MeshRequest, key: string, value: string): void {
  let attrs = r.attributes as Record<string, string>;
  if (attrs === NO_ATTRIBUTES) {
    attrs = {};
    r.attributes = attrs;
  }
  if (key === '__proto__') {
    Object.defineProperty(attrs, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    attrs[key] = value;
  }
}

/** A request with every field at its "unset" value; parsers overwrite what their input carries. */
export function emptyRequest(): MeshRequest {
  return {
    startTimeMs: 0,
    reporter: 'unknown',
    sourceWorkload: UNKNOWN,
    sourceNamespace: UNKNOWN,
    sourceAddress: '',
    destinationHost: UNKNOWN,
    destinationService: UNKNOWN,
    destinationNamespace: UNKNOWN,
    destinationSubset: '',
    destinationPort: 0,
    destinationWorkload: UNKNOWN,
    destinationVersion: '',
    destinationAddress: '',
    protocol: 'unknown',
    httpVersion: '',
    method: '',
    path: '',
    authority: '',
    responseCode: 0,
    responseFlags: '',
    responseCodeDetails: '',
    connectionTerminationDetails: '',
    upstreamTransportFailureReason: '',
    upstreamCluster: '',
    requestedServerName: '',
    routeName: '',
    userAgent: '',
    bytesReceived: 0,
    bytesSent: 0,
    durationMs: 0,
    upstreamServiceTimeMs: -1,
    requestId: '',
    traceId: '',
    outcome: 'ok',
    denyReason: '',
    policy: '',
    rule: -1,
    attributes: NO_ATTRIBUTES,
  };
}

function setDestination(r: MeshRequest, d: Destination): void {
  r.destinationHost = d.host;
  r.destinationService = d.service;
  // '' is the contract's value for hosts outside *.svc.<domain>; keep it rather than 'unknown'.
  r.destinationNamespace = d.namespace;
  r.destinationSubset = d.subset;
  if (d.port !== 0) r.destinationPort = d.port;
}

/**
 * Derive reporter, destination, subset and outcome from the columns a parser has filled
 * (`upstreamCluster`, `requestedServerName`, `routeName`, `authority`, `protocol`, codes and details).
 *
 * - outbound clusters (`outbound|…`, SNI-routed `outbound_.…`, Passthrough/BlackHole) → reporter `source`;
 * - inbound clusters (`inbound|…`, InboundPassthroughCluster*) and waypoint `inbound-vip|…` → `destination`;
 *   the destination then comes from the mTLS SNI `outbound_.<port>_.<subset>_.<host>`, which carries the
 *   subset the client routed to, else from the pre-1.8 inbound host, else from `:authority`;
 * - no cluster (`-`: route miss, local reply): `destination` when the SNI is Istio's, `source` for the
 *   BlackHole route `block_all`, else `unknown`.
 *
 * `downstreamLocalPort` is the port of `%DOWNSTREAM_LOCAL_ADDRESS%` (0 when the line has none). Passthrough and
 * BlackHole names carry no port, but the line does (issue 9: their ledger rows said port 0): `PassthroughCluster`
 * is an ORIGINAL_DST cluster, so the upstream host is the address the client dialled; BlackHole traffic has no
 * upstream host, and the outbound listener's local address is the original destination iptables redirected.
 */
export function finishRequest(r: MeshRequest, downstreamLocalPort = 0): MeshRequest {
  const cluster = destinationOfCluster(r.upstreamCluster);
  const sni = r.requestedServerName.length > 0 ? destinationOfSni(r.requestedServerName) : undefined;
  switch (cluster.direction) {
    case 'outbound':
      r.reporter = 'source';
      setDestination(r, cluster);
      break;
    case 'special':
      r.reporter = 'source';
      setDestination(r, cluster);
      if (cluster.host === PASSTHROUGH_CLUSTER || cluster.host === BLACKHOLE_CLUSTER) {
        r.destinationPort = addressPort(r.destinationAddress) || downstreamLocalPort;
      }
      break;
    case 'inbound':
    case 'inbound-vip':
      r.reporter = 'destination';
      if (sni) {
        setDestination(r, sni);
        if (cluster.subset) r.destinationSubset = cluster.subset;
      } else if (cluster.host.length > 0 && !cluster.host.startsWith('InboundPassthroughCluster')) {
        setDestination(r, cluster);
      } else {
        const byAuthority = destinationOfAuthority(r.authority);
        if (byAuthority !== undefined) setDestination(r, byAuthority);
      }
      if (cluster.port !== 0 && r.destinationPort === 0) r.destinationPort = cluster.port;
      break;
    case 'none':
      if (r.routeName === BLACKHOLE_ROUTE) {
        r.reporter = 'source';
        setDestination(r, destinationOfCluster(BLACKHOLE_CLUSTER));
        r.destinationPort = downstreamLocalPort;
      } else if (sni) {
        r.reporter = 'destination';
        setDestination(r, sni);
      } else {
        const byAuthority = destinationOfAuthority(r.authority);
        if (byAuthority !== undefined) setDestination(r, byAuthority);
      }
      break;
  }
  return applyOutcome(r);
}

/** The workload that wrote a log line, as envelope (`kubernetes.*`) or OTLP resource metadata name it. */
export interface Emitter {
  workload: string;
  namespace: string;
  /** The pod's `version` label; '' when absent. */
  version: string;
}

/**
 * Metadata names the emitting workload: the source of outbound lines, the destination of inbound ones.
 * Call after `finishRequest`, which decides the reporter.
 */
export function applyEmitter(r: MeshRequest, e: Emitter): MeshRequest {
  if (r.reporter === 'destination') {
    if (e.workload) r.destinationWorkload = e.workload;
    if (e.version) r.destinationVersion = e.version;
    if (e.namespace && (r.destinationNamespace === '' || r.destinationNamespace === UNKNOWN)) {
      r.destinationNamespace = e.namespace;
    }
  } else {
    if (e.workload) r.sourceWorkload = e.workload;
    if (e.namespace) r.sourceNamespace = e.namespace;
  }
  return r;
}

/**
 * The alphabet of apimachinery's `rand.String` and `rand.SafeEncodeString` (k8s.io/apimachinery/pkg/util/rand):
 * no vowels, no `y`, no 0, 1 or 3, "to avoid bad words". Generated pod-name suffixes (`generateName`: the
 * 5 characters after a Deployment's, DaemonSet's or Job's name) and ReplicaSet `pod-template-hash`es
 * (Kubernetes ≥ 1.8) are spelled in it, so a name part with any other character was not generated.
 */
const GENERATED = new Uint8Array(128);
for (const c of 'bcdfghjklmnpqrstvwxz2456789') GENERATED[c.charCodeAt(0)] = 1;

/** True when `s[start, end)` is spelled only in the generated-name alphabet (or, with `digits`, is decimal). */
function spelledGenerated(s: string, start: number, end: number, digits: boolean): boolean {
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (digits ? c < 48 || c > 57 : c >= 128 || GENERATED[c] === 0) return false;
  }
  return true;
}

/**
 * A ReplicaSet's `pod-template-hash`: 6–10 characters of the generated alphabet (Kubernetes ≥ 1.8), or the
 * decimal hash of older releases. A plain word (`exporter`, `server`) is not one, so `node-exporter-x7k2p`
 * (a DaemonSet pod) stays `node-exporter`.
 */
function isRsHashAt(s: string, start: number, end: number): boolean {
  const len = end - start;
  if (len < 6 || len > 10) return false;
  return spelledGenerated(s, start, end, false) || spelledGenerated(s, start, end, true);
}

export function isReplicaSetHash(s: string): boolean {
  return isRsHashAt(s, 0, s.length);
}

/**
 * Kubernetes pod name → workload name, as Istio derives `source_workload` for Deployments:
 * `reviews-v2-5b64f47978-x8k9q` → `reviews-v2` (drop the ReplicaSet hash and the pod suffix); DaemonSet and
 * Job pods `fluentd-x7k2p` → `fluentd`; StatefulSet pods `db-0` → `db`; anything else (bare pods) unchanged.
 */
export function workloadFromPodName(pod: string): string {
  // Envelope and OTLP records name the same few pods over and over: each name is scanned once.
  let workload = workloadCache.get(pod);
  if (workload === undefined) {
    if (workloadCache.size >= WORKLOAD_CACHE_MAX) workloadCache.clear();
    workload = deriveWorkload(pod);
    workloadCache.set(pod, workload);
  }
  return workload;
}

const WORKLOAD_CACHE_MAX = 10_000;
const workloadCache = new Map<string, string>();

/**
 * What can and cannot be mistaken: a last part of 5 characters is dropped only when every character is in
 * the generated alphabet. A word with a vowel or `y`, a 0, 1 or 3, an upper-case letter or any other
 * character never is (`agent-probe`, `web-proxy`, `cache-v1013` stay whole). A bare pod (no controller)
 * whose last part is 5 characters of that alphabet cannot be told from a generated suffix and loses it:
 * consonant-only abbreviations such as `pgsql`, `kfctl`, `html5`, or `bcdfg`, which `rand.String` can draw.
 */
function deriveWorkload(pod: string): string {
  const end = pod.length;
  const last = pod.lastIndexOf('-');
  if (last <= 0) return pod;
  if (end - last - 1 === 5 && spelledGenerated(pod, last + 1, end, false)) {
    // Tested before the StatefulSet ordinal: a generated suffix may be all digits (`24567`).
    const prev = pod.lastIndexOf('-', last - 1);
    if (prev > 0 && isRsHashAt(pod, prev + 1, last)) return pod.slice(0, prev); // Deployment: <name>-<rs hash>-<5>
    return pod.slice(0, last); // DaemonSet / Job: <name>-<5>
  }
  if (last + 1 < end && spelledGenerated(pod, last + 1, end, true)) return pod.slice(0, last); // StatefulSet ordinal
  return pod;
}
