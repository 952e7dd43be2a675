/**
 * The one Bus contract suite (DESIGN.md "Real components in tests"): every implementation runs it, the
 * memory bus always, kafka against a real broker when one is configured. Each test makes its own bus and
 * uses topic and group names no other test (or earlier run against the same broker) has used.
 *
 * What it pins down:
 * - keyed messages arrive in publish order per key, with their key, partition and offset; messages
 *   published before a group subscribed are delivered to it;
 * - values round-trip deep-equal (by reference in memory, through the topic's codec on kafka);
 * - commit after success: a rejecting (or throwing) handler gets the same messages again, and nothing
 *   published after them is delivered before them;
 * - at-least-once across stop/re-subscribe: what a group committed is not redelivered, what was handed to
 *   a handler but not committed is redelivered to the group's next subscriber;
 * - two groups each get every message;
 * - a large publish arrives whole and in order, in handler batches of at most `maxBatchSize`;
 * - `close()` waits for the in-flight handler; publish and subscribe after close reject with a
 *   non-retriable `BUS_CLOSED`.
 *
 * When `publish` resolves differs (memory: once every group committed; kafka: once the brokers acked), so the
 * tests never await a publish that a group they have not yet let commit would hold up.
 */
import { BusError } from './types';
import type { Bus, Codec, DeliveredMessage, Subscription, Topic } from './types';

export interface BusContractOptions {
  /** Per-test timeout; a real broker needs seconds to form a consumer group. Default 30 s. */
  timeoutMs?: number;
  /** The implementation's largest handler batch. Default 500 (both implementations' default). */
  maxBatchSize?: number;
}

/** What the tests publish: which key it was sent with and its place in the sequence for that key. */
interface Item {
  k: string;
  seq: number;
  note?: string;
}

const json = <T>(): Codec<T> => ({
  encode: (value) => Buffer.from(JSON.stringify(value)),
  decode: (bytes) => JSON.parse(bytes.toString('utf8')) as T,
});

let counter = 0;
const runId = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
/** Unique per test and per run, so a real broker can be reused; only characters Kafka allows in topic names. */
export function uniqueName(prefix: string): string {
  counter++;
  return `meshlens.test.${prefix}.${runId}.${counter}`;
}

function testTopic<T = Item>(): Topic<T> {
  return { name: uniqueName('topic'), codec: json<T>() };
}

