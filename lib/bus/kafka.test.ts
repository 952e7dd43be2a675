import { createServer } from 'node:net';
import { KafkaJSConnectionError, KafkaJSError, KafkaJSNonRetriableError } from 'kafkajs';
import { describeBusContract, uniqueName } from './contract';
import { createEachBatch, createKafkaBus, toBusError } from './kafka';
import type { SubState, Undecodable } from './kafka';
import type { EachBatchPayload, KafkaMessage } from 'kafkajs';
import { emptyRequest } from '../model';
import type { MeshRequest } from '../model';
import type { CodecError } from './codec';
import { BusError, TOPICS } from './types';
import type { BatchHandler, DeadLetter, DeliveredMessage, Topic } from './types';

// kafkajs's own protocol error table and retrier, so the mapping is tested against the flags and the
// wrapping kafkajs really produces (deep paths: kafkajs does not export them).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { createErrorFromCode } = require('kafkajs/src/protocol/error') as { createErrorFromCode(code: number): Error & { type: string; retriable: boolean } };
// eslint-disable-next-line @typescript-eslint/no-require-imports
const createRetry = require('kafkajs/src/retry') as (opts: object) => (fn: () => Promise<never>) => Promise<never>;

const MESSAGE_TOO_LARGE = 10;
const NOT_ENOUGH_REPLICAS = 19;

/** What kafkajs's retrier rejects with once it gave up on `err` (it retries retriable errors only). */
async function afterKafkaRetries(err: Error): Promise<unknown> {
  return createRetry({ retries: 0, initialRetryTime: 1 })(async () => {
    throw err;
  }).catch((e: unknown) => e);
}

describe('kafka bus: kafkajs errors to BusError', () => {
  it('keeps a retriable protocol error retriable (BUS_UNAVAILABLE) with the error as cause', () => {
    const err = createErrorFromCode(NOT_ENOUGH_REPLICAS);
    expect(err.retriable).toBe(true);
    const mapped = toBusError(err, 'publish to t failed');
    expect(mapped).toBeInstanceOf(BusError);
    expect(mapped).toMatchObject({ code: 'BUS_UNAVAILABLE', retriable: true });
    expect(mapped.cause).toBe(err);
    expect(mapped.message).toContain('publish to t failed');
  });

  it('keeps a non-retriable protocol error non-retriable (BUS_PUBLISH_FAILED)', () => {
    const err = createErrorFromCode(MESSAGE_TOO_LARGE);
    expect(err.retriable).toBe(false);
    expect(toBusError(err, 'x')).toMatchObject({ code: 'BUS_PUBLISH_FAILED', retriable: false, cause: err });
  });

  it('treats "retries exhausted" on a retriable cause (broker down) as retriable', async () => {
    const exhausted = await afterKafkaRetries(new KafkaJSConnectionError('connect ECONNREFUSED 127.0.0.1:9092'));
    expect((exhausted as Error).name).toBe('KafkaJSNumberOfRetriesExceeded');
    expect((exhausted as { retriable: boolean }).retriable).toBe(false);
    expect(toBusError(exhausted, 'x')).toMatchObject({ code: 'BUS_UNAVAILABLE', retriable: true, cause: exhausted });

    const replicas = await afterKafkaRetries(createErrorFromCode(NOT_ENOUGH_REPLICAS));
    expect(toBusError(replicas, 'x')).toMatchObject({ code: 'BUS_UNAVAILABLE', retriable: true });
  });

  it('keeps a non-retriable error non-retriable after kafkajs wrapped it', async () => {
    const wrapped = await afterKafkaRetries(createErrorFromCode(MESSAGE_TOO_LARGE));
    expect((wrapped as Error).name).toBe('KafkaJSNonRetriableError');
    expect(toBusError(wrapped, 'x')).toMatchObject({ code: 'BUS_PUBLISH_FAILED', retriable: false });
    expect(toBusError(new KafkaJSNonRetriableError('Invalid topic'), 'x')).toMatchObject({ retriable: false });
  });

  it('maps kafkajs generic errors by their flag, anything else as not retriable, and passes BusErrors through', () => {
    expect(toBusError(new KafkaJSError('The producer is disconnected'), 'x')).toMatchObject({ code: 'BUS_UNAVAILABLE', retriable: true });
    expect(toBusError(new TypeError('boom'), 'x')).toMatchObject({ code: 'BUS_PUBLISH_FAILED', retriable: false });
    expect(toBusError('weird', 'x')).toMatchObject({ code: 'BUS_PUBLISH_FAILED', retriable: false, message: 'x: weird' });
    const own = new BusError('BUS_FULL', 'full', true);
    expect(toBusError(own, 'x')).toBe(own);
  });
});

