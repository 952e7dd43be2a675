export { ConfigError, loadConfig } from './config';
export type { Config } from './config';
export { createLogger } from './logger';
export type { Logger } from './logger';
export { Health } from './health';
export type { ReadinessCheck } from './health';
export { HttpError, readBody } from './body';
export { RETRY_AFTER_SECONDS, addOpsRoutes, bearerAuth, checkBearer, createHttpServer } from './http';
export type { HttpServerOptions } from './http';
