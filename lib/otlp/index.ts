/**
 * lib/otlp: the vendored OTLP protobuf definitions (./proto, see its README), shared by the receivers
 * (services/ingest) and the Jaeger exporter (services/tracer): both read and write the same wire format, so they
 * load the same files.
 */

// The definitions: where they are, and one root with every file loaded and resolved.
export { PROTO_FILES, PROTO_ROOT, loadOtlpRoot } from './proto';
