/**
 * Helpers shared by the flow parsers (Hubble, Calico): tolerant field readers for JSON records whose
 * fields may be absent, `null` or `"-"` (Hubble's exporter masks fields, Calico writes `"-"` for unknown
 * values), an RFC 3339 reader that keeps nanosecond timestamps exact to the millisecond, and the rules that
 * turn an endpoint into a workload and a destination service. Nothing here throws on input.
 */
import type { Flow } from '../../../lib/model';
import { UNKNOWN, isReplicaSetHash, workloadFromPodName } from '../../../lib/model';
import { parseRfc3339Millis } from './istio-text';

/**
 * Kubernetes' cluster domain. Flow records name a Service as `name` + `namespace` only; meshlens builds the
 * same host the access logs carry (`reviews.default.svc.cluster.local`) so that L4 flows and L7 requests to
 * one destination meet in the flows API. Clusters with another domain still group correctly by
 * service + namespace; only the host string differs.
 */
export const CLUSTER_DOMAIN = 'cluster.local';

/** A string field; '' for absent, non-string, `"-"` and `null`. */
export function str(v: unknown): string {
  return typeof v === 'string' && v !== '-' ? v : '';
}

/**
 * A non-negative integer field, also when written as a string (protojson prints 64-bit integers as strings,
 * Calico writes `"-"`). undefined when absent or not a non-negative integer.
 */
export function uint(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 ? v : undefined;
  if (typeof v === 'string' && v.length > 0 && v.length <= 16 && /^\d+$/.test(v)) return Number(v);
  return undefined;
}

/** An integer that may be negative (Calico rule index `-1`); undefined otherwise. */
export function int(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isInteger(v) ? v : undefined;
  if (typeof v === 'string' && /^-?\d{1,15}$/.test(v)) return Number(v);
  return undefined;
}

/**
 * RFC 3339 → Unix milliseconds, for Hubble's nanosecond timestamps (`2023-08-21T12:12:18.510175415Z`) and
 * Goldmane's second ones; undefined when it does not parse. The access-log scanner's parser serves both, so
 * flows and requests agree on what a valid (and plausible) time is.
 */
export function parseRfc3339(s: string): number | undefined {
  const t = parseRfc3339Millis(s);
  return Number.isNaN(t) ? undefined : t;
}

/**
 * A workload from a pod name or a Calico aggregated name: `cart-7b9c6d5f4-*` → `cart` (the ReplicaSet's pods
 * → its Deployment), `calico-node-*` → `calico-node`, `checkoutservice-598d5b586d-wsvmz` → `checkoutservice`.
 * `podTemplateHash` (the pod's `pod-template-hash` label, when the record has labels) makes the ReplicaSet
 * suffix exact instead of guessed.
 */
export function workloadFromName(name: string, podTemplateHash = ''): string {
  if (name.length === 0) return '';
  if (name.endsWith('-*')) {
    const base = name.slice(0, -2);
    if (podTemplateHash && base.endsWith('-' + podTemplateHash)) return base.slice(0, -(podTemplateHash.length + 1));
    const dash = base.lastIndexOf('-');
    if (dash > 0 && isReplicaSetHash(base.slice(dash + 1))) return base.slice(0, dash);
    return base;
  }
  if (podTemplateHash) {
    const marker = '-' + podTemplateHash + '-';
    const at = name.lastIndexOf(marker);
    if (at > 0 && name.length - (at + marker.length) === 5) return name.slice(0, at);
  }
  return workloadFromPodName(name);
}

/** The value of `key` in `k8s:app=cart`-style or `app=cart`-style labels. */
export function labelValue(labels: readonly string[], key: string): string {
  for (const l of labels) {
    let s = l;
    const colon = s.indexOf(':');
    const eq = s.indexOf('=');
    if (colon >= 0 && (eq < 0 || colon < eq)) s = s.slice(colon + 1); // `k8s:` / `container:` source prefix
    if (s.length > key.length && s.startsWith(key) && s.charCodeAt(key.length) === 61 /* = */) return s.slice(key.length + 1);
  }
  return '';
}

/** The app label a workload is most often named after, in the order Istio's own fallbacks use. */
export function appLabel(labels: readonly string[]): string {
  return labelValue(labels, 'app.kubernetes.io/name') || labelValue(labels, 'app') || labelValue(labels, 'k8s-app');
}

/** `<service>.<namespace>.svc.cluster.local`. */
export function serviceHost(service: string, namespace: string): string {
  return `${service}.${namespace}.svc.${CLUSTER_DOMAIN}`;
}

/** A flow with every field at its unset value; parsers overwrite what their record carries. */
export function emptyFlow(): Flow {
  return {
    startTimeMs: 0,
    reporter: 'unknown',
    sourceWorkload: UNKNOWN,
    sourceNamespace: UNKNOWN,
    sourceAddress: '',
    destinationHost: UNKNOWN,
    destinationService: UNKNOWN,
    destinationNamespace: UNKNOWN,
    destinationWorkload: UNKNOWN,
    destinationAddress: '',
    destinationPort: 0,
    transport: '',
    verdict: 'allowed',
    denyReason: '',
    detail: '',
    policy: '',
    rule: -1,
    count: 1,
    bytes: 0,
    packets: 0,
    attributes: {},
  };
}

/**
 * Fill the destination service of `f` for an in-cluster endpoint: the Service the record names, else the
 * workload (by the usual convention a Deployment and its Service share a name). The inference is marked
 * `attributes.service_inferred = "true"` so a reader can tell it from a named Service.
 */
export function setClusterDestination(f: Flow, service: string, namespace: string, workload: string): void {
  let svc = service;
  if (!svc && workload && workload !== UNKNOWN) {
    svc = workload;
    f.attributes.service_inferred = 'true';
  }
  if (!svc) {
    f.destinationService = UNKNOWN;
    f.destinationNamespace = namespace || UNKNOWN;
    f.destinationHost = UNKNOWN;
    return;
  }
  f.destinationService = svc;
  f.destinationNamespace = namespace;
  f.destinationHost = serviceHost(svc, namespace);
}

/** For a destination outside the cluster: the host is its own service and the namespace is '' (CONTRACT.md §4). */
export function setExternalDestination(f: Flow, host: string): void {
  f.destinationHost = host;
  f.destinationService = host;
  f.destinationNamespace = '';
}

/** Protocol names as flow records spell them (`TCP`, `tcp`, `6`) → the Flow's `transport`. */
export function transportName(proto: unknown): string {
  if (typeof proto === 'number') return IANA[proto] ?? '';
  const s = str(proto).toLowerCase();
  if (s.length === 0) return '';
  if (/^\d+$/.test(s)) return IANA[Number(s)] ?? '';
  if (s === 'icmpv4' || s === 'icmpv6' || s === 'icmp6' || s === 'ipv6-icmp') return 'icmp';
  return s;
}

const IANA: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmp', 132: 'sctp' };
