/**
 * lib/model: the normalized records every format parses into, and the rules that read Envoy's and Istio's names
 * and flags. Pure: no I/O, no configuration (the mesh config is lib/meshconfig's).
 */

// The records: one request, one flow, one span, whoever reported them.
export { emptySpan } from './records';
export type {
  DenyReason,
  Flow,
  FlowVerdict,
  IngestFormat,
  MeshRequest,
  Outcome,
  Protocol,
  Reporter,
  Span,
  SpanKind,
} from './records';

// Bad input is a value: a parse gives a record or a reject reason from one list.
export { REJECT_REASONS, ok, reject } from './result';
export type { RejectReason, Rejection, Result } from './result';

// Building a request: empty, attributes, emitter, finishing; unknown values.
export {
  NO_ATTRIBUTES,
  UNKNOWN,
  applyEmitter,
  emptyRequest,
  finishRequest,
  isReplicaSetHash,
  orUnknown,
  setRequestAttribute,
  workloadFromPodName,
} from './request';
export type { Emitter } from './request';

// Cluster names, SNI and authorities: Envoy's names of a destination, read into service, subset and port.
export {
  BLACKHOLE_CLUSTER,
  PASSTHROUGH_CLUSTER,
  addressPort,
  parseSni,
  parseUpstreamCluster,
  serviceFromHost,
  stripAltStatSuffix,
} from './cluster';
export type { ClusterDirection, ClusterRef, ServiceName } from './cluster';
export { DESTINATION_CACHE_MAX, destinationOfAuthority, destinationOfCluster, destinationOfSni } from './destination';
export type { Destination } from './destination';

// Response flags and outcomes: Envoy's flags, and what a request's outcome (ok, error, denied...) is.
export { OTHER_FLAG, RESPONSE_FLAGS, flagsLabel, forEachFlag, hasFlag, hasMeshFailureFlag, normalizeFlags, responseFlag } from './flags';
export type { FlagCategory, ResponseFlag } from './flags';
export { BLACKHOLE_ROUTE, applyOutcome, classifyOutcome, parseRbacDenial } from './outcome';
export type { OutcomeInput, PolicyRef } from './outcome';