describe('kafka bus without a reachable broker', () => {
  /** A port nothing listens on: bind an ephemeral one and release it. */
  async function closedPort(): Promise<number> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return port;
  }

  it('rejects publish retriably (BUS_UNAVAILABLE), is not ready, and rejects BUS_CLOSED after close', async () => {
    const port = await closedPort();
    const bus = createKafkaBus({
      brokers: [`127.0.0.1:${port}`],
      clientId: 'meshlens-test',
      kafka: { retry: { retries: 0, initialRetryTime: 10 }, connectionTimeout: 500 },
    });
    try {
      expect(bus.ready()).toBe(false);
      const published = bus.publish(TOPICS.requests, [{ key: 'reviews', value: [] }]);
      await expect(published).rejects.toBeInstanceOf(BusError);
      await expect(published).rejects.toMatchObject({ code: 'BUS_UNAVAILABLE', retriable: true });
      await expect(bus.connect()).rejects.toMatchObject({ code: 'BUS_UNAVAILABLE', retriable: true });
      expect(bus.ready()).toBe(false);
    } finally {
      await bus.close();
    }
    await expect(bus.publish(TOPICS.requests, [{ key: 'reviews', value: [] }])).rejects.toMatchObject({ code: 'BUS_CLOSED', retriable: false });
  });

  it('rejects a value its codec cannot encode, non-retriably, before touching the network', async () => {
    const bus = createKafkaBus({ brokers: ['127.0.0.1:1'], clientId: 'meshlens-test', kafka: { retry: { retries: 0 }, connectionTimeout: 200 } });
    try {
      const cyclic: { self?: unknown } = {};
      cyclic.self = cyclic;
      const topic: Topic<unknown> = { name: 'x', codec: TOPICS.requests.codec as Topic<unknown>['codec'] };
      await expect(bus.publish(topic, [{ key: 'k', value: cyclic }])).rejects.toMatchObject({ code: 'BUS_PUBLISH_FAILED', retriable: false });
    } finally {
      await bus.close();
    }
  });
});

/**
 * The eachBatch loop, driven through kafkajs's documented eachBatch callback interface (resolveOffset,
 * commitOffsetsIfNecessary, heartbeat, isRunning, isStale). What the broker does is not simulated here:
 * only what this loop asks kafkajs to do, and when.
 */
