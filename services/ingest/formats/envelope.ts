/**
 * Log-shipper envelopes around an access-log line, as NDJSON (CONTRACT.md §3 `/v1/accesslogs`):
 *
 * - Fluent Bit with the Kubernetes filter: `{"log": "<line>", "stream": "stdout", "time": "…",
 *   "kubernetes": {"pod_name", "namespace_name", "container_name", "labels": {…}, …}}`
 *   (https://docs.fluentbit.io/manual/pipeline/filters/kubernetes). With `Merge_Log On` a JSON line is
 *   merged into the record instead: its keys sit next to `kubernetes` (and `log` is dropped unless
 *   `Keep_Log On`), or under `Merge_Log_Key`.
 * - Vector's `kubernetes_logs` source: `{"message": "<line>", "kubernetes": {"pod_namespace", "pod_name",
 *   "pod_labels": {…}, "container_name", …}, "stream", "timestamp", "source_type": "kubernetes_logs"}`
 *   (field names from vectordotdev/vector website/cue/reference/components/sources/kubernetes_logs.cue);
 *   sinks that flatten paths write the same fields as dotted keys (`"kubernetes.pod_name"`).
 *
 * The inner line may be TEXT or Istio JSON. The envelope's own time is collection time, not event time
 * (CONTRACT.md §4 "Time"), so it is ignored. The metadata names the emitting workload: the source of
 * outbound lines, the destination of inbound ones (`applyEmitter`). Only the sidecar/gateway container
 * `istio-proxy` writes access logs; other containers' lines are not access logs.
 */
import {
  applyEmitter,
  reject,
  workloadFromPodName,
  type Emitter,
  type MeshRequest,
  type Result,
} from '../../../lib/model';
import { parseIstioJson, parseIstioJsonObject } from './istio-json';
import { parseIstioText } from './istio-text';
import { firstNonSpace, isObject } from './json-values';

/** The container Istio injects (sidecars) and runs (gateways, waypoints) Envoy in. */
export const ISTIO_PROXY_CONTAINER = 'istio-proxy';

/** Shipper keys that are not part of a merged Istio record (Fluent Bit, Vector, CRI `_p`). */
const SHIPPER_KEYS: ReadonlySet<string> = new Set([
  'kubernetes',
  'log',
  'message',
  'stream',
  'time',
  'date',
  '_p',
  'logtag',
  'file',
  'source_type',
  'timestamp',
  '@timestamp',
]);

/** Pod labels that name the application, used only when the pod name is absent (hints, not identity). */
const WORKLOAD_HINT_LABELS = ['service.istio.io/canonical-name', 'app.kubernetes.io/name', 'app'];
const VERSION_LABELS = ['version', 'app.kubernetes.io/version', 'service.istio.io/canonical-revision'];

interface PodMeta {
  podName: string;
  namespace: string;
  container: string;
  labels: Record<string, unknown> | undefined;
}

function strOrEmpty(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** Kubernetes metadata of a Fluent Bit (nested) or Vector (nested or dotted) record; undefined if none. */
function podMeta(obj: Record<string, unknown>): PodMeta | undefined {
  const k = obj.kubernetes;
  if (isObject(k)) {
    const labels = isObject(k.labels) ? k.labels : isObject(k.pod_labels) ? k.pod_labels : undefined;
    return {
      podName: strOrEmpty(k.pod_name),
      namespace: strOrEmpty(k.namespace_name) || strOrEmpty(k.pod_namespace),
      container: strOrEmpty(k.container_name),
      labels,
    };
  }
  if ('kubernetes.pod_name' in obj || 'kubernetes.pod_namespace' in obj) {
    const labels = obj['kubernetes.pod_labels'];
    return {
      podName: strOrEmpty(obj['kubernetes.pod_name']),
      namespace: strOrEmpty(obj['kubernetes.pod_namespace']),
      container: strOrEmpty(obj['kubernetes.container_name']),
      labels: isObject(labels) ? labels : undefined,
    };
  }
  return undefined;
}

/**
 * An NDJSON record is an envelope when it carries Kubernetes metadata and a line (`log`, `message`) or a
 * merged Istio record (`start_time` next to `kubernetes`, Fluent Bit `Merge_Log`).
 */
export function isEnvelope(obj: Record<string, unknown>): boolean {
  const hasMeta =
    isObject(obj.kubernetes) || 'kubernetes.pod_name' in obj || 'kubernetes.pod_namespace' in obj;
  if (hasMeta) return 'log' in obj || 'message' in obj || 'start_time' in obj;
  // A shipper without Kubernetes metadata (Fluent Bit `tail` + docker parser, Vector `file`) still wraps the
  // line in `log`/`message`; Istio's own JSON records never carry those keys.
  return !('start_time' in obj) && (typeof obj.log === 'string' || typeof obj.message === 'string');
}

function label(labels: Record<string, unknown> | undefined, names: readonly string[]): string {
  if (!labels) return '';
  for (const n of names) {
    const v = labels[n];
    if (typeof v === 'string' && v.length > 0) return v;
  }
  return '';
}

function emitterOf(meta: PodMeta): Emitter {
  // The workload is the pod's owner as Istio names it (Deployment from `<name>-<rs hash>-<suffix>`);
  // app labels may differ from it (one app, several Deployments), so they only stand in when there is no pod name.
  const workload = meta.podName ? workloadFromPodName(meta.podName) : label(meta.labels, WORKLOAD_HINT_LABELS);
  return { workload, namespace: meta.namespace, version: label(meta.labels, VERSION_LABELS) };
}

function parseInner(obj: Record<string, unknown>): Result<MeshRequest> {
  const inner = typeof obj.log === 'string' || isObject(obj.log) ? obj.log : obj.message;
  if (typeof inner === 'string') {
    return firstNonSpace(inner) === 123 /* { */ ? parseIstioJson(inner) : parseIstioText(inner);
  }
  if (isObject(inner)) return parseIstioJsonObject(inner); // Merge_Log_Key
  if ('start_time' in obj) return parseIstioJsonObject(obj, SHIPPER_KEYS); // Merge_Log at top level
  return reject('missing_field', 'envelope carries no log line (`log`/`message`) and no merged record');
}

/** Parse a shipper envelope (already JSON-decoded). Never throws. */
export function parseEnvelopeObject(obj: Record<string, unknown>): Result<MeshRequest> {
  const meta = podMeta(obj);
  if (meta && meta.container !== '' && meta.container !== ISTIO_PROXY_CONTAINER) {
    return reject('not_an_access_log', `container ${JSON.stringify(meta.container)} is not ${ISTIO_PROXY_CONTAINER}`);
  }
  const result = parseInner(obj);
  if (!result.ok || !meta) return result;
  applyEmitter(result.value, emitterOf(meta));
  return result;
}

/** Parse one NDJSON envelope line. Never throws. */
export function parseEnvelope(line: string): Result<MeshRequest> {
  // RFC 8259 §8.1 lets a parser ignore a byte order mark; JSON.parse does not.
  if (line.charCodeAt(0) === 0xfeff) line = line.slice(1);
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (e) {
    return reject('malformed_json', `not JSON: ${(e as Error).message}`);
  }
  if (!isObject(v)) {
    return reject('malformed_json', `a JSON ${v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v}, not an object`);
  }
  if (!isEnvelope(v)) return reject('missing_field', 'no Kubernetes metadata with a log line: not a shipper envelope');
  return parseEnvelopeObject(v);
}
