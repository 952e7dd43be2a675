/**
 * OTLP logs → MeshRequest, as Istio's `envoyOtelAls` provider sends them through Envoy's
 * `envoy.access_loggers.open_telemetry` (telemetry-formats.md §7.2; https://istio.io/latest/docs/tasks/observability/logs/otel-provider/;
 * https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/access_loggers/open_telemetry/v3/logs_service.proto).
 *
 * A LogRecord carries the access log in one of two ways:
 * - `body.stringValue` is the formatted line: Istio's default TEXT (G3, with a trailing `\n`), or a JSON
 *   object when the provider's `logFormat` was written as JSON. It goes through `parseAccessLogLine`, the
 *   same dispatcher as `POST /v1/accesslogs`.
 * - `attributes` (the provider's `logFormat.labels`) or a kvlist body carry the fields under Istio's JSON
 *   keys (`response_code`, `upstream_cluster`, ...) or common alternates (`duration_ms`, `http.status_code`,
 *   ...). They go through `parseIstioJsonObject`, with `timeUnixNano` (Envoy's request start time) as the
 *   start time when no `start_time` label is set.
 *
 * The resource names the emitting workload. Envoy's builtin labels `node_name`
 * (`sidecar~<ip>~<pod>.<namespace>~<namespace>.svc.cluster.local`) and `cluster_name`
 * (`<app>.<namespace>`, e.g. `httpbin.default` in istio/istio#42196) are there unless
 * `disable_builtin_labels` is set. `k8s.*` and `service.*` attributes come from resource detectors or
 * collectors. The emitter is applied with `applyEmitter` after the request's reporter is known.
 *
 * One bad record is rejected on its own (1-based index across the request, reason, OTLP/JSON text).
 */
import { applyEmitter, reject, setRequestAttribute, workloadFromPodName, type Emitter, type MeshRequest, type Result } from '../../../lib/model';
import {
  anyValueToJs,
  anyValueToString,
  decodeExportLogsRequest,
  decodeExportLogsRequestJson,
  logRecordToOtlpJson,
  type ExportLogsRequest,
  type KeyValue,
  type LogRecord,
} from '../otlp/codec';
import { parseAccessLogLine } from './accesslog';
import type { Batch } from './batch';
import { parseIstioJsonObject } from './istio-json';
import { isValidId, MAX_PLAUSIBLE_MS, MIN_PLAUSIBLE_MS } from './mesh-span';

export type OtlpEncoding = 'protobuf' | 'json';

/**
 * Label names people give `logFormat.labels` for fields Istio's JSON format calls otherwise. Sources: the OTel
 * HTTP semantic conventions (`http.*`, `url.path`), Envoy's own OTel access-log example in
 * envoyproxy/envoy#15105 (`http_response`, `request_method`, `request_path`, `request_authority`,
 * `x_request_id`, `response_flag`), a published Istio `envoyOtelAls` setup
 * (https://latest.stefan.fail/2025/09/21/shipping-envoy-access-logs-via-OTEL.html: `http.status_flags`), and
 * the `_ms` suffix used for durations.
 */
const ALIASES: ReadonlyMap<string, string> = new Map([
  ['duration_ms', 'duration'],
  ['http.method', 'method'],
  ['http.request.method', 'method'],
  ['request_method', 'method'],
  ['http.path', 'path'],
  ['url.path', 'path'],
  ['request_path', 'path'],
  ['http.protocol', 'protocol'],
  ['http.status_code', 'response_code'],
  ['http.response.status_code', 'response_code'],
  ['http_response', 'response_code'],
  ['status_code', 'response_code'],
  ['http.status_flags', 'response_flags'],
  ['response_flag', 'response_flags'],
  ['request_authority', 'authority'],
  ['x_request_id', 'request_id'],
  ['guid:x-request-id', 'request_id'],
  ['upstream_service_time_ms', 'upstream_service_time'],
]);

/** Any one of these (after aliasing) makes a set of attributes an access-log record. */
const RECORD_MARKERS: readonly string[] = ['response_code', 'upstream_cluster', 'start_time', 'requested_server_name', 'response_flags'];

/**
 * Labels that describe the emitter, not the request. They come from Istio's own
 * samples/open-telemetry/loki/iop.yaml: `pod: "%ENVIRONMENT(POD_NAME)%"`, `namespace`, `cluster`, `mesh`.
 * `pod` and `namespace` are read as emitter fallbacks and all are still kept as attributes.
 */
const EMITTER_POD_LABEL = 'pod';
const EMITTER_NAMESPACE_LABEL = 'namespace';

