/**
 * lib/runtime: what every target's process needs around its work: configuration, the HTTP server, health,
 * metrics exposition, logging, and one process per data directory. Only bin/ reads `process.env` (through
 * loadConfig).
 */

// Configuration: every MESHLENS_* variable, validated at once; errors name the variable to change.
export { CANARY_DEFAULTS, ConfigError, loadConfig, parseDuration, redactUrl, SETTING_GROUPS, SETTINGS } from './config';
export type { CanaryConfig, Config, Setting, SettingGroup } from './config';

// Start-up: one meshlens per data directory, and the one-line start failures the CLI prints.
export { StartError, claimDataDir } from './datadir';

// HTTP: the server factory (raw bodies, limits, one error shape, bearer auth, ops routes), and request bodies.
export { addOpsRoutes, bearerAuth, checkBearer, createHttpServer, tokenDigest } from './http';
export type { HttpServerOptions } from './http';
export { BodyBudget, HttpError, RETRY_AFTER_SECONDS, readBody, wholeBody } from './body';
export type { BodyChunks } from './body';

// Health and metrics: liveness and readiness checks, the /metrics registry.
export { Health } from './health';
export type { ReadinessCheck } from './health';
export { ExpositionRegistry } from './registry';

// Logging, and time: a day in milliseconds, a promise given a deadline.
export { createLogger } from './logger';
export type { Logger } from './logger';
export { DAY_MS, within } from './time';