describe('kafka bus: the eachBatch loop', () => {
  interface Item {
    seq: number;
  }
  const topic: Topic<Item> = { name: 'meshlens.requests', codec: { encode: (v) => Buffer.from(JSON.stringify(v)), decode: (b) => JSON.parse(b.toString()) as Item } };
  const msg = (offset: number, value: string | null = JSON.stringify({ seq: offset })): KafkaMessage =>
    ({ key: Buffer.from('reviews'), value: value === null ? null : Buffer.from(value), timestamp: '1700000000000', attributes: 0, offset: String(offset), headers: {} }) as KafkaMessage;

  function run(opts: { messages: KafkaMessage[]; handler: BatchHandler<Item>; maxBatchSize?: number; deadLetter?: (t: string, p: number, bad: Undecodable[]) => Promise<void>; heartbeat?: () => Promise<void>; state?: SubState }) {
    const events: string[] = [];
    const state = opts.state ?? { stopping: false, wake: null };
    const eachBatch = createEachBatch({
      topic,
      group: 'g',
      handler: opts.handler,
      state,
      maxBatchSize: opts.maxBatchSize ?? 500,
      backoffMs: () => 5,
      deadLetter: opts.deadLetter ?? (async () => undefined),
    });
    const payload = {
      batch: { topic: topic.name, partition: 2, messages: opts.messages },
      resolveOffset: (o: string) => events.push(`resolve ${o}`),
      commitOffsetsIfNecessary: async (offsets?: { topics: { topic: string; partitions: { partition: number; offset: string }[] }[] }) => {
        const p = offsets?.topics[0]?.partitions[0];
        events.push(`commit ${offsets?.topics[0]?.topic}[${p?.partition}]=${p?.offset}`);
      },
      heartbeat: opts.heartbeat ?? (async () => undefined),
      isRunning: () => true,
      isStale: () => false,
      pause: () => () => undefined,
      uncommittedOffsets: () => ({ topics: [] }),
    } as unknown as EachBatchPayload;
    return { events, state, done: eachBatch(payload) };
  }

  it('cuts a kafkajs batch into handler batches and commits offset+1 after each success, then resolves', async () => {
    const messages = Array.from({ length: 1200 }, (_, i) => msg(100 + i));
    const r = run({
      messages,
      handler: async (batch) => {
        r.events.push(`handle ${batch[0]?.offset}..${batch[batch.length - 1]?.offset} (${batch.length})`);
      },
    });
    await r.done;
    expect(r.events).toEqual([
      'handle 100..599 (500)',
      'commit meshlens.requests[2]=600',
      'resolve 599',
      'handle 600..1099 (500)',
      'commit meshlens.requests[2]=1100',
      'resolve 1099',
      'handle 1100..1299 (200)',
      'commit meshlens.requests[2]=1300',
      'resolve 1299',
    ]);
  });

  it('redelivers the same messages until the handler succeeds, committing nothing before, heartbeating between', async () => {
    let calls = 0;
    let beats = 0;
    const seen: string[][] = [];
    const r = run({
      messages: [msg(0), msg(1), msg(2)],
      heartbeat: async () => {
        beats++;
      },
      handler: (batch: DeliveredMessage<Item>[]) => {
        seen.push(batch.map((m) => `${m.key}@${m.partition}/${m.offset}=${m.value.seq}`));
        calls++;
        if (calls === 1) throw new TypeError('sync throw'); // would be "unrecoverable" to kafkajs's retrier
        if (calls === 2) return Promise.reject(new Error('reject'));
        r.events.push('handled');
        return Promise.resolve();
      },
    });
    await r.done;
    expect(seen).toEqual([seen[0], seen[0], seen[0]]);
    expect(seen[0]).toEqual(['reviews@2/0=0', 'reviews@2/1=1', 'reviews@2/2=2']);
    expect(r.events).toEqual(['handled', 'commit meshlens.requests[2]=3', 'resolve 2']);
    expect(beats).toBeGreaterThanOrEqual(3);
  });

  it('gives the batch up uncommitted when the subscription stops during a backoff', async () => {
    const state: SubState = { stopping: false, wake: null };
    let calls = 0;
    const r = run({
      messages: [msg(0)],
      state,
      handler: async () => {
        calls++;
        if (calls === 3) {
          state.stopping = true;
          state.wake?.();
        }
        throw new Error('always');
      },
    });
    await r.done;
    expect(r.events).toEqual([]);
    expect(state.wake).toBeNull();
  });

  it('propagates a rebalance from the heartbeat without committing (kafkajs rejoins and refetches)', async () => {
    const rebalance = Object.assign(new KafkaJSError('The group is rebalancing'), { type: 'REBALANCE_IN_PROGRESS' });
    const r = run({
      messages: [msg(0)],
      heartbeat: async () => {
        throw rebalance;
      },
      handler: async () => {
        throw new Error('fails');
      },
    });
    await expect(r.done).rejects.toBe(rebalance);
    expect(r.events).toEqual([]);
  });

  it('delivers what decodes and dead-letters the rest once, before committing', async () => {
    const letters: string[] = [];
    let dlCalls = 0;
    let handled: string[] = [];
    let handlerCalls = 0;
    const r = run({
      messages: [msg(0), msg(1, 'not json'), msg(2, null), msg(3)],
      deadLetter: async (t, p, bad) => {
        dlCalls++;
        if (dlCalls === 1) throw new Error('dead-letter topic unavailable');
        letters.push(...bad.map((b) => `${t}[${p}]@${b.message.offset}`));
      },
      handler: async (batch) => {
        handlerCalls++;
        handled = batch.map((m) => m.offset);
        if (handlerCalls === 1) throw new Error('once');
      },
    });
    await r.done;
    expect(handled).toEqual(['0', '3']);
    expect(letters).toEqual(['meshlens.requests[2]@1', 'meshlens.requests[2]@2']);
    expect(dlCalls).toBe(2);
    expect(handlerCalls).toBe(2);
    expect(r.events).toEqual(['commit meshlens.requests[2]=4', 'resolve 3']);
  });
});

