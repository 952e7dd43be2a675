import { describeBusContract } from './contract';
import { createMemoryBus } from './memory';
import { BusError } from './types';
import type { Bus, BusMessage, DeliveredMessage, Topic } from './types';

describeBusContract('memory', async () => createMemoryBus());

interface Item {
  k: string;
  seq: number;
}

let n = 0;
const topic = (): Topic<Item> => ({
  name: `memory-test-${++n}`,
  codec: {
    encode: () => {
      throw new Error('the memory bus must never encode');
    },
    decode: () => {
      throw new Error('the memory bus must never decode');
    },
  },
});
const items = (k: string, from: number, count: number): BusMessage<Item>[] =>
  Array.from({ length: count }, (_, i) => ({ key: k, value: { k, seq: from + i } }));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
async function until(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await sleep(5);
  }
}

describe('memory bus', () => {
  let bus: Bus;
  afterEach(async () => {
    await bus?.close();
  });

  it('rejects a publish that does not fit with a retriable BUS_FULL, and takes it once a consumer commits', async () => {
    bus = createMemoryBus({ capacity: 10 });
    const t = topic();
    await bus.publish(t, items('a', 0, 10));
    const full = bus.publish(t, items('a', 10, 1));
    await expect(full).rejects.toBeInstanceOf(BusError);
    await expect(full).rejects.toMatchObject({ code: 'BUS_FULL', retriable: true });

    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const got: number[] = [];
    await bus.subscribe(t, 'g', async (batch) => {
      await gate;
      got.push(...batch.map((m) => m.value.seq));
    });
    await sleep(20);
    // Delivered but not committed: still held.
    await expect(bus.publish(t, items('a', 10, 1))).rejects.toMatchObject({ code: 'BUS_FULL' });
    release();
    await until(() => got.length === 10);
    await sleep(5);
    await bus.publish(t, items('a', 10, 10));
    await until(() => got.length === 20);
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('is all-or-nothing: a publish that would overflow lands none of its messages', async () => {
    bus = createMemoryBus({ capacity: 10 });
    const t = topic();
    await bus.publish(t, items('a', 0, 7));
    await expect(bus.publish(t, items('b', 0, 4))).rejects.toMatchObject({ code: 'BUS_FULL', retriable: true });
    await bus.publish(t, items('c', 0, 3));
    const got: DeliveredMessage<Item>[] = [];
    await bus.subscribe(t, 'g', async (batch) => {
      got.push(...batch);
    });
    await until(() => got.length === 10);
    await sleep(20);
    expect(got.map((m) => m.key)).toEqual([...Array(7).fill('a'), 'c', 'c', 'c']);
    // Consecutive offsets: the refused publish took none.
    const offsets = got.map((m) => BigInt(m.offset));
    for (let i = 1; i < offsets.length; i++) expect((offsets[i] as bigint) - (offsets[i - 1] as bigint)).toBe(1n);
  });

  it('rejects non-retriably a single publish larger than the capacity (it could never fit)', async () => {
    bus = createMemoryBus({ capacity: 10 });
    await expect(bus.publish(topic(), items('a', 0, 11))).rejects.toMatchObject({ code: 'BUS_TOO_LARGE', retriable: false });
  });

  it('counts a slow group against the capacity even when another group keeps up', async () => {
    bus = createMemoryBus({ capacity: 5 });
    const t = topic();
    const fast: number[] = [];
    await bus.subscribe(t, 'fast', async (b) => {
      fast.push(...b.map((m) => m.value.seq));
    });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    await bus.subscribe(t, 'slow', () => gate);
    const first = bus.publish(t, items('a', 0, 5));
    await until(() => fast.length === 5);
    await expect(bus.publish(t, items('a', 5, 1))).rejects.toMatchObject({ code: 'BUS_FULL' });
    release();
    await first;
    await bus.publish(t, items('a', 5, 5));
    await until(() => fast.length === 10);
  });

  it('keeps messages for a group whose subscribers all stopped, and drops them once every group committed', async () => {
    bus = createMemoryBus({ capacity: 4 });
    const t = topic();
    const a = await bus.subscribe(t, 'a', async () => undefined);
    const bGot: number[] = [];
    const b = await bus.subscribe(t, 'b', async (batch) => {
      bGot.push(...batch.map((m) => m.value.seq));
    });
    await bus.publish(t, items('k', 0, 4));
    await until(() => bGot.length === 4);
    await a.stop();
    await b.stop();
    await sleep(10);
    // Both groups committed 0..3: all four slots are free again. Nobody consumes the next four yet, so their
    // publish stays unanswered (not stored) until both groups commit them.
    const held = bus.publish(t, items('k', 4, 4));
    await expect(bus.publish(t, items('k', 8, 1))).rejects.toMatchObject({ code: 'BUS_FULL' });
    const aGot: number[] = [];
    await bus.subscribe(t, 'a', async (batch) => {
      aGot.push(...batch.map((m) => m.value.seq));
    });
    await until(() => aGot.length === 4);
    await sleep(10);
    expect(aGot).toEqual([4, 5, 6, 7]);
    // Group b still holds 4..7, and the publish of 4..7 waits for it.
    await expect(bus.publish(t, items('k', 8, 1))).rejects.toMatchObject({ code: 'BUS_FULL' });
    await bus.close();
    await expect(held).rejects.toMatchObject({ code: 'BUS_UNAVAILABLE', retriable: true });
  });

  it('starts a late group at the oldest retained message', async () => {
    bus = createMemoryBus({ maxBatchSize: 2 });
    const t = topic();
    const first: number[] = [];
    await bus.subscribe(t, 'first', async (batch) => {
      first.push(...batch.map((m) => m.value.seq));
    });
    await bus.publish(t, items('k', 0, 6));
    expect(first).toHaveLength(6);
    const published = bus.publish(t, items('k', 6, 2));
    const late: number[] = [];
    await bus.subscribe(t, 'late', async (batch) => {
      late.push(...batch.map((m) => m.value.seq));
    });
    await published;
    await until(() => late.length >= 2 && first.length === 8);
    await sleep(20);
    expect(late).toEqual([6, 7]);
  });

  it('shares a group between two subscribers: each batch goes to one of them, in order, one at a time', async () => {
    bus = createMemoryBus({ maxBatchSize: 10 });
    const t = topic();
    const seen: { who: string; seqs: number[] }[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const handler = (who: string) => async (batch: DeliveredMessage<Item>[]) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await sleep(2);
      seen.push({ who, seqs: batch.map((m) => m.value.seq) });
      inFlight--;
    };
    await bus.subscribe(t, 'g', handler('one'));
    await bus.subscribe(t, 'g', handler('two'));
    await bus.publish(t, items('k', 0, 100));
    await until(() => seen.reduce((s, c) => s + c.seqs.length, 0) === 100);
    expect(seen.flatMap((c) => c.seqs)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(new Set(seen.map((c) => c.who))).toEqual(new Set(['one', 'two']));
    expect(maxInFlight).toBe(1);
  });

  it('never runs a handler inside publish', async () => {
    bus = createMemoryBus();
    const t = topic();
    let calls = 0;
    await bus.subscribe(t, 'g', async () => {
      calls++;
    });
    const p = bus.publish(t, items('k', 0, 1));
    expect(calls).toBe(0);
    await p;
    // The publish is answered once the group committed, so the handler ran, later than publish returned.
    expect(calls).toBe(1);
  });

  it('backs off exponentially between redeliveries, and reports the failures', async () => {
    const logged: string[] = [];
    const record = (level: string) => (_fields: object, message: string) => logged.push(`${level}: ${message}`);
    const logger = { error: record('error'), warn: record('warn'), info: record('info'), debug: record('debug') };
    bus = createMemoryBus({ retryInitialMs: 20, retryMaxMs: 80, logger });
    const t = topic();
    const at: number[] = [];
    await bus.subscribe(t, 'g', async () => {
      at.push(Date.now());
      if (at.length <= 4) throw new Error('not yet');
    });
    await bus.publish(t, items('k', 0, 1));
    await until(() => at.length === 5);
    const gaps = at.slice(1).map((x, i) => x - (at[i] as number));
    // 20, 40, 80, 80 (capped); timers may fire a little late, never early.
    expect(gaps[0]).toBeGreaterThanOrEqual(19);
    expect(gaps[1]).toBeGreaterThanOrEqual(39);
    expect(gaps[2]).toBeGreaterThanOrEqual(79);
    expect(gaps[3]).toBeGreaterThanOrEqual(79);
    expect(gaps[3]).toBeLessThan(160);
    expect(logged).toHaveLength(4);
    expect(logged[0]).toMatch(/^error: bus handler failed/);
  });

  it('close() cancels a pending redelivery and leaves no timer behind', async () => {
    bus = createMemoryBus({ retryInitialMs: 60_000 });
    const t = topic();
    let calls = 0;
    await bus.subscribe(t, 'g', async () => {
      calls++;
      throw new Error('fail');
    });
    const published = bus.publish(t, items('k', 0, 1));
    await until(() => calls === 1);
    await sleep(5);
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    await bus.close();
    const after = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    expect(after).toBe(before - 1);
    // Never stored: the publisher is told to retry.
    await expect(published).rejects.toMatchObject({ code: 'BUS_UNAVAILABLE', retriable: true });
  });

  it('loses nothing and duplicates nothing under concurrent publishers, a full bus and a slow consumer', async () => {
    // Each publisher waits for its publish to be committed, so at most 8 publishes of up to 13 are held: a
    // capacity below that makes the bound bite.
    bus = createMemoryBus({ capacity: 40, maxBatchSize: 50 });
    const t = topic();
    const publishers = 8;
    const perPublisher = 1_000;
    const got = new Map<string, number[]>();
    let total = 0;
    let batches = 0;
    await bus.subscribe(t, 'slow', async (batch) => {
      batches++;
      if (batches % 3 === 0) await sleep(1);
      // Fail now and then: redelivery must not duplicate or reorder what is committed.
      if (batches % 17 === 0) throw new Error('transient');
      for (const m of batch) {
        const list = got.get(m.key) ?? [];
        list.push(m.value.seq);
        got.set(m.key, list);
      }
      total += batch.length;
    });

    let fullRejections = 0;
    const publisher = async (p: number) => {
      const key = `svc-${p}`;
      let seq = 0;
      while (seq < perPublisher) {
        const size = Math.min(perPublisher - seq, 1 + ((seq * 7 + p) % 13));
        try {
          await bus.publish(t, items(key, seq, size));
          seq += size;
        } catch (err) {
          if (!(err instanceof BusError) || err.code !== 'BUS_FULL' || !err.retriable) throw err;
          fullRejections++;
          await sleep(1);
        }
      }
    };
    await Promise.all(Array.from({ length: publishers }, (_, p) => publisher(p)));
    await until(() => total >= publishers * perPublisher, 20_000);
    await sleep(20);

    expect(total).toBe(publishers * perPublisher);
    for (let p = 0; p < publishers; p++) {
      expect(got.get(`svc-${p}`)).toEqual(Array.from({ length: perPublisher }, (_, i) => i));
    }
    // The bound was actually exercised.
    expect(fullRejections).toBeGreaterThan(0);
  }, 30_000);
});

describe('memory bus batching and exact redelivery', () => {
  let bus: Bus;
  afterEach(async () => {
    await bus?.close();
  });

  it('waits for minSize (weighed by sizeOf) up to maxWaitMs, then delivers what it has in one batch', async () => {
    bus = createMemoryBus();
    const t = topic();
    const batches: number[][] = [];
    await bus.subscribe(t, 'g', async (batch) => void batches.push(batch.map((m) => m.value.seq)), {
      batch: { minSize: 1000, maxWaitMs: 150, sizeOf: () => 100 },
    });
    const started = Date.now();
    const first = bus.publish(t, items('a', 0, 1));
    await sleep(20);
    await bus.publish(t, items('a', 1, 2));
    await first;
    await until(() => batches.length > 0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(batches).toEqual([[0, 1, 2]]);

    // Enough weight delivers at once, without waiting: with a minute's maxWaitMs, the batch still comes within
    // until()'s 10 s.
    const heavy = topic();
    const full: number[][] = [];
    await bus.subscribe(heavy, 'g', async (batch) => void full.push(batch.map((m) => m.value.seq)), {
      batch: { minSize: 1000, maxWaitMs: 60_000, sizeOf: () => 100 },
    });
    await bus.publish(heavy, items('a', 3, 10));
    await until(() => full.length > 0);
    expect(full).toEqual([[3, 4, 5, 6, 7, 8, 9, 10, 11, 12]]);
  });

  it('redelivers exactly the failed batch even when more messages arrived meanwhile', async () => {
    bus = createMemoryBus({ retryInitialMs: 30 });
    const t = topic();
    const seen: number[][] = [];
    let fail = true;
    await bus.subscribe(t, 'g', async (batch) => {
      seen.push(batch.map((m) => m.value.seq));
      if (fail) {
        fail = false;
        // Not awaited: it is answered once this group commits it, after this very batch.
        void bus.publish(t, items('a', 3, 2));
        throw new Error('insert failed');
      }
    });
    await bus.publish(t, items('a', 0, 3));
    await until(() => seen.flat().includes(4));
    expect(seen).toEqual([[0, 1, 2], [0, 1, 2], [3, 4]]);
  });
});

describe('memory bus acknowledgements, bounds and offsets', () => {
  let bus: Bus;
  afterEach(async () => {
    await bus?.close();
  });

  it('answers a publish only once every group of the topic committed it', async () => {
    bus = createMemoryBus();
    const t = topic();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const fast: number[] = [];
    await bus.subscribe(t, 'fast', async (b) => void fast.push(...b.map((m) => m.value.seq)));
    await bus.subscribe(t, 'slow', () => gate);
    let answered = false;
    const published = bus.publish(t, items('k', 0, 3)).then(() => (answered = true));
    await until(() => fast.length === 3);
    await sleep(20);
    expect(answered).toBe(false);
    release();
    await published;
    expect(answered).toBe(true);
  });

  it('answers a publish to a topic nobody subscribed to at once, and keeps it for the first group', async () => {
    bus = createMemoryBus();
    const t = topic();
    await bus.publish(t, items('k', 0, 2));
    const got: number[] = [];
    await bus.subscribe(t, 'g', async (b) => void got.push(...b.map((m) => m.value.seq)));
    await until(() => got.length === 2);
  });

  it('on close, tells the publishes no in-flight batch covers to retry at once, and answers the in-flight one when it finishes', async () => {
    bus = createMemoryBus({ maxBatchSize: 1 });
    const t = topic();
    let entered!: () => void;
    const started = new Promise<void>((resolve) => (entered = resolve));
    await bus.subscribe(t, 'g', async () => {
      entered();
      await sleep(50);
    });
    const order: string[] = [];
    const first = bus.publish(t, items('k', 0, 1)).then(() => void order.push('first stored'));
    const second = bus.publish(t, items('k', 1, 1)).catch((err: unknown) => {
      order.push('second refused');
      return err;
    });
    await started;
    await bus.close();
    await first;
    expect(await second).toMatchObject({ code: 'BUS_UNAVAILABLE', retriable: true });
    // The refusal did not wait for the insert in flight (a store that hangs must not hold every sender).
    expect(order).toEqual(['second refused', 'first stored']);
  });

  it('gives every bus its own offsets, so insert tokens never repeat across processes', async () => {
    const offsetsOf = async (b: Bus): Promise<string[]> => {
      const t = topic();
      await b.publish(t, items('k', 0, 3));
      const got: string[] = [];
      await b.subscribe(t, 'g', async (batch) => void got.push(...batch.map((m) => m.offset)));
      await until(() => got.length === 3);
      await b.close();
      return got;
    };
    const first = await offsetsOf(createMemoryBus());
    bus = createMemoryBus();
    const second = await offsetsOf(bus);
    for (const o of [...first, ...second]) expect(o).toMatch(/^[1-9]\d{26}$/);
    expect(first.filter((o) => second.includes(o))).toEqual([]);
    // Within one bus they count up by one, as numbers and as strings.
    expect(BigInt(first[2] as string) - BigInt(first[0] as string)).toBe(2n);
    expect([...first].sort()).toEqual(first);
  });

  it('counts its capacity in records: a message weighs the length of its record array', async () => {
    bus = createMemoryBus({ capacity: 10 });
    const t: Topic<number[]> = { name: `memory-weight-${++n}`, codec: topic().codec as never };
    await bus.publish(t, [{ key: 'a', value: [1, 2, 3, 4, 5, 6] }]);
    await expect(bus.publish(t, [{ key: 'b', value: [1, 2, 3, 4, 5] }])).rejects.toMatchObject({ code: 'BUS_FULL', retriable: true });
    await bus.publish(t, [{ key: 'c', value: [1, 2, 3, 4] }]);
    await expect(bus.publish(t, [{ key: 'd', value: Array.from({ length: 11 }, (_, i) => i) }])).rejects.toMatchObject({
      code: 'BUS_TOO_LARGE',
      retriable: false,
    });
    expect(bus.pending()).toEqual([{ topic: t.name, records: 10, oldestMs: expect.any(Number) }]);
  });

  it('group-commits: delivers at once when idle, and what arrived during a batch in the next one, up to maxSize records', async () => {
    bus = createMemoryBus();
    const t: Topic<number[]> = { name: `memory-group-commit-${++n}`, codec: topic().codec as never };
    const batches: number[][] = [];
    let release!: () => void;
    let gate = new Promise<void>((resolve) => (release = resolve));
    await bus.subscribe(
      t,
      'g',
      async (batch) => {
        batches.push(batch.flatMap((m) => m.value));
        await gate;
      },
      { batch: { minSize: 1, maxWaitMs: 0, maxSize: 5, sizeOf: (v) => v.length } },
    );
    const all = [bus.publish(t, [{ key: 'k', value: [0] }])];
    await until(() => batches.length === 1);
    for (let i = 1; i <= 7; i++) all.push(bus.publish(t, [{ key: 'k', value: [i] }]));
    await sleep(10);
    expect(batches).toHaveLength(1);
    const opened = release;
    gate = Promise.resolve();
    opened();
    await Promise.all(all);
    expect(batches).toEqual([[0], [1, 2, 3, 4, 5], [6, 7]]);
  });

  it('reports what each topic holds and since when', async () => {
    bus = createMemoryBus();
    const t = topic();
    expect(bus.pending()).toEqual([]);
    const before = Date.now();
    await bus.publish(t, items('k', 0, 4));
    const [stats] = bus.pending();
    expect(stats).toMatchObject({ topic: t.name, records: 4 });
    expect(stats?.oldestMs).toBeGreaterThanOrEqual(before);
    await bus.subscribe(t, 'g', async () => undefined);
    await until(() => bus.pending()[0]?.records === 0);
    expect(bus.pending()[0]?.oldestMs).toBeUndefined();
  });
});
