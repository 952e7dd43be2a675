/** Environment that binds every meshlens port to a free one (0): e2e tests run side by side. */
export const EPHEMERAL_PORTS: Readonly<Record<string, string>> = Object.freeze({
  MESHLENS_HTTP_PORT: '0',
  MESHLENS_OTLP_GRPC_PORT: '0',
  MESHLENS_OTLP_HTTP_PORT: '0',
  MESHLENS_ZIPKIN_PORT: '0',
});