/**
 * The requests topic's own codec in the same loop: binary messages and the JSON ones an older meshlens wrote
 * (an upgrade in place) are delivered; an unknown format version, a truncated message or a JSON object are
 * dead-lettered with the codec's reason.
 */
describe('kafka bus: the eachBatch loop with the binary record codec', () => {
  it('delivers binary and legacy JSON messages and dead-letters what the codec refuses', async () => {
    const request = (id: string): MeshRequest => ({ ...emptyRequest(), startTimeMs: 1_700_000_000_123.5, requestId: id, responseCode: 503, attributes: { ü: 'ß' } });
    const binary = TOPICS.requests.codec.encode([request('a'), request('b')]);
    const future = Buffer.from(binary);
    future[0] = 2;
    const values = [binary, Buffer.from(JSON.stringify([request('c')])), future, binary.subarray(0, binary.length - 1), Buffer.from('{"n":1}')];
    const messages = values.map((value, offset) => ({ key: Buffer.from('reviews'), value, timestamp: '1700000000000', attributes: 0, offset: String(offset), headers: {} }) as KafkaMessage);
    const handled: DeliveredMessage<MeshRequest[]>[] = [];
    const bad: Undecodable[] = [];
    const events: string[] = [];
    const eachBatch = createEachBatch({
      topic: TOPICS.requests,
      group: 'g',
      handler: async (batch) => {
        handled.push(...batch);
      },
      state: { stopping: false, wake: null },
      maxBatchSize: 500,
      backoffMs: () => 5,
      deadLetter: async (_t, _p, b) => {
        bad.push(...b);
      },
    });
    await eachBatch({
      batch: { topic: TOPICS.requests.name, partition: 0, messages },
      resolveOffset: (o: string) => events.push(`resolve ${o}`),
      commitOffsetsIfNecessary: async () => {
        events.push('commit');
      },
      heartbeat: async () => undefined,
      isRunning: () => true,
      isStale: () => false,
    } as unknown as EachBatchPayload);

    expect(handled.map((m) => m.offset)).toEqual(['0', '1']);
    expect(handled[0]?.value).toEqual([request('a'), request('b')]);
    expect(handled[1]?.value).toEqual([request('c')]);
    expect(bad.map((b) => [b.message.offset, (b.error as CodecError).code])).toEqual([
      ['2', 'CODEC_UNKNOWN_VERSION'],
      ['3', 'CODEC_MALFORMED'],
      ['4', 'CODEC_UNKNOWN_VERSION'],
    ]);
    expect((bad[0]?.error as Error).message).toContain('unknown bus message format version 2');
    expect(events).toEqual(['commit', 'resolve 4']);
  });
});

