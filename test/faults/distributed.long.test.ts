/**
 * Distributed mode end to end: `meshlens ingest` and `meshlens aggregator` as two processes, over real HTTP,
 * with a bus between them and ClickHouse behind the aggregator, and what operators do to them: kill -9 the
 * aggregator under load and start it again, SIGTERM the ingest under load.
 *
 * What runs between the processes depends on what this machine has:
 * - `MESHLENS_TEST_KAFKA_BROKERS` set: the real CLI (`node bin/meshlens.js ingest|aggregator`) on that Kafka.
 *   Otherwise the same targets run on the relay bus (test/support/relay-bus.ts): this test process holds the
 *   memory bus's consumer groups and offsets, and every message crosses the process boundary through its
 *   topic's codec, as it would cross Kafka.
 * - `MESHLENS_TEST_CLICKHOUSE_URL` set: the aggregator stores in a fresh database on that server. Otherwise in
 *   embedded ClickHouse (chDB) in its data directory, which survives its restarts.
 *
 * Against the compose stack's infrastructure (docs/deployment-compose.md):
 *   docker compose up -d kafka-init clickhouse
 *   MESHLENS_TEST_KAFKA_BROKERS=localhost:9092 MESHLENS_TEST_CLICKHOUSE_URL=http://meshlens:meshlens@localhost:8123 \
 *     npx jest --runInBand test/faults/distributed.long.test.ts
 * (stop the stack's own meshlens services first: an aggregator of the same consumer group would take partitions).
 */
import { fork } from 'node:child_process';
import { join } from 'node:path';
import { createMemoryBus } from '../../lib/bus';
import { serveBus } from '../support/relay-bus';
import {
  currentBody,
  deliverBody,
  expectObserved,
  LINES_PER_BODY,
  periodOf,
  request,
  ROOT,
  scrape,
  sendOnce,
  settle,
  sleep,
  startMeshlens,
  storedRequests,
  sum,
  Tally,
  tempDir,
  useFaultHarness,
  type Meshlens,
  type StartOptions,
  type Target,
} from './support';

useFaultHarness();
jest.setTimeout(240_000);

const KAFKA = process.env.MESHLENS_TEST_KAFKA_BROKERS?.trim() || undefined;
const CLICKHOUSE = process.env.MESHLENS_TEST_CLICKHOUSE_URL?.trim() || undefined;
const RUN = `${process.pid.toString(36)}${Date.now().toString(36)}`;
/** A fresh database per run on a shared server, so earlier runs' rows never count. */
const clickhouseUrl = CLICKHOUSE === undefined ? undefined : (() => {
  const u = new URL(CLICKHOUSE);
  u.pathname = `/meshlens_dist_${RUN}`;
  return u.toString();
})();
/** With a Kafka a kill -9'd consumer keeps its partitions until its session times out (kafkajs: 30 s). */
const SETTLE_MS = KAFKA ? 150_000 : 60_000;

process.stderr.write(
  `[distributed] bus: ${KAFKA ? `Kafka at ${KAFKA}` : 'relay bus in the test process (MESHLENS_TEST_KAFKA_BROKERS is not set)'}; ` +
    `store: ${CLICKHOUSE ? 'the ClickHouse server at MESHLENS_TEST_CLICKHOUSE_URL' : 'embedded chDB (MESHLENS_TEST_CLICKHOUSE_URL is not set)'}\n`,
);

const broker = KAFKA ? undefined : createMemoryBus();
afterAll(async () => {
  await broker?.close();
});

function start(target: Target, opts: StartOptions = {}): Promise<Meshlens> {
  const env: Record<string, string> = { MESHLENS_SHUTDOWN_TIMEOUT: '20s', ...opts.env };
  if (KAFKA) env.MESHLENS_KAFKA_BROKERS = KAFKA;
  if (clickhouseUrl && target === 'aggregator') env.MESHLENS_CLICKHOUSE_URL = clickhouseUrl;
  const launch: StartOptions['launch'] = broker
    ? (childEnv, t) => {
        const child = fork(join(ROOT, 'test', 'support', 'relay-child.js'), [t], {
          cwd: ROOT,
          env: childEnv,
          execArgv: [],
          stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
          serialization: 'advanced',
        });
        serveBus(child, broker);
        return child;
      }
    : undefined;
  return startMeshlens({ ...opts, target, env, launch, scope: 'file', startTimeoutMs: 90_000 });
}

