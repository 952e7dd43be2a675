/**
 * Configuration from environment variables (CONTRACT.md §2, §9). Read once by bin/ and injected; nothing
 * else reads process.env. A bad value stops the start with a message naming every bad variable.
 */

export interface Config {
  listenHost: string;
  httpPort: number;
  otlpGrpcPort: number;
  otlpHttpPort: number;
  zipkinPort: number;
  dataDir: string;
  /** undefined → embedded ClickHouse (chDB) in dataDir. */
  clickhouseUrl: string | undefined;
  /** empty → in-memory bus. */
  kafkaBrokers: string[];
  meshConfigPath: string | undefined;
  jaegerEndpoint: string | undefined;
  jaegerProtocol: 'otlp' | 'thrift';
  /**
   * Share (0–1) of traces the tracer exports among those with no canary subset, error or denial, chosen by trace
   * id (those are always exported).
   */
  traceSampleRatio: number;
  /** undefined → receivers take unauthenticated writes. */
  ingestToken: string | undefined;
  /** undefined → `/api/*` is open; otherwise it requires `Authorization: Bearer <token>`. */
  apiToken: string | undefined;
  /** Largest accepted request body, counted after decompression. */
  maxBodyBytes: number;
  /** Per-metric label-set cap before folding into `__overflow__`. */
  maxSeries: number;
  /** In-memory bus: records a topic may hold un-stored before publishers are told to retry. */
  busCapacity: number;
  /** Decompressed request-body bytes all receivers together hold at once; beyond it they answer 503. */
  maxInflightBytes: number;
  /** Records whose event time is further ahead of the receiver's clock than this are rejected `too_new`. */
  maxClockSkewMs: number;
  /** Bound on a graceful stop (SIGTERM/SIGINT): intake stops, acknowledged work finishes, the rest is counted. */
  shutdownTimeoutMs: number;
  /** Upper bound on one query-API statement in ClickHouse (`max_execution_time`). */
  queryTimeoutMs: number;
  /** All-in-one dead-letter files: the most bytes kept, oldest days deleted first. */
  deadLetterMaxBytes: number;
  /** All-in-one dead-letter files: days kept. */
  deadLetterRetentionDays: number;
  /** Days raw requests, flows and spans stay in ClickHouse (table TTL). */
  rawRetentionDays: number;
  /** Days the per-minute rollups stay in ClickHouse (table TTL). */
  rollupRetentionDays: number;
  /** Share (0–1) of `ok` requests whose raw rows are stored, by request id; errors and denials always are. */
  rawRequests: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  canary: CanaryConfig;
  /** `host:port` Prometheus and peers reach this process's HTTP port at; undefined → derived at start. */
  advertiseAddress: string | undefined;
  /** Where to keep a Prometheus `file_sd` copy of the scrape targets; undefined → none. */
  fileSdPath: string | undefined;
  /** Grafana the provisioner pushes the dashboards to; undefined → no push. */
  grafanaUrl: string | undefined;
  /** Service-account token sent as `Authorization: Bearer`; without it, grafanaUrl carries `user:password`. Never logged. */
  grafanaToken: string | undefined;
}

/** The canary judge's settings (README "Canary judgement"). */
export interface CanaryConfig {
  /** Period judged, ending now. */
  windowMs: number;
  /** How often the judge runs and `meshlens_canary_verdict` is refreshed. */
  intervalMs: number;
  /** Requests each of baseline and canary needs before a verdict other than `inconclusive`. */
  minRequests: number;
  /** Absolute error-ratio difference a canary may exceed its baseline by without failing (0.005 = 0.5 points). */
  margin: number;
}

/**
 * Defaults shared by the judge and the generated alert rules (services/provisioner), so the PromQL alert and
 * `meshlens_canary_verdict` apply the same minimum sample and margin.
 */
export const CANARY_DEFAULTS: Readonly<CanaryConfig> = Object.freeze({
  windowMs: 10 * 60_000,
  intervalMs: 30_000,
  minRequests: 200,
  margin: 0.005,
});

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `30s`, `5m`, `1h`, `7d`, `250ms` → milliseconds; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (!m) return undefined;
  const ms = Number(m[1]) * (UNITS[m[2] as string] as number);
  return ms > 0 && Number.isFinite(ms) ? Math.round(ms) : undefined;
}