const brokers = process.env.MESHLENS_TEST_KAFKA_BROKERS?.split(',').map((b) => b.trim()).filter(Boolean) ?? [];

if (brokers.length > 0) {
  const makeBus = async () => {
    const bus = createKafkaBus({ brokers, clientId: 'meshlens-test', partitions: 3 });
    await bus.connect();
    return bus;
  };
  describeBusContract(`kafka (${brokers.join(',')})`, makeBus, { timeoutMs: 90_000 });

  describe('kafka bus: undecodable messages', () => {
    it('delivers what decodes and forwards the rest, raw, to the dead-letter topic', async () => {
      const undecodable: string[] = [];
      const bus = createKafkaBus({ brokers, clientId: 'meshlens-test', partitions: 3, onUndecodable: (e) => undecodable.push(`${e.action}@${e.offset}`) });
      try {
        await bus.connect();
        const name = uniqueName('undecodable');
        const raw: Topic<string> = { name, codec: { encode: (s) => Buffer.from(s), decode: (b) => b.toString() } };
        const json: Topic<{ n: number }> = { name, codec: { encode: (v) => Buffer.from(JSON.stringify(v)), decode: (b) => JSON.parse(b.toString()) as { n: number } } };
        await bus.publish(raw, [
          { key: 'k', value: '{"n":1}' },
          { key: 'k', value: 'not json' },
          { key: 'k', value: '{"n":3}' },
        ]);
        const got: DeliveredMessage<{ n: number }>[] = [];
        await bus.subscribe(json, uniqueName('group'), async (batch) => {
          got.push(...batch);
        });
        const letters: DeadLetter[] = [];
        await bus.subscribe(TOPICS.deadLetters, uniqueName('group'), async (batch) => {
          for (const m of batch) letters.push(...m.value.filter((l) => l.receiver === `bus:${name}`));
        });
        const deadline = Date.now() + 60_000;
        while ((got.length < 2 || letters.length < 1) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        expect(got.map((m) => m.value.n)).toEqual([1, 3]);
        expect(letters).toHaveLength(1);
        expect(Buffer.from(letters[0]?.rawBase64 ?? '', 'base64').toString()).toBe('not json');
        expect(undecodable).toHaveLength(1);
      } finally {
        await bus.close();
      }
    }, 90_000);

    it('carries records in the binary codec and still reads the JSON an older version wrote', async () => {
      const bus = await makeBus();
      try {
        const name = uniqueName('records');
        const requests: Topic<MeshRequest[]> = { name, codec: TOPICS.requests.codec };
        const raw: Topic<string> = { name, codec: { encode: (s) => Buffer.from(s), decode: (b) => b.toString() } };
        const old = { ...emptyRequest(), requestId: 'old', attributes: {} };
        const now = { ...emptyRequest(), requestId: 'new', durationMs: 0.1, attributes: { k: 'é' } };
        await bus.publish(raw, [{ key: 'k', value: JSON.stringify([old]) }]);
        await bus.publish(requests, [{ key: 'k', value: [now] }]);
        const got: MeshRequest[] = [];
        await bus.subscribe(requests, uniqueName('group'), async (batch) => {
          for (const m of batch) got.push(...m.value);
        });
        const deadline = Date.now() + 60_000;
        while (got.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        expect(got).toEqual([old, now]);
      } finally {
        await bus.close();
      }
    }, 90_000);
  });
} else {
  // Loud on purpose (CONTRACT.md §1: tests that need what npm cannot install say so when they skip).
  console.warn(
    'lib/bus/kafka.test.ts: MESHLENS_TEST_KAFKA_BROKERS is not set, so the Bus contract suite is NOT run against Kafka. ' +
      'Set it to a broker list (e.g. the compose stack: MESHLENS_TEST_KAFKA_BROKERS=localhost:9092) to run it.',
  );
  describe.skip('Bus contract: kafka (skipped: MESHLENS_TEST_KAFKA_BROKERS is not set)', () => {
    it('runs the Bus contract suite against a real broker', () => undefined);
  });
}