describe(`distributed: ingest process → ${KAFKA ? 'Kafka' : 'relay bus'} → aggregator process → ${CLICKHOUSE ? 'ClickHouse server' : 'chDB'}`, () => {
  let aggregatorDir: string;
  let aggregator: Meshlens;
  let ingest: Meshlens;

  beforeAll(async () => {
    aggregatorDir = tempDir('meshlens-dist-aggregator-');
    aggregator = await start('aggregator', { dataDir: aggregatorDir });
    ingest = await start('ingest');
  }, 200_000);

  it('each target serves its own part: receivers on the ingest, the query API on the aggregator, and the aggregator lists both for Prometheus', async () => {
    expect(ingest.stdout()).toMatch(/^meshlens ingest ready/m);
    expect(ingest.stdout()).toMatch(/\/v1\/accesslogs/);
    expect(aggregator.stdout()).toMatch(/^meshlens aggregator ready/m);
    expect(aggregator.ports.otlpGrpc).toBe(0);
    // The ingest has no query API; the aggregator no receivers.
    expect((await request(`${ingest.base}/api/v1/subsets`)).status).toBe(404);
    expect((await request(`${aggregator.base}/v1/accesslogs`, { body: 'x\n', headers: { 'content-type': 'text/plain' } })).status).toBe(404);

    // Heartbeats cross the bus: the aggregator's HTTP service discovery lists the ingest process.
    type Group = { targets: string[]; labels: Record<string, string> };
    const listed = async (): Promise<string[]> => {
      const res = await request(`${aggregator.base}/api/v1/prometheus/targets`);
      return res
        .json<Group[]>()
        .filter((g) => g.labels.meshlens_source === 'membership')
        .map((g) => `${g.labels.meshlens_target} ${g.targets[0]}`)
        .sort();
    };
    const want = [`aggregator 127.0.0.1:${aggregator.ports.http}`, `ingest 127.0.0.1:${ingest.ports.http}`];
    let seen = await listed();
    for (const deadline = Date.now() + 30_000; !want.every((w) => seen.includes(w)) && Date.now() < deadline; seen = await listed()) await sleep(250);
    expect(seen).toEqual(expect.arrayContaining(want));
  });

  it('what the ingest acknowledges, the aggregator stores and counts, exactly once', async () => {
    const service = `steady${RUN}`;
    const tally = new Tally();
    await Promise.all([0, 1, 2, 3].map(() => deliverBody(ingest, currentBody(tally, LINES_PER_BODY, 'dist', service), tally)));
    expect(tally.acknowledged).toBe(4 * LINES_PER_BODY);

    const period = periodOf(tally.times);
    const stored = await settle(() => storedRequests(aggregator, service, period), tally.acknowledged, SETTLE_MS);
    const ingested = sum(await scrape(ingest), 'meshlens_ingest_records_total', { outcome: 'accepted' });
    const counted = sum(await scrape(aggregator), 'meshlens_requests_total', { destination_service_name: service });
    expectObserved({ stored, counted }, { stored: tally.acknowledged, counted: tally.acknowledged }, { ingested, statuses: tally.statuses(), ingest: ingest.logs(), aggregator: aggregator.logs() });
    // The ingest counts what it took in; the aggregator's metrics count what it consumed.
    expect(ingested).toBeGreaterThanOrEqual(tally.acknowledged);
  });

  it('kill -9 of the aggregator under load, then a restart: every acknowledged line is stored once', async () => {
    const service = `crash${RUN}`;
    const tally = new Tally();
    let firstAck!: () => void;
    const acked = new Promise<void>((r) => (firstAck = r));
    const senders = [0, 1, 2].map(async () => {
      for (let b = 0; b < 6; b++) {
        await deliverBody(ingest, currentBody(tally, LINES_PER_BODY, 'dist', service), tally);
        firstAck();
      }
    });
    await acked;
    const killedAt = tally.acknowledged;
    await aggregator.kill9();
    await sleep(1_000);
    aggregator = await start('aggregator', { dataDir: aggregatorDir });
    await Promise.all(senders);
    expect(tally.acknowledged).toBe(3 * 6 * LINES_PER_BODY);

    const stored = await settle(() => storedRequests(aggregator, service, periodOf(tally.times)), tally.acknowledged, SETTLE_MS);
    expectObserved(stored, tally.acknowledged, { killedAt, statuses: tally.statuses(), ingest: ingest.logs(), aggregator: aggregator.logs() });
  });

  it('SIGTERM to the ingest under load: it exits 0, and every line it acknowledged is stored once', async () => {
    const service = `term${RUN}`;
    const tally = new Tally();
    let firstAck!: () => void;
    const acked = new Promise<void>((r) => (firstAck = r));
    // Senders that stop at the first answer that is not an acknowledgement: the ingest is going away.
    const senders = [0, 1, 2, 3].map(async () => {
      for (let b = 0; b < 20; b++) {
        const o = await sendOnce(ingest, currentBody(tally, LINES_PER_BODY, 'dist', service), tally);
        if (o.status !== 200) return;
        firstAck();
      }
    });
    await acked;
    const exit = await ingest.stop('SIGTERM');
    await Promise.all(senders);
    expectObserved({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, ingest.logs());
    // Refused or told to retry, never an error: an unanswered line is the sender's to send again.
    for (const status of Object.keys(tally.statuses())) expect(['200', '503', 'ECONNREFUSED', 'ECONNRESET']).toContain(status);
    expect(tally.acknowledged).toBeGreaterThan(0);

    const stored = await settle(() => storedRequests(aggregator, service, periodOf(tally.times)), tally.acknowledged, SETTLE_MS);
    expectObserved(stored, tally.acknowledged, { statuses: tally.statuses(), ingest: ingest.logs(), aggregator: aggregator.logs() });
  });
});
