/**
 * Loading the vendored OTLP protobuf definitions (./proto, see its README) with protobufjs reflection.
 */
import path from 'node:path';
import protobuf from 'protobufjs';

/** Include root of the vendored protos; imports inside them are relative to it. */
export const PROTO_ROOT = path.join(__dirname, 'proto');
export const PROTO_FILES: readonly string[] = Object.freeze([
  'opentelemetry/proto/collector/logs/v1/logs_service.proto',
  'opentelemetry/proto/collector/trace/v1/trace_service.proto',
]);

/** A protobufjs root with every vendored file loaded and resolved (reflection, no generated code). */
export function loadOtlpRoot(): protobuf.Root {
  const root = new protobuf.Root();
  // Imports in the vendored files are written relative to the include root (`opentelemetry/proto/...`).
  root.resolvePath = (_origin: string, target: string) => path.join(PROTO_ROOT, target);
  root.loadSync(PROTO_FILES as string[], { keepCase: false });
  root.resolveAll();
  return root;
}
