/**
 * The traffic simulator behind `npm run demo` (issue 3 item 4): seeded Istio telemetry for a Bookinfo mesh
 * (access logs from both sidecars in TEXT and JSON, Zipkin spans, Hubble flows) with its exact ground truth, a
 * sender to meshlens's receivers, and the demo's terminal summary. examples/bookinfo/ is the mesh config it
 * simulates.
 */
export { createTrafficGenerator, simulate } from './generator';
export { Rng } from './prng';
export type { GeneratorOptions, Shipper, Simulation, SimulationOptions, TelemetryBatch, TrafficGenerator } from './generator';
export type {
  DestinationKey,
  FlowTruth,
  GroundTruth,
  PolicyCount,
  RequestsTotalSample,
  ReviewsRoutingTruth,
  SubsetTruth,
} from './truth';
export { createTelemetrySender, retryAfterMs } from './sender';
export type {
  DeliveryCounts,
  DeliveryReport,
  ReceiverError,
  TelemetrySender,
  TelemetrySenderOptions,
  TelemetryToSend,
} from './sender';
export { renderSummary, startSummaryLoop } from './summary';
export type { SummaryLoop, SummaryLoopOptions } from './summary';
export { DEMO_USAGE, parseDemoArgs, runDemo } from './demo';
export type { DemoArgs, DemoHandle, DemoLogger, DemoOptions } from './demo';
