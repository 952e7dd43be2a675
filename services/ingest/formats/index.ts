/** formats/: one parser per telemetry format, each a pure function from a line or a decoded body to records. */

// Istio access logs: the TEXT layout, the JSON layout, log-shipper envelopes (Fluent Bit, Vector), the per-line dispatcher.
export { parseIstioText, parseIstioTextWithLayout, parseRfc3339Millis } from './istio-text';
export type { TextLayout, TextParse } from './istio-text';
export { parseIstioJson, parseIstioJsonObject } from './istio-json';
export { ISTIO_PROXY_CONTAINER, isEnvelope, parseEnvelope, parseEnvelopeObject } from './envelope';
export { MAX_LINE_BYTES, parseAccessLogLine, parseAccessLogObject } from './accesslog';
export type { AccessLogParse } from './accesslog';

// Flow logs: Cilium Hubble and Calico, and the detection of which.
export { parseHubbleFlow } from './hubble';
export { parseCalicoFlow } from './calico';
export { parseFlowLine, parseFlowObject } from './flows';
export type { FlowFormat, FlowLineResult } from './flows';

// OpenTelemetry and Zipkin: OTLP logs (Envoy's ALS) and traces, Zipkin v2 spans.
export { emitterFromResource, parseNodeName, parseOtlpLogs } from './otlp-logs';
export type { OtlpEncoding } from './otlp-logs';
export { parseOtlpTraces } from './otlp-traces';
export { parseZipkin } from './zipkin';

// What a whole-body parser returns: the records it could build, and a rejection for each it could not.
export type { Batch, RecordReject } from './batch';
