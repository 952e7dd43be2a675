import { ConfigError, loadConfig } from './config';

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
