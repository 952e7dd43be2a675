import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadConfig, SETTING_GROUPS, SETTINGS } from './config';

describe('loadConfig', () => {
  it('applies the defaults of CONTRACT.md §2 when nothing is set', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      listenHost: '127.0.0.1',
      httpPort: 8080,
      otlpGrpcPort: 4317,
      otlpHttpPort: 4318,
      zipkinPort: 9411,
      dataDir: './data',
      clickhouseUrl: undefined,
      kafkaBrokers: [],
      ingestToken: undefined,
      maxBodyBytes: 16 * 1024 * 1024,
      maxSeries: 50_000,
      jaegerProtocol: 'otlp',
    });
  });

  it('reads every variable', () => {
    const c = loadConfig({
      MESHLENS_LISTEN_HOST: '0.0.0.0',
      MESHLENS_HTTP_PORT: '18080',
      MESHLENS_OTLP_GRPC_PORT: '14317',
      MESHLENS_OTLP_HTTP_PORT: '14318',
      MESHLENS_ZIPKIN_PORT: '19411',
      MESHLENS_DATA_DIR: '/var/lib/meshlens',
      MESHLENS_CLICKHOUSE_URL: 'http://user:pass@clickhouse:8123/meshlens',
      MESHLENS_KAFKA_BROKERS: 'kafka-0:9092, kafka-1:9092',
      MESHLENS_MESH_CONFIG: '/etc/meshlens/mesh',
      MESHLENS_JAEGER_ENDPOINT: 'http://jaeger:4318',
      MESHLENS_INGEST_TOKEN: 's3cret',
      MESHLENS_MAX_BODY_BYTES: '1048576',
      MESHLENS_MAX_SERIES: '1000',
    });
    expect(c.kafkaBrokers).toEqual(['kafka-0:9092', 'kafka-1:9092']);
    expect(c.httpPort).toBe(18080);
    expect(c.clickhouseUrl).toBe('http://user:pass@clickhouse:8123/meshlens');
    expect(c.ingestToken).toBe('s3cret');
    expect(c.maxBodyBytes).toBe(1048576);
  });

  it('names every bad variable in one error', () => {
    let err: unknown;
    try {
      loadConfig({
        MESHLENS_HTTP_PORT: 'eighty',
        MESHLENS_OTLP_GRPC_PORT: '70000',
        MESHLENS_CLICKHOUSE_URL: 'not a url',
        MESHLENS_KAFKA_BROKERS: 'kafka',
        MESHLENS_MAX_BODY_BYTES: '-1',
        MESHLENS_JAEGER_PROTOCOL: 'grpc',
        MESHLENS_CANARY_WINDOW: '10 minutes',
        MESHLENS_CANARY_MARGIN: '5%',
        MESHLENS_ADVERTISE_ADDRESS: 'meshlens',
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as ConfigError).message;
    for (const name of [
      'MESHLENS_HTTP_PORT',
      'MESHLENS_OTLP_GRPC_PORT',
      'MESHLENS_CLICKHOUSE_URL',
      'MESHLENS_KAFKA_BROKERS',
      'MESHLENS_MAX_BODY_BYTES',
      'MESHLENS_JAEGER_PROTOCOL',
      'MESHLENS_CANARY_WINDOW',
      'MESHLENS_CANARY_MARGIN',
      'MESHLENS_ADVERTISE_ADDRESS',
    ]) {
      expect(message).toContain(name);
    }
    expect((err as ConfigError).problems).toHaveLength(9);
  });

  it('reads the canary judge settings, with defaults', () => {
    expect(loadConfig({}).canary).toEqual({ windowMs: 600_000, intervalMs: 30_000, minRequests: 200, margin: 0.005 });
    expect(
      loadConfig({ MESHLENS_CANARY_WINDOW: '1h', MESHLENS_CANARY_INTERVAL: '15s', MESHLENS_CANARY_MIN_REQUESTS: '1000', MESHLENS_CANARY_MARGIN: '0.01' }).canary,
    ).toEqual({ windowMs: 3_600_000, intervalMs: 15_000, minRequests: 1000, margin: 0.01 });
  });

  it('reads MESHLENS_TRACE_SAMPLE_RATIO (default 0.1) and refuses a value outside 0–1', () => {
    expect(loadConfig({}).traceSampleRatio).toBe(0.1);
    expect(loadConfig({ MESHLENS_TRACE_SAMPLE_RATIO: '0.25' }).traceSampleRatio).toBe(0.25);
    expect(loadConfig({ MESHLENS_TRACE_SAMPLE_RATIO: '0' }).traceSampleRatio).toBe(0);
    expect(() => loadConfig({ MESHLENS_TRACE_SAMPLE_RATIO: '1.5' })).toThrow(/MESHLENS_TRACE_SAMPLE_RATIO="1.5": expected a number from 0 to 1/);
    expect(() => loadConfig({ MESHLENS_TRACE_SAMPLE_RATIO: '10%' })).toThrow(/MESHLENS_TRACE_SAMPLE_RATIO/);
  });

  it('treats empty values as unset', () => {
    expect(loadConfig({ MESHLENS_HTTP_PORT: '', MESHLENS_INGEST_TOKEN: '  ' })).toMatchObject({ httpPort: 8080, ingestToken: undefined });
  });

  it('reads the pipeline, shutdown, query and dead-letter bounds, with defaults', () => {
    expect(loadConfig({})).toMatchObject({
      apiToken: undefined,
      busCapacity: 100_000,
      maxInflightBytes: 64 * 1024 * 1024,
      maxClockSkewMs: 600_000,
      shutdownTimeoutMs: 8_000,
      queryTimeoutMs: 30_000,
      deadLetterMaxBytes: 1024 * 1024 * 1024,
      deadLetterRetentionDays: 7,
    });
    expect(
      loadConfig({
        MESHLENS_API_TOKEN: 'reader',
        MESHLENS_BUS_CAPACITY: '5000',
        MESHLENS_MAX_INFLIGHT_BYTES: '33554432',
        MESHLENS_MAX_CLOCK_SKEW: '1m',
        MESHLENS_SHUTDOWN_TIMEOUT: '20s',
        MESHLENS_QUERY_TIMEOUT: '5s',
        MESHLENS_DEADLETTER_MAX_BYTES: '10485760',
        MESHLENS_DEADLETTER_RETENTION_DAYS: '2',
      }),
    ).toMatchObject({
      apiToken: 'reader',
      busCapacity: 5000,
      maxInflightBytes: 33554432,
      maxClockSkewMs: 60_000,
      shutdownTimeoutMs: 20_000,
      queryTimeoutMs: 5_000,
      deadLetterMaxBytes: 10485760,
      deadLetterRetentionDays: 2,
    });
  });

  it('refuses an in-flight bound below the body limit, naming both variables', () => {
    expect(() => loadConfig({ MESHLENS_MAX_INFLIGHT_BYTES: '1048576', MESHLENS_MAX_BODY_BYTES: '2097152' })).toThrow(
      /MESHLENS_MAX_INFLIGHT_BYTES=1048576 is below MESHLENS_MAX_BODY_BYTES=2097152/,
    );
  });

  it('never echoes the password of a ClickHouse URL it refuses', () => {
    let message = '';
    try {
      loadConfig({ MESHLENS_CLICKHOUSE_URL: 'clickhouse://admin:hunter2@db:9000/meshlens' });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain('MESHLENS_CLICKHOUSE_URL');
    expect(message).toContain('admin:***@db');
    expect(message).not.toContain('hunter2');
  });

  it('reads MESHLENS_GRAFANA_URL and MESHLENS_GRAFANA_TOKEN; a bad URL or a URL without token stops the start', () => {
    expect(loadConfig({})).toMatchObject({ grafanaUrl: undefined, grafanaToken: undefined });
    expect(loadConfig({ MESHLENS_GRAFANA_URL: 'http://grafana:3000', MESHLENS_GRAFANA_TOKEN: 'glsa_x' })).toMatchObject({
      grafanaUrl: 'http://grafana:3000',
      grafanaToken: 'glsa_x',
    });
    expect(() => loadConfig({ MESHLENS_GRAFANA_URL: 'grafana:3000', MESHLENS_GRAFANA_TOKEN: 'glsa_x' })).toThrow(/MESHLENS_GRAFANA_URL=.*expected a URL/);
    let message = '';
    try {
      loadConfig({ MESHLENS_GRAFANA_URL: 'http://grafana:3000' });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message.split('\n').filter((l) => l.includes('MESHLENS_GRAFANA'))).toEqual([
      expect.stringMatching(/MESHLENS_GRAFANA_URL is set but MESHLENS_GRAFANA_TOKEN is not/),
    ]);
    // A user and password in the URL stand in for the token (basic auth, as a fresh Grafana's admin).
    expect(loadConfig({ MESHLENS_GRAFANA_URL: 'http://admin:admin@grafana:3000' })).toMatchObject({ grafanaToken: undefined });
  });
});

describe('SETTINGS, the one table of settings', () => {
  const ROOT = join(__dirname, '..', '..');

  it('holds every MESHLENS_* variable config.ts names, once', () => {
    const named = new Set(readFileSync(join(__dirname, 'config.ts'), 'utf8').match(/MESHLENS_[A-Z0-9_]*[A-Z0-9]/g));
    const listed = SETTINGS.map((s) => s.name);
    expect(new Set(listed).size).toBe(listed.length);
    expect([...named].filter((n) => !listed.includes(n))).toEqual([]);
    expect(listed.length).toBeGreaterThan(30);
  });

  it('gives each setting a known group, a default and a one-line meaning', () => {
    for (const s of SETTINGS) {
      expect(Object.keys(SETTING_GROUPS)).toContain(s.group);
      expect(s.default).not.toBe('');
      expect(s.meaning).toMatch(/^[^\n]{10,}$/);
    }
  });

  it('shows the defaults loadConfig applies: setting a variable to its shown default changes nothing', () => {
    const defaults = loadConfig({});
    for (const s of SETTINGS.filter((x) => !/^(unset|derived)\b/.test(x.default))) {
      expect([s.name, loadConfig({ [s.name]: s.default })]).toEqual([s.name, defaults]);
    }
  });

  it('reads each setting: a value that is not its default reaches the config', () => {
    // One variable at a time; those without a check (tokens, paths) simply take the text.
    const samples: Record<string, string> = { MESHLENS_JAEGER_PROTOCOL: 'thrift', MESHLENS_LOG_LEVEL: 'debug', MESHLENS_GRAFANA_URL: 'http://a:b@grafana:3000' };
    const defaults = JSON.stringify(loadConfig({}));
    for (const s of SETTINGS) {
      const value =
        samples[s.name] ??
        (/PORT$/.test(s.name) ? '1234' : /^[01](\.\d+)?$/.test(s.default) ? '0.5' : /^\d+$/.test(s.default) ? String(Number(s.default) + 1) : /^\d+(ms|s|m|h|d)$/.test(s.default) ? '2h' : /URL|ENDPOINT/.test(s.name) ? 'http://host:1/' : /BROKERS|ADDRESS/.test(s.name) ? 'host:1' : 'x');
      const env = s.name === 'MESHLENS_JAEGER_PROTOCOL' ? { [s.name]: value, MESHLENS_JAEGER_ENDPOINT: 'http://j:14268/api/traces' } : { [s.name]: value };
      const base = s.name === 'MESHLENS_JAEGER_PROTOCOL' ? JSON.stringify(loadConfig({ MESHLENS_JAEGER_ENDPOINT: 'http://j:14268/api/traces' })) : defaults;
      expect([s.name, JSON.stringify(loadConfig(env)) !== base]).toEqual([s.name, true]);
    }
  });

  /** `| \`MESHLENS_X\` | default | meaning |` rows of a Markdown text: name → default without backticks. */
  const rows = (markdown: string): Map<string, string> =>
    new Map([...markdown.matchAll(/^\|\s*`(MESHLENS_[A-Z0-9_]+)`\s*\|([^|\n]*)\|/gm)].map((m) => [m[1] as string, (m[2] as string).replace(/`/g, '').trim()]));

  it('matches the documented settings: each in docs/configuration.md or the README\'s Configuration table, with its default', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const section = /^## Configuration\n([\s\S]*?)(?=^## )/m.exec(readme)?.[1] ?? '';
    const docsPath = join(ROOT, 'docs', 'configuration.md');
    const sources: Array<[string, Map<string, string>]> = [
      ['README.md (Configuration)', rows(section)],
      ...(existsSync(docsPath) ? [['docs/configuration.md', rows(readFileSync(docsPath, 'utf8'))] as [string, Map<string, string>]] : []),
    ];
    const documented = sources.filter(([, table]) => table.size > 0);
    expect(documented.length).toBeGreaterThan(0);
    const problems: string[] = [];
    for (const s of SETTINGS) {
      const found = documented.filter(([, table]) => table.has(s.name));
      if (found.length === 0) problems.push(`${s.name} is documented in neither ${sources.map(([n]) => n).join(' nor ')}`);
      for (const [where, table] of found) {
        if (table.get(s.name) !== s.default) problems.push(`${where}: ${s.name} defaults to ${JSON.stringify(table.get(s.name))}, meshlens to ${JSON.stringify(s.default)}`);
      }
    }
    for (const [where, table] of documented) {
      for (const name of table.keys()) if (!SETTINGS.some((s) => s.name === name)) problems.push(`${where} documents ${name}, which meshlens does not read`);
    }
    expect(problems).toEqual([]);
  });
});

describe('ConfigError', () => {
  it('is one line for one problem, a heading and a line each for several', () => {
    expect(new ConfigError(['MESHLENS_A="x": bad']).message).toBe('invalid configuration: MESHLENS_A="x": bad');
    expect(new ConfigError(['MESHLENS_A="x": bad', 'MESHLENS_B="y": bad']).message).toBe('invalid configuration:\n  MESHLENS_A="x": bad\n  MESHLENS_B="y": bad');
  });
});
