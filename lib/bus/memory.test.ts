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
    expect(got.map((m) => m.offset)).toEqual(Array.from({ length: 10 }, (_, i) => String(i)));
  });

  it('rejects non-retriably a single publish larger than the capacity (it could never fit)', async () => {
    bus = createMemoryBus({ capacity: 10 });
    await expect(bus.publish(topic(), items('a', 0, 11))).rejects.toMatchObject({ code: 'BUS_PUBLISH_FAILED', retriable: false });
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
    await bus.publish(t, items('a', 0, 5));
    await until(() => fast.length === 5);
    await expect(bus.publish(t, items('a', 5, 1))).rejects.toMatchObject({ code: 'BUS_FULL' });
    release();
    await sleep(10);
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
    // Both groups committed 0..3: all four slots are free again.
    await bus.publish(t, items('k', 4, 4));
    await expect(bus.publish(t, items('k', 8, 1))).rejects.toMatchObject({ code: 'BUS_FULL' });
    const aGot: number[] = [];
    await bus.subscribe(t, 'a', async (batch) => {
      aGot.push(...batch.map((m) => m.value.seq));
    });
    await until(() => aGot.length === 4);
    await sleep(10);
    expect(aGot).toEqual([4, 5, 6, 7]);
    // Group b still holds 4..7.
    await expect(bus.publish(t, items('k', 8, 1))).rejects.toMatchObject({ code: 'BUS_FULL' });
  });

  it('starts a late group at the oldest retained message', async () => {
    bus = createMemoryBus({ maxBatchSize: 2 });
    const t = topic();
    const first: number[] = [];
    await bus.subscribe(t, 'first', async (batch) => {
      first.push(...batch.map((m) => m.value.seq));
    });
    await bus.publish(t, items('k', 0, 6));
    await until(() => first.length === 6);
    await sleep(5);
    await bus.publish(t, items('k', 6, 2));
    const late: number[] = [];
    await bus.subscribe(t, 'late', async (batch) => {
      late.push(...batch.map((m) => m.value.seq));
    });
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
    expect(calls).toBe(0);
    await until(() => calls === 1);
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
    await bus.publish(t, items('k', 0, 1));
    await until(() => calls === 1);
    await sleep(5);
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    await bus.close();
    const after = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    expect(after).toBe(before - 1);
  });

  it('loses nothing and duplicates nothing under concurrent publishers, a full bus and a slow consumer', async () => {
    bus = createMemoryBus({ capacity: 200, maxBatchSize: 50 });
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
    await bus.publish(t, items('a', 0, 1));
    await sleep(20);
    await bus.publish(t, items('a', 1, 2));
    await until(() => batches.length > 0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(batches).toEqual([[0, 1, 2]]);

    // Enough weight delivers at once, without waiting.
    const before = Date.now();
    await bus.publish(t, items('a', 3, 10));
    await until(() => batches.length > 1);
    expect(Date.now() - before).toBeLessThan(120);
    expect(batches[1]).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
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
        await bus.publish(t, items('a', 3, 2));
        throw new Error('insert failed');
      }
    });
    await bus.publish(t, items('a', 0, 3));
    await until(() => seen.flat().includes(4));
    expect(seen).toEqual([[0, 1, 2], [0, 1, 2], [3, 4]]);
  });
});