/** `scheme://user:secret@host/...` → `scheme://user:***@host/...`, also in strings that do not parse as URLs. */
export function redactUrl(text: string): string {
  return text.replace(/(\/\/[^/@\s:]*:)[^@\s]*@/g, '$1***@');
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export function loadConfig(env: Env): Config {
  const problems: string[] = [];
  const str = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const int = (name: string, def: number, min: number, max: number): number => {
    const v = str(name);
    if (v === undefined) return def;
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
      problems.push(`${name}=${JSON.stringify(v)}: expected an integer from ${min} to ${max}`);
      return def;
    }
    return Number(v);
  };
  const port = (name: string, def: number): number => int(name, def, 0, 65535);
  const duration = (name: string, def: number, minMs: number): number => {
    const v = str(name);
    if (v === undefined) return def;
    const ms = parseDuration(v);
    if (ms === undefined || ms < minMs) {
      problems.push(`${name}=${JSON.stringify(v)}: expected a duration of at least ${minMs / 1000}s, such as 30s, 10m, 1h`);
      return def;
    }
    return ms;
  };
  const fraction = (name: string, def: number, example: string): number => {
    const v = str(name);
    if (v === undefined) return def;
    if (!/^(0(\.\d+)?|1(\.0+)?|\.\d+)$/.test(v)) {
      problems.push(`${name}=${JSON.stringify(v)}: expected a number from 0 to 1 (${example})`);
      return def;
    }
    return Number(v);
  };
  const url = (name: string, protocols: string[]): string | undefined => {
    const v = str(name);
    if (v === undefined) return undefined;
    try {
      const u = new URL(v);
      if (!protocols.includes(u.protocol)) throw new Error(u.protocol);
      return v;
    } catch {
      // The value may carry a password (`http://user:pass@host`): it is never echoed.
      problems.push(`${name}=${JSON.stringify(redactUrl(v))}: expected a URL (${protocols.join(' or ')})`);
      return undefined;
    }
  };
  const bytes = (name: string, def: number, min: number): number => int(name, def, min, 64 * 1024 * 1024 * 1024);

  const brokersRaw = str('MESHLENS_KAFKA_BROKERS');
  const kafkaBrokers = brokersRaw === undefined ? [] : brokersRaw.split(',').map((b) => b.trim()).filter(Boolean);
  for (const b of kafkaBrokers) {
    if (!/^[A-Za-z0-9.\-_[\]:]+:\d{1,5}$/.test(b)) {
      problems.push(`MESHLENS_KAFKA_BROKERS: ${JSON.stringify(b)} is not host:port`);
    }
  }

  const jaegerProtocolRaw = str('MESHLENS_JAEGER_PROTOCOL') ?? 'otlp';
  if (jaegerProtocolRaw !== 'otlp' && jaegerProtocolRaw !== 'thrift') {
    problems.push(`MESHLENS_JAEGER_PROTOCOL=${JSON.stringify(jaegerProtocolRaw)}: expected otlp or thrift`);
  }
  const logLevelRaw = str('MESHLENS_LOG_LEVEL') ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevelRaw)) {
    problems.push(`MESHLENS_LOG_LEVEL=${JSON.stringify(logLevelRaw)}: expected one of ${LOG_LEVELS.join(', ')}`);
  }
  const listenHost = str('MESHLENS_LISTEN_HOST') ?? '127.0.0.1';
  if (/\s|\//.test(listenHost)) problems.push(`MESHLENS_LISTEN_HOST=${JSON.stringify(listenHost)}: expected an address`);

  const config: Config = {
    listenHost,
    httpPort: port('MESHLENS_HTTP_PORT', 8080),
    otlpGrpcPort: port('MESHLENS_OTLP_GRPC_PORT', 4317),
    otlpHttpPort: port('MESHLENS_OTLP_HTTP_PORT', 4318),
    zipkinPort: port('MESHLENS_ZIPKIN_PORT', 9411),
    dataDir: str('MESHLENS_DATA_DIR') ?? './data',
    clickhouseUrl: url('MESHLENS_CLICKHOUSE_URL', ['http:', 'https:']),
    kafkaBrokers,
    meshConfigPath: str('MESHLENS_MESH_CONFIG'),
    jaegerEndpoint: url('MESHLENS_JAEGER_ENDPOINT', ['http:', 'https:']),
    jaegerProtocol: jaegerProtocolRaw === 'thrift' ? 'thrift' : 'otlp',
    traceSampleRatio: fraction('MESHLENS_TRACE_SAMPLE_RATIO', 0.1, '0.1 exports one ordinary trace in ten'),
    ingestToken: str('MESHLENS_INGEST_TOKEN'),
    apiToken: str('MESHLENS_API_TOKEN'),
    maxBodyBytes: int('MESHLENS_MAX_BODY_BYTES', 16 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    maxSeries: int('MESHLENS_MAX_SERIES', 50_000, 10, 10_000_000),
    busCapacity: int('MESHLENS_BUS_CAPACITY', 100_000, 1, 100_000_000),
    maxInflightBytes: bytes('MESHLENS_MAX_INFLIGHT_BYTES', 64 * 1024 * 1024, 1024),
    maxClockSkewMs: duration('MESHLENS_MAX_CLOCK_SKEW', 10 * 60_000, 1_000),
    shutdownTimeoutMs: duration('MESHLENS_SHUTDOWN_TIMEOUT', 8_000, 2_000),
    queryTimeoutMs: duration('MESHLENS_QUERY_TIMEOUT', 30_000, 1_000),
    deadLetterMaxBytes: bytes('MESHLENS_DEADLETTER_MAX_BYTES', 1024 * 1024 * 1024, 1024 * 1024),
    deadLetterRetentionDays: int('MESHLENS_DEADLETTER_RETENTION_DAYS', 7, 1, 3650),
    rawRetentionDays: int('MESHLENS_RAW_RETENTION_DAYS', 7, 1, 3650),
    rollupRetentionDays: int('MESHLENS_ROLLUP_RETENTION_DAYS', 90, 1, 3650),
    rawRequests: fraction('MESHLENS_RAW_REQUESTS', 1, '0.1 keeps the raw rows of one ok request in ten'),
    logLevel: logLevelRaw as Config['logLevel'],
    canary: {
      windowMs: duration('MESHLENS_CANARY_WINDOW', CANARY_DEFAULTS.windowMs, 60_000),
      intervalMs: duration('MESHLENS_CANARY_INTERVAL', CANARY_DEFAULTS.intervalMs, 1_000),
      minRequests: int('MESHLENS_CANARY_MIN_REQUESTS', CANARY_DEFAULTS.minRequests, 10, 100_000_000),
      margin: fraction('MESHLENS_CANARY_MARGIN', CANARY_DEFAULTS.margin, '0.005 = half a percentage point'),
    },
    advertiseAddress: str('MESHLENS_ADVERTISE_ADDRESS'),
    fileSdPath: str('MESHLENS_FILE_SD_PATH'),
    grafanaUrl: url('MESHLENS_GRAFANA_URL', ['http:', 'https:']),
    grafanaToken: str('MESHLENS_GRAFANA_TOKEN'),
  };
  if (config.advertiseAddress !== undefined && !/^[A-Za-z0-9.\-_[\]:]+:\d{1,5}$/.test(config.advertiseAddress)) {
    problems.push(`MESHLENS_ADVERTISE_ADDRESS=${JSON.stringify(config.advertiseAddress)}: expected host:port`);
  }
  if (config.clickhouseUrl !== undefined) {
    const db = new URL(config.clickhouseUrl).pathname.replace(/^\/+|\/+$/g, '');
    if (db !== '' && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(db)) {
      problems.push(`MESHLENS_CLICKHOUSE_URL: database ${JSON.stringify(db)} must be a plain identifier`);
    }
  }
  if (config.maxInflightBytes < config.maxBodyBytes) {
    problems.push(
      `MESHLENS_MAX_INFLIGHT_BYTES=${config.maxInflightBytes} is below MESHLENS_MAX_BODY_BYTES=${config.maxBodyBytes}: a body of the largest allowed size could never be taken`,
    );
  }
  if (config.jaegerProtocol === 'thrift' && config.jaegerEndpoint === undefined) {
    problems.push('MESHLENS_JAEGER_PROTOCOL=thrift needs MESHLENS_JAEGER_ENDPOINT');
  }
  // Without a token, the URL's `user:password` are sent as basic auth (a fresh Grafana's admin, as in the compose stack).
  if (config.grafanaUrl !== undefined && config.grafanaToken === undefined && new URL(config.grafanaUrl).username === '') {
    problems.push(
      'MESHLENS_GRAFANA_URL is set but MESHLENS_GRAFANA_TOKEN is not: the dashboards are pushed with a Grafana service-account token, or with a user and password in the URL (http://user:password@grafana:3000)',
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}