function attr(list: readonly KeyValue[], key: string): string {
  for (const kv of list) if (kv.key === key) return anyValueToString(kv.value);
  return '';
}

/** `sidecar~10.1.4.22~reviews-v2-5b64f47978-x8k9q.default~default.svc.cluster.local` → pod and namespace. */
export function parseNodeName(node: string): { pod: string; namespace: string } | undefined {
  const parts = node.split('~');
  if (parts.length !== 4) return undefined;
  const podNs = parts[2]!;
  // Namespaces are DNS labels (no dots); pod names may contain dots, so split at the last one.
  const dot = podNs.lastIndexOf('.');
  if (dot <= 0 || dot === podNs.length - 1) return undefined;
  return { pod: podNs.slice(0, dot), namespace: podNs.slice(dot + 1) };
}

/** `httpbin.default` (Envoy's `cluster_name`, Istio's `<app>.<namespace>` service cluster) → the pair. */
function splitAppNamespace(s: string): { app: string; namespace: string } | undefined {
  const dot = s.lastIndexOf('.');
  if (dot <= 0 || dot === s.length - 1) return undefined;
  return { app: s.slice(0, dot), namespace: s.slice(dot + 1) };
}

/**
 * The emitting workload from resource attributes, most specific source first:
 * workload: `k8s.deployment.name` / `k8s.statefulset.name` / `k8s.daemonset.name` > pod name
 * (`k8s.pod.name`, else Envoy's `node_name`) reduced with `workloadFromPodName` > the app part of
 * `cluster_name` / `service.name`.
 * namespace: `k8s.namespace.name` (or `k8s.pod.namespace`, seen in istio/istio#42196) > `node_name` >
 * `service.namespace` > the namespace part of `cluster_name` / `service.name`.
 */
export function emitterFromResource(attrs: readonly KeyValue[]): Emitter {
  const node = parseNodeName(attr(attrs, 'node_name'));
  const cluster = splitAppNamespace(attr(attrs, 'cluster_name')) ?? splitAppNamespace(attr(attrs, 'service.name'));
  const pod = attr(attrs, 'k8s.pod.name') || node?.pod || '';
  const workload =
    attr(attrs, 'k8s.deployment.name') ||
    attr(attrs, 'k8s.statefulset.name') ||
    attr(attrs, 'k8s.daemonset.name') ||
    (pod ? workloadFromPodName(pod) : '') ||
    cluster?.app ||
    '';
  const namespace =
    attr(attrs, 'k8s.namespace.name') ||
    attr(attrs, 'k8s.pod.namespace') ||
    node?.namespace ||
    attr(attrs, 'service.namespace') ||
    cluster?.namespace ||
    '';
  return { workload, namespace, version: attr(attrs, 'service.version') };
}

/** The record-level `pod`/`namespace` labels fill in what the resource did not say. */
function emitterFor(resource: Emitter, record: Record<string, unknown>): Emitter {
  if (resource.workload && resource.namespace) return resource;
  const pod = typeof record[EMITTER_POD_LABEL] === 'string' ? (record[EMITTER_POD_LABEL] as string) : '';
  const ns = typeof record[EMITTER_NAMESPACE_LABEL] === 'string' ? (record[EMITTER_NAMESPACE_LABEL] as string) : '';
  return {
    workload: resource.workload || (pod && pod !== '-' ? workloadFromPodName(pod) : ''),
    namespace: resource.namespace || (ns !== '-' ? ns : ''),
    version: resource.version,
  };
}

/** Attributes (and a kvlist body) as one object under Istio's JSON keys; the first spelling of a key wins. */
function fieldsOf(rec: LogRecord): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const put = (key: string, value: unknown): void => {
    const canonical = ALIASES.get(key) ?? key;
    if (canonical === '__proto__' || Object.prototype.hasOwnProperty.call(out, canonical)) return;
    out[canonical] = value;
  };
  if (rec.body.kind === 'kvlist') for (const kv of rec.body.values) put(kv.key, anyValueToJs(kv.value));
  for (const kv of rec.attributes) put(kv.key, anyValueToJs(kv.value));
  return out;
}

function looksLikeAccessLog(fields: Record<string, unknown>): boolean {
  for (const k of RECORD_MARKERS) if (Object.prototype.hasOwnProperty.call(fields, k)) return true;
  return false;
}

/** Envoy's formatted line without the `\n` the default format ends with. */
function bodyLine(s: string): string {
  let end = s.length;
  while (end > 0 && (s.charCodeAt(end - 1) === 10 || s.charCodeAt(end - 1) === 13)) end--;
  return end === s.length ? s : s.slice(0, end);
}

