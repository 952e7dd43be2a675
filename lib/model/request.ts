/**
 * Building a MeshRequest: defaults, the destination and reporter derived from the cluster columns, and the
 * emitting workload named by envelope or OTLP resource metadata. Shared by every access-log format.
 */
import { BLACKHOLE_CLUSTER, parseSni, parseUpstreamCluster, serviceFromHost, type ClusterRef } from './cluster';
import { applyOutcome, BLACKHOLE_ROUTE } from './outcome';
import type { MeshRequest } from './records';

export const UNKNOWN = 'unknown';

/** A metric label for an identity the record leaves empty: Istio's `unknown` (CONTRACT.md §5; subsets stay ''). */
export function orUnknown(value: string): string {
  return value === '' ? UNKNOWN : value;
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
    attributes: {},
  };
}

function setDestination(r: MeshRequest, ref: ClusterRef): void {
  const s = serviceFromHost(ref.host);
  r.destinationHost = s.host;
  r.destinationService = s.service;
  // '' is the contract's value for hosts outside *.svc.<domain>; keep it rather than 'unknown'.
  r.destinationNamespace = s.namespace;
  r.destinationSubset = ref.subset;
  if (ref.port !== 0) r.destinationPort = ref.port;
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
 * Derive reporter, destination, subset and outcome from the columns a parser has filled
 * (`upstreamCluster`, `requestedServerName`, `routeName`, `authority`, `protocol`, codes and details).
 *
 * - outbound clusters (`outbound|…`, SNI-routed `outbound_.…`, Passthrough/BlackHole) → reporter `source`;
 * - inbound clusters (`inbound|…`, InboundPassthroughCluster*) and waypoint `inbound-vip|…` → `destination`;
 *   the destination then comes from the mTLS SNI `outbound_.<port>_.<subset>_.<host>`, which carries the
 *   subset the client routed to, else from the pre-1.8 inbound host, else from `:authority`;
 * - no cluster (`-`: route miss, local reply): `destination` when the SNI is Istio's, `source` for the
 *   BlackHole route `block_all`, else `unknown`.
 */
export function finishRequest(r: MeshRequest): MeshRequest {
  const cluster = parseUpstreamCluster(r.upstreamCluster);
  const sni = r.requestedServerName.length > 0 ? parseSni(r.requestedServerName) : undefined;
  switch (cluster.direction) {
    case 'outbound':
      r.reporter = 'source';
      setDestination(r, cluster);
      break;
    case 'special':
      r.reporter = 'source';
      setDestination(r, cluster);
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
        const host = authorityHost(r.authority);
        if (host.length > 0) setDestination(r, { direction: 'inbound', port: 0, subset: '', host });
      }
      if (cluster.port !== 0 && r.destinationPort === 0) r.destinationPort = cluster.port;
      break;
    case 'none':
      if (r.routeName === BLACKHOLE_ROUTE) {
        r.reporter = 'source';
        setDestination(r, { direction: 'special', port: 0, subset: '', host: BLACKHOLE_CLUSTER });
      } else if (sni) {
        r.reporter = 'destination';
        setDestination(r, sni);
      } else {
        const host = authorityHost(r.authority);
        if (host.length > 0) setDestination(r, { direction: 'none', port: 0, subset: '', host });
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
 * A ReplicaSet's `pod-template-hash`: `rand.SafeEncodeString` output (Kubernetes ≥ 1.11, alphabet without
 * vowels, 0, 1 and 3) or the decimal hash of older releases. A plain word (`exporter`, `server`) is not one,
 * so `node-exporter-x7k2p` (a DaemonSet pod) stays `node-exporter`.
 */
const RS_HASH = /^(?:[bcdfghjklmnpqrstvwxz2456789]{6,10}|\d{6,10})$/;

export function isReplicaSetHash(s: string): boolean {
  return RS_HASH.test(s);
}

/**
 * Kubernetes pod name → workload name, as Istio derives `source_workload` for Deployments:
 * `reviews-v2-5b64f47978-x8k9q` → `reviews-v2` (drop the ReplicaSet hash and the pod suffix);
 * StatefulSet pods `db-0` → `db`; anything else unchanged.
 */
export function workloadFromPodName(pod: string): string {
  // Envelope and OTLP records name the same few pods over and over: the regexes run once per pod.
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

function deriveWorkload(pod: string): string {
  const last = pod.lastIndexOf('-');
  if (last <= 0) return pod;
  const suffix = pod.slice(last + 1);
  const prev = pod.lastIndexOf('-', last - 1);
  // The Deployment shape is tested first: its random 5-char suffix can be all digits (the alphabet
  // `bcdfghjklmnpqrstvwxz2456789` includes digits), which the StatefulSet check would misread as an ordinal.
  if (suffix.length === 5 && prev > 0 && RS_HASH.test(pod.slice(prev + 1, last))) {
    return pod.slice(0, prev); // Deployment: <name>-<rs hash>-<5 chars>
  }
  if (/^\d+$/.test(suffix)) return pod.slice(0, last); // StatefulSet ordinal
  if (suffix.length === 5) return pod.slice(0, last); // DaemonSet / Job: <name>-<5 chars>
  return pod;
}
