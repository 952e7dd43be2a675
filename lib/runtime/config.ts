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

/** The canary judge's settings (docs/canary.md). */
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
    // One problem is one line (the CLI prints it as is); several are listed under a heading.
    super(problems.length === 1 ? `invalid configuration: ${problems[0]}` : `invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** How a setting's text becomes its value. */
interface Kind<T> {
  /** The value when the variable is unset or blank. */
  fallback: T;
  /** The default as users read it (`--help`, README, docs): derived from `fallback` wherever there is one. */
  shown: string;
  /** The value, or what was expected instead (the problem reads `NAME="text": <expected>`). */
  parse(text: string): { value: T } | { expected: string };
}

/** `600000` → `10m`: the largest unit that divides it. */
export function formatDuration(ms: number): string {
  const [unit, size] = Object.entries(UNITS)
    .sort(([, a], [, b]) => b - a)
    .find(([, size]) => ms % size === 0) ?? ['ms', 1];
  return `${ms / size}${unit}`;
}

const HOST_PORT = /^[A-Za-z0-9.\-_[\]:]+:\d{1,5}$/;

const integer = (fallback: number, min: number, max: number): Kind<number> => ({
  fallback,
  shown: String(fallback),
  parse: (v) => (/^\d+$/.test(v) && Number(v) >= min && Number(v) <= max ? { value: Number(v) } : { expected: `expected an integer from ${min} to ${max}` }),
});
const port = (fallback: number): Kind<number> => integer(fallback, 0, 65535);
const bytes = (fallback: number, min: number): Kind<number> => integer(fallback, min, 64 * 1024 * 1024 * 1024);
const duration = (fallback: number, minMs: number): Kind<number> => ({
  fallback,
  shown: formatDuration(fallback),
  parse: (v) => {
    const ms = parseDuration(v);
    return ms !== undefined && ms >= minMs ? { value: ms } : { expected: `expected a duration of at least ${formatDuration(minMs)}, such as 30s, 10m, 1h` };
  },
});
const fraction = (fallback: number, example: string): Kind<number> => ({
  fallback,
  shown: String(fallback),
  parse: (v) => (/^(0(\.\d+)?|1(\.0+)?|\.\d+)$/.test(v) ? { value: Number(v) } : { expected: `expected a number from 0 to 1 (${example})` }),
});
/** A string with no check; unset → undefined, which `shown` explains. */
const text = (shown: string): Kind<string | undefined> => ({ fallback: undefined, shown, parse: (v) => ({ value: v }) });
/** A path of the local file system; unset → `fallback`. */
const path = (fallback: string): Kind<string> => ({ fallback, shown: fallback, parse: (v) => ({ value: v }) });
const address = (fallback: string): Kind<string> => ({
  fallback,
  shown: fallback,
  parse: (v) => (/\s|\//.test(v) ? { expected: 'expected an address' } : { value: v }),
});
const hostPort = (shown: string): Kind<string | undefined> => ({
  fallback: undefined,
  shown,
  parse: (v) => (HOST_PORT.test(v) ? { value: v } : { expected: 'expected host:port' }),
});
const hostPorts = (shown: string): Kind<string[]> => ({
  fallback: [],
  shown,
  parse: (v) => {
    const list = v.split(',').map((b) => b.trim()).filter(Boolean);
    const bad = list.filter((b) => !HOST_PORT.test(b));
    return bad.length === 0 ? { value: list } : { expected: `expected comma-separated host:port; ${bad.map((b) => JSON.stringify(b)).join(', ')} is not host:port` };
  },
});
const url = (shown: string): Kind<string | undefined> => ({
  fallback: undefined,
  shown,
  parse: (v) => {
    try {
      if (['http:', 'https:'].includes(new URL(v).protocol)) return { value: v };
    } catch {
      // not a URL at all
    }
    return { expected: 'expected a URL (http: or https:)' };
  },
});
const oneOf = <T extends string>(values: readonly T[], fallback: T): Kind<T> => ({
  fallback,
  shown: fallback,
  parse: (v) => ((values as readonly string[]).includes(v) ? { value: v as T } : { expected: `expected ${values.slice(0, -1).join(', ')} or ${values[values.length - 1]}` }),
});

/** Headings of `meshlens --help`, in its order. */
export const SETTING_GROUPS = {
  listen: 'Listening',
  access: 'Access',
  storage: 'Storage (ClickHouse) and dead letters',
  bus: 'Bus',
  limits: 'Ingest and metric limits',
  mesh: 'Mesh config',
  targets: 'Prometheus targets',
  tracing: 'Traces to Jaeger',
  grafana: 'Grafana',
  canary: 'Canary judgement',
  process: 'Process',
} as const;
export type SettingGroup = keyof typeof SETTING_GROUPS;

interface Spec<T> {
  name: `MESHLENS_${string}`;
  group: SettingGroup;
  kind: Kind<T>;
  /** One line, as `--help` shows it. */
  meaning: string;
}

const spec = <T>(name: `MESHLENS_${string}`, group: SettingGroup, kind: Kind<T>, meaning: string): Spec<T> => ({ name, group, kind, meaning });

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * Every setting: its variable, its parser with the default and bounds, and what it means. `loadConfig` reads
 * exactly these, `meshlens --help` lists them, and a test holds the README's Configuration table to them.
 */
const SPECS = {
  listenHost: spec('MESHLENS_LISTEN_HOST', 'listen', address('127.0.0.1'), 'bind address of every port (containers set 0.0.0.0)'),
  httpPort: spec('MESHLENS_HTTP_PORT', 'listen', port(8080), 'HTTP: access logs, flows, query API, /metrics, health'),
  otlpGrpcPort: spec('MESHLENS_OTLP_GRPC_PORT', 'listen', port(4317), 'OTLP/gRPC receiver (logs and traces)'),
  otlpHttpPort: spec('MESHLENS_OTLP_HTTP_PORT', 'listen', port(4318), 'OTLP/HTTP receiver (/v1/logs, /v1/traces)'),
  zipkinPort: spec('MESHLENS_ZIPKIN_PORT', 'listen', port(9411), 'Zipkin v2 receiver (/api/v2/spans)'),
  ingestToken: spec('MESHLENS_INGEST_TOKEN', 'access', text('unset → no auth'), 'receivers then require Authorization: Bearer <token>'),
  apiToken: spec('MESHLENS_API_TOKEN', 'access', text('unset → open'), '/api/* then requires Authorization: Bearer <token>'),
  dataDir: spec('MESHLENS_DATA_DIR', 'storage', path('./data'), "embedded ClickHouse and the all-in-one's dead letters"),
  clickhouseUrl: spec('MESHLENS_CLICKHOUSE_URL', 'storage', url('unset → embedded'), 'a ClickHouse server: http://user:pass@host:8123/db'),
  rawRetentionDays: spec('MESHLENS_RAW_RETENTION_DAYS', 'storage', integer(7, 1, 3650), 'days raw rows are kept; older records are too_old'),
  rollupRetentionDays: spec('MESHLENS_ROLLUP_RETENTION_DAYS', 'storage', integer(90, 1, 3650), 'days the per-minute rollups are kept'),
  rawRequests: spec('MESHLENS_RAW_REQUESTS', 'storage', fraction(1, '0.1 keeps the raw rows of one ok request in ten'), 'share (0-1) of ok requests whose raw rows are stored'),
  queryTimeoutMs: spec('MESHLENS_QUERY_TIMEOUT', 'storage', duration(30_000, 1_000), 'longest a query-API statement may run in ClickHouse'),
  deadLetterMaxBytes: spec('MESHLENS_DEADLETTER_MAX_BYTES', 'storage', bytes(1024 * 1024 * 1024, 1024 * 1024), 'dead-letter files (all-in-one): most bytes kept'),
  deadLetterRetentionDays: spec('MESHLENS_DEADLETTER_RETENTION_DAYS', 'storage', integer(7, 1, 3650), 'dead-letter files (all-in-one): days kept'),
  kafkaBrokers: spec('MESHLENS_KAFKA_BROKERS', 'bus', hostPorts('unset → in-memory bus'), 'comma-separated Kafka bootstrap servers, host:port'),
  busCapacity: spec('MESHLENS_BUS_CAPACITY', 'bus', integer(100_000, 1, 100_000_000), 'in-memory bus: unstored records per topic before 429'),
  maxBodyBytes: spec('MESHLENS_MAX_BODY_BYTES', 'limits', integer(16 * 1024 * 1024, 1024, 1024 * 1024 * 1024), 'largest request body after decompression (else 413)'),
  maxInflightBytes: spec('MESHLENS_MAX_INFLIGHT_BYTES', 'limits', bytes(64 * 1024 * 1024, 1024), 'body bytes all receivers hold at once (else 503)'),
  maxClockSkewMs: spec('MESHLENS_MAX_CLOCK_SKEW', 'limits', duration(10 * 60_000, 1_000), 'records further in the future are rejected too_new'),
  maxSeries: spec('MESHLENS_MAX_SERIES', 'limits', integer(50_000, 10, 10_000_000), 'label sets per metric; more fold into __overflow__'),
  meshConfigPath: spec('MESHLENS_MESH_CONFIG', 'mesh', text('unset'), 'a file or folder of Istio/Kubernetes YAML'),
  advertiseAddress: spec('MESHLENS_ADVERTISE_ADDRESS', 'targets', hostPort('derived'), 'host:port Prometheus and peers reach the HTTP port at'),
  fileSdPath: spec('MESHLENS_FILE_SD_PATH', 'targets', text('unset'), 'a Prometheus file_sd copy of the scrape targets'),
  jaegerEndpoint: spec('MESHLENS_JAEGER_ENDPOINT', 'tracing', url('unset → no export'), 'where the tracer sends spans (OTLP/HTTP base URL)'),
  jaegerProtocol: spec('MESHLENS_JAEGER_PROTOCOL', 'tracing', oneOf(['otlp', 'thrift'] as const, 'otlp'), "otlp (OTLP/HTTP) or thrift (a collector's /api/traces)"),
  traceSampleRatio: spec('MESHLENS_TRACE_SAMPLE_RATIO', 'tracing', fraction(0.1, '0.1 exports one ordinary trace in ten'), 'share (0-1) of ordinary traces exported'),
  grafanaUrl: spec('MESHLENS_GRAFANA_URL', 'grafana', url('unset → no push'), 'the Grafana the dashboards are pushed to'),
  grafanaToken: spec('MESHLENS_GRAFANA_TOKEN', 'grafana', text('unset'), 'service-account token; else user:pass in the URL'),
  canaryWindowMs: spec('MESHLENS_CANARY_WINDOW', 'canary', duration(CANARY_DEFAULTS.windowMs, 60_000), 'period the canary judge reads, ending now'),
  canaryIntervalMs: spec('MESHLENS_CANARY_INTERVAL', 'canary', duration(CANARY_DEFAULTS.intervalMs, 1_000), 'how often the canary judge runs'),
  canaryMinRequests: spec('MESHLENS_CANARY_MIN_REQUESTS', 'canary', integer(CANARY_DEFAULTS.minRequests, 10, 100_000_000), 'requests each side needs for a pass or fail verdict'),
  canaryMargin: spec('MESHLENS_CANARY_MARGIN', 'canary', fraction(CANARY_DEFAULTS.margin, '0.005 = half a percentage point'), 'error-ratio excess a canary may have over its baseline'),
  shutdownTimeoutMs: spec('MESHLENS_SHUTDOWN_TIMEOUT', 'process', duration(8_000, 2_000), 'bound on a graceful stop (SIGTERM, Ctrl-C)'),
  logLevel: spec('MESHLENS_LOG_LEVEL', 'process', oneOf(LOG_LEVELS, 'info'), LOG_LEVELS.join(', ')),
};

/** One setting as users see it: the variable, its default as written in `--help` and the docs, what it means. */
export interface Setting {
  name: string;
  group: SettingGroup;
  default: string;
  meaning: string;
}

/** Every setting `loadConfig` reads, in `--help`'s order (by group, then as listed). */
export const SETTINGS: readonly Setting[] = Object.freeze(
  Object.keys(SETTING_GROUPS).flatMap((group) =>
    Object.values(SPECS)
      .filter((s) => s.group === group)
      .map((s) => Object.freeze({ name: s.name, group: s.group, default: s.kind.shown, meaning: s.meaning })),
  ),
);

type Values = { [K in keyof typeof SPECS]: (typeof SPECS)[K] extends Spec<infer T> ? T : never };

export function loadConfig(env: Env): Config {
  const problems: string[] = [];
  const read = <T>(s: Spec<T>): T => {
    const v = env[s.name]?.trim();
    if (v === undefined || v === '') return s.kind.fallback;
    const parsed = s.kind.parse(v);
    if ('value' in parsed) return parsed.value;
    // A URL may carry a password (`http://user:pass@host`): no value is echoed with it.
    problems.push(`${s.name}=${JSON.stringify(redactUrl(v))}: ${parsed.expected}`);
    return s.kind.fallback;
  };
  const values = Object.fromEntries(Object.entries(SPECS).map(([key, s]) => [key, read(s as Spec<unknown>)])) as Values;
  const { canaryWindowMs, canaryIntervalMs, canaryMinRequests, canaryMargin, ...rest } = values;
  const config: Config = { ...rest, canary: { windowMs: canaryWindowMs, intervalMs: canaryIntervalMs, minRequests: canaryMinRequests, margin: canaryMargin } };

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