function isoOfNanos(ns: bigint): string {
  return new Date(Number(ns / 1_000_000n)).toISOString();
}

function fromAttributes(rec: LogRecord, fields: Record<string, unknown>): Result<MeshRequest> {
  if (!Object.prototype.hasOwnProperty.call(fields, 'start_time') || fields.start_time === '' || fields.start_time === '-') {
    // Envoy puts the request start in `time_unix_nano` ("the request start time is set in the dedicated field").
    const name = rec.timeUnixNano !== 0n ? 'timeUnixNano' : 'observedTimeUnixNano';
    const t = rec.timeUnixNano !== 0n ? rec.timeUnixNano : rec.observedTimeUnixNano;
    if (t !== 0n) {
      // The same 2000–2100 window as span start times: a sender writing milliseconds or seconds into a
      // nanosecond field lands in January 1970, and the record would be stored there (issue 9).
      const ms = Number(t / 1_000_000n);
      if (ms < MIN_PLAUSIBLE_MS || ms > MAX_PLAUSIBLE_MS) {
        const when = ms <= 8.64e15 ? ` (${isoOfNanos(t)})` : '';
        return reject('invalid_timestamp', `${name} ${t}${when} is outside 2000–2100: nanoseconds since the epoch are expected (milliseconds or seconds sent instead?)`);
      }
      fields.start_time = isoOfNanos(t);
    }
  }
  return parseIstioJsonObject(fields);
}

function toRequest(rec: LogRecord, resource: Emitter): Result<MeshRequest> {
  if (rec.invalid) return reject(rec.invalid.reason, rec.invalid.message);
  const fields = fieldsOf(rec);
  const accessLogFields = looksLikeAccessLog(fields);

  let result: Result<MeshRequest> | undefined;
  let fromBody = false;
  if (rec.body.kind === 'string' && rec.body.value.trim().length > 0) {
    result = parseAccessLogLine(bodyLine(rec.body.value)).result;
    fromBody = true;
    // A custom `logFormat.text` the line parser does not know, with the fields also sent as labels:
    // the labels still describe the request.
    if (!result.ok && accessLogFields) {
      const alt = fromAttributes(rec, fields);
      if (alt.ok) {
        result = alt;
        fromBody = false;
      }
    }
  } else if (accessLogFields) {
    result = fromAttributes(rec, fields);
  } else if (rec.body.kind === 'empty' || rec.body.kind === 'string') {
    return reject('not_an_access_log', 'log record has neither a body line nor access-log attributes (response_code, upstream_cluster, start_time, ...)');
  } else {
    return reject('not_an_access_log', `log record body is ${rec.body.kind === 'kvlist' ? 'a map without access-log keys' : `a ${rec.body.kind} value`}, not an access-log line`);
  }
  if (!result.ok) return result;

  const r = result.value;
  applyEmitter(r, emitterFor(resource, fields));
  if (r.traceId === '' && isValidId(rec.traceId, 32)) r.traceId = rec.traceId;
  if (fromBody) {
    // Labels sent alongside a body line are extra context (Istio keeps them as OTel attributes).
    for (const kv of rec.attributes) {
      if (!Object.prototype.hasOwnProperty.call(r.attributes, kv.key)) setRequestAttribute(r, kv.key, anyValueToString(kv.value));
    }
  }
  return result;
}

function normalize(request: ExportLogsRequest): Batch<MeshRequest> {
  const batch: Batch<MeshRequest> = { records: [], rejects: [] };
  let index = 0;
  for (const rl of request.resourceLogs) {
    const emitter = emitterFromResource(rl.resource.attributes);
    for (const sl of rl.scopeLogs) {
      for (const rec of sl.logRecords) {
        index++;
        const r = toRequest(rec, emitter);
        if (r.ok) batch.records.push(r.value);
        else batch.rejects.push({ index, reason: r.reason, message: r.message, raw: logRecordToOtlpJson(rec) });
      }
    }
  }
  return batch;
}

/**
 * Decode an `ExportLogsServiceRequest` body and turn every log record into a MeshRequest or a reject.
 * A body that does not decode is a Rejection (`malformed_protobuf` / `malformed_json`).
 */
export function parseOtlpLogs(body: Buffer, encoding: OtlpEncoding): Result<Batch<MeshRequest>> {
  const decoded = encoding === 'json' ? decodeExportLogsRequestJson(body) : decodeExportLogsRequest(body);
  if (!decoded.ok) return decoded;
  return { ok: true, value: normalize(decoded.value) };
}
