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
export { REJECT_REASONS, ok, reject } from './result';
export type { RejectReason, Rejection, Result } from './result';
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
export { OTHER_FLAG, RESPONSE_FLAGS, flagsLabel, forEachFlag, hasFlag, hasMeshFailureFlag, normalizeFlags, responseFlag } from './flags';
export type { FlagCategory, ResponseFlag } from './flags';
export { BLACKHOLE_ROUTE, applyOutcome, classifyOutcome, parseRbacDenial } from './outcome';
export type { OutcomeInput, PolicyRef } from './outcome';
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
