export { CANARY_DEFAULTS, ConfigError, loadConfig, parseDuration, redactUrl } from './config';
export type { CanaryConfig, Config } from './config';
export { StartError, claimDataDir } from './datadir';
export { DAY_MS, within } from './time';
export { ExpositionRegistry } from './registry';
export { createLogger } from './logger';
export type { Logger } from './logger';
export { Health } from './health';
export type { ReadinessCheck } from './health';
export { BodyBudget, HttpError, RETRY_AFTER_SECONDS, readBody, wholeBody } from './body';
export type { BodyChunks } from './body';
export { addOpsRoutes, bearerAuth, checkBearer, createHttpServer, tokenDigest } from './http';
export type { HttpServerOptions } from './http';
export {
  EXPIRE_AFTER_INTERVALS,
  HEARTBEAT_INTERVAL_MS,
  MemberDirectory,
  advertiseAddress,
  hostPort,
  isHeartbeat,
  newInstanceId,
  startMembership,
} from './membership';
export type { AdvertiseOptions, Member, MemberDirectoryOptions, Membership, MembershipOptions, SelfDescription } from './membership';
