/**
 * The traffic simulator behind `npm run demo` (issue 3 item 4): seeded Istio telemetry for a Bookinfo mesh
 * (access logs from both sidecars in TEXT and JSON, Zipkin spans, Hubble flows) with its exact ground truth, a
 * sender to meshlens's receivers, and the demo's terminal summary. examples/bookinfo/ is the mesh config it
 * simulates. A tool, not a service: it may use services/ through their index.
 */

// Generating traffic: a seeded generator of telemetry batches, or a whole simulation at once.
export { createTrafficGenerator, simulate } from './generator';
export type { GeneratorOptions, Shipper, Simulation, SimulationOptions, TelemetryBatch, TrafficGenerator } from './generator';
export { Rng } from './prng';

// Ground truth: what the generated traffic must add up to, per subset, flow and policy.
export type {
  DestinationKey,
  FlowTruth,
  GroundTruth,
  PolicyCount,
  RequestsTotalSample,
  ReviewsRoutingTruth,
  SubsetTruth,
} from './truth';

// Sending: the telemetry to meshlens's receivers, honouring Retry-After.
export { createTelemetrySender, retryAfterMs } from './sender';
export type {
  DeliveryCounts,
  DeliveryReport,
  ReceiverError,
  TelemetrySender,
  TelemetrySenderOptions,
  TelemetryToSend,
} from './sender';

// The demo: its arguments, its run, and the terminal summary it redraws.
export { renderSummary, startSummaryLoop } from './summary';
export type { SummaryLoop, SummaryLoopOptions } from './summary';
export { DEMO_DATA_DIR, DEMO_USAGE, parseDemoArgs, runDemo } from './demo';
export type { DemoArgs, DemoHandle, DemoLogger, DemoOptions } from './demo';