function items(k: string, from: number, count: number): { key: string; value: Item }[] {
  return Array.from({ length: count }, (_, i) => ({ key: k, value: { k, seq: from + i } }));
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function until(what: string, predicate: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

export function describeBusContract(name: string, makeBus: () => Promise<Bus>, options: BusContractOptions = {}): void {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const maxBatchSize = options.maxBatchSize ?? 500;
  // Waits inside a test leave room for the test's own timeout to report the useful message.
  const waitMs = Math.floor(timeoutMs * 0.8);

  describe(`Bus contract: ${name}`, () => {
    let bus: Bus;
    const subs: Subscription[] = [];
    const subscribe = async <T>(topic: Topic<T>, group: string, handler: (m: DeliveredMessage<T>[]) => Promise<void>) => {
      const s = await bus.subscribe(topic, group, handler);
      subs.push(s);
      return s;
    };

    beforeEach(async () => {
      bus = await makeBus();
    }, timeoutMs);

    afterEach(async () => {
      for (const s of subs.splice(0)) await s.stop();
      await bus.close();
    }, timeoutMs);

    it('delivers keyed messages in publish order per key, including those published before the group subscribed', async () => {
      const topic = testTopic();
      const keys = ['reviews', 'ratings', 'details'];
      // Interleave keys inside each publish, half before and half after the subscription.
      const publishRound = async (from: number) => {
        const msgs = [];
        for (let i = 0; i < 10; i++) for (const k of keys) msgs.push(...items(k, from + i, 1));
        await bus.publish(topic, msgs);
      };
      await publishRound(0);
      await publishRound(10);

      const got: DeliveredMessage<Item>[] = [];
      await subscribe(topic, uniqueName('group'), async (batch) => {
        got.push(...batch);
      });
      await publishRound(20);
      await until('90 messages', () => got.length >= 90, waitMs);
      await sleep(50);

      expect(got).toHaveLength(90);
      for (const k of keys) {
        const seqs = got.filter((m) => m.key === k).map((m) => m.value.seq);
        expect(seqs).toEqual(Array.from({ length: 30 }, (_, i) => i));
      }
      for (const m of got) {
        expect(m.key).toBe(m.value.k);
        expect(Number.isInteger(m.partition)).toBe(true);
        expect(m.offset).toMatch(/^\d+$/);
      }
      // Offsets are unique per partition and increase in delivery order within it.
      const byPartition = new Map<number, bigint[]>();
      for (const m of got) byPartition.set(m.partition, [...(byPartition.get(m.partition) ?? []), BigInt(m.offset)]);
      for (const offsets of byPartition.values()) {
        for (let i = 1; i < offsets.length; i++) expect((offsets[i] as bigint) > (offsets[i - 1] as bigint)).toBe(true);
      }
    }, timeoutMs);

    it('round-trips values deep-equal', async () => {
      interface Rich {
        id: string;
        n: number;
        f: number;
        neg: number;
        big: number;
        ok: boolean;
        none: null;
        text: string;
        list: (number | string | { nested: string[] })[];
        obj: Record<string, { a: number[]; b: string }>;
      }
      const topic = testTopic<Rich[]>();
      const value: Rich[] = [
        {
          id: 'req-1',
          n: 200,
          f: 0.125,
          neg: -3,
          big: Number.MAX_SAFE_INTEGER,
          ok: true,
          none: null,
          text: 'outbound|9080|v2|reviews.default.svc.cluster.local — "quoted" \\ ünïcødé 🚀\n',
          list: [1, 'two', { nested: ['x', ''] }],
          obj: { inner: { a: [], b: '' } },
        },
        { id: 'req-2', n: 0, f: 1e-9, neg: 0, big: 1e21, ok: false, none: null, text: '', list: [], obj: {} },
      ];
      await bus.publish(topic, [{ key: 'reviews', value }]);
      const got: DeliveredMessage<Rich[]>[] = [];
      await subscribe(topic, uniqueName('group'), async (batch) => {
        got.push(...batch);
      });
      await until('1 message', () => got.length >= 1, waitMs);
      expect(got).toHaveLength(1);
      expect(got[0]?.key).toBe('reviews');
      expect(got[0]?.value).toEqual(value);
    }, timeoutMs);

    it('commits only after the handler succeeded: a failing batch is redelivered, nothing overtakes it', async () => {
      const topic = testTopic();
      // One key: one partition on kafka, so "later" is well defined.
      await bus.publish(topic, items('reviews', 0, 10));

      const calls: { seqs: number[]; outcome: 'threw' | 'rejected' | 'ok' }[] = [];
      let next = 0;
      const done: number[] = [];
      const violations: string[] = [];
      await subscribe(topic, uniqueName('group'), (batch) => {
        const seqs = batch.map((m) => m.value.seq);
        // Every call starts right after the last committed message and is contiguous. (Recorded, not
        // asserted here: a throwing expect would itself be a handler failure and loop.)
        if (seqs.some((s, i) => s !== next + i)) violations.push(`expected ${next}.. got ${seqs.join(',')}`);
        if (calls.length === 0) {
          calls.push({ seqs, outcome: 'threw' });
          throw new Error('handler throws synchronously');
        }
        if (calls.length === 1) {
          calls.push({ seqs, outcome: 'rejected' });
          return Promise.reject(new Error('handler rejects'));
        }
        calls.push({ seqs, outcome: 'ok' });
        next += seqs.length;
        done.push(...seqs);
        return Promise.resolve();
      });
      // Published while the first batch is failing: must come after 0..9.
      await bus.publish(topic, items('reviews', 10, 5));

      await until('15 messages handled', () => done.length >= 15, waitMs);
      await sleep(50);
      expect(violations).toEqual([]);
      expect(done).toEqual(Array.from({ length: 15 }, (_, i) => i));
      expect(calls[0]?.outcome).toBe('threw');
      expect(calls[1]?.outcome).toBe('rejected');
      expect(calls[1]?.seqs).toEqual(calls[0]?.seqs);
      expect(calls[2]?.seqs).toEqual(calls[0]?.seqs);
    }, timeoutMs);

    it('is at-least-once across stop and re-subscribe: committed messages are not redelivered, uncommitted ones are', async () => {
      const topic = testTopic();
      const group = uniqueName('group');
      await bus.publish(topic, items('reviews', 0, 5));

      const first: number[] = [];
      let failing = false;
      const a = await subscribe(topic, group, async (batch) => {
        first.push(...batch.map((m) => m.value.seq));
        if (failing) throw new Error('handled but not committed');
      });
      await until('the first 5 messages', () => first.length >= 5, waitMs);
      await sleep(50);
      failing = true;
      const published = bus.publish(topic, items('reviews', 5, 5));
      await until('the next 5 messages handed to the first subscriber', () => first.length >= 10, waitMs);
      await a.stop();
      expect(first.slice(0, 10)).toEqual(Array.from({ length: 10 }, (_, i) => i));

      const second: number[] = [];
      await subscribe(topic, group, async (batch) => {
        second.push(...batch.map((m) => m.value.seq));
      });
      await until('the uncommitted 5 messages redelivered', () => second.length >= 5, waitMs);
      await published;
      await sleep(200);
      expect(second).toEqual([5, 6, 7, 8, 9]);
    }, timeoutMs);

    it('stop() waits for the in-flight handler and commits what it finished', async () => {
      const topic = testTopic();
      const group = uniqueName('group');
      await bus.publish(topic, items('reviews', 0, 3));
      let entered = false;
      let finished = false;
      const a = await subscribe(topic, group, async () => {
        entered = true;
        await sleep(200);
        finished = true;
      });
      await until('the handler to start', () => entered, waitMs);
      await a.stop();
      expect(finished).toBe(true);

      const published = bus.publish(topic, items('reviews', 3, 1));
      const again: number[] = [];
      await subscribe(topic, group, async (batch) => {
        again.push(...batch.map((m) => m.value.seq));
      });
      await until('the message published after the stop', () => again.length >= 1, waitMs);
      await published;
      await sleep(200);
      expect(again).toEqual([3]);
    }, timeoutMs);

    it('gives every message to each of two groups', async () => {
      const topic = testTopic();
      await bus.publish(topic, [...items('reviews', 0, 10), ...items('ratings', 0, 10)]);
      const g1: DeliveredMessage<Item>[] = [];
      const g2: DeliveredMessage<Item>[] = [];
      await subscribe(topic, uniqueName('group'), async (batch) => {
        g1.push(...batch);
      });
      await subscribe(topic, uniqueName('group'), async (batch) => {
        g2.push(...batch);
      });
      await until('20 messages in both groups', () => g1.length >= 20 && g2.length >= 20, waitMs);
      await sleep(50);
      for (const got of [g1, g2]) {
        expect(got).toHaveLength(20);
        for (const k of ['reviews', 'ratings']) {
          expect(got.filter((m) => m.key === k).map((m) => m.value.seq)).toEqual(Array.from({ length: 10 }, (_, i) => i));
        }
      }
    }, timeoutMs);

    it('delivers a large publish whole and in order, in bounded batches', async () => {
      const topic = testTopic();
      const n = 5_000;
      await bus.publish(topic, items('productpage', 0, n));
      const seqs: number[] = [];
      let largest = 0;
      let calls = 0;
      await subscribe(topic, uniqueName('group'), async (batch) => {
        calls++;
        largest = Math.max(largest, batch.length);
        for (const m of batch) seqs.push(m.value.seq);
      });
      await until(`${n} messages`, () => seqs.length >= n, waitMs);
      await sleep(50);
      expect(seqs).toEqual(Array.from({ length: n }, (_, i) => i));
      expect(largest).toBeLessThanOrEqual(maxBatchSize);
      expect(calls).toBeGreaterThanOrEqual(Math.ceil(n / maxBatchSize));
    }, timeoutMs);

    it('resolves an empty publish without delivering anything', async () => {
      const topic = testTopic();
      await bus.publish(topic, []);
      await bus.publish(topic, items('reviews', 0, 1));
      const got: number[] = [];
      await subscribe(topic, uniqueName('group'), async (batch) => {
        got.push(...batch.map((m) => m.value.seq));
      });
      await until('1 message', () => got.length >= 1, waitMs);
      await sleep(50);
      expect(got).toEqual([0]);
    }, timeoutMs);

    it('close() waits for the in-flight handler; publish and subscribe after close reject non-retriably', async () => {
      const topic = testTopic();
      await bus.publish(topic, items('reviews', 0, 1));
      let entered = false;
      let finished = false;
      await subscribe(topic, uniqueName('group'), async () => {
        entered = true;
        await sleep(200);
        finished = true;
      });
      await until('the handler to start', () => entered, waitMs);
      await bus.close();
      expect(finished).toBe(true);
      expect(bus.ready()).toBe(false);

      const published = bus.publish(topic, items('reviews', 1, 1));
      await expect(published).rejects.toBeInstanceOf(BusError);
      await expect(published).rejects.toMatchObject({ code: 'BUS_CLOSED', retriable: false });
      await expect(bus.subscribe(topic, uniqueName('group'), async () => undefined)).rejects.toMatchObject({
        code: 'BUS_CLOSED',
        retriable: false,
      });
      // close() is idempotent.
      await bus.close();
    }, timeoutMs);
  });
}
