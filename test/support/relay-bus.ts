/**
 * A Bus across processes for the distributed end-to-end test when no Kafka broker is at hand
 * (test/distributed.e2e.test.ts): `meshlens ingest`, `meshlens aggregator` and `meshlens tracer` run as separate
 * child processes, and the test process plays the broker. It holds one real memory bus (lib/bus/memory.ts:
 * consumer groups, committed offsets, redelivery of what a consumer did not commit) and relays to it over each
 * child's IPC channel.
 *
 * What crosses a process boundary is what Kafka would carry: every value is encoded with its topic's codec on
 * the way out and decoded on the way in (the binary record codec of lib/bus/codec.ts), keys are the
 * partitioning keys, and a delivery names its partition and offset, from which the aggregator derives its
 * insert-dedup tokens. A consumer process that dies (kill -9) leaves its delivery uncommitted: the relay fails
 * it, and the memory bus hands the same messages, with the same offsets, to the next subscriber of the group.
 *
 * Unlike Kafka, a publish resolves when every consuming group has committed (the memory bus's end-to-end
 * acknowledgement), not when a broker has written it: an ingest's acknowledgement here means "stored".
 */
import type { ChildProcess } from 'node:child_process';
import { BusError, TOPICS, type Bus, type BusErrorCode, type BusMessage, type DeliveredMessage, type SubscribeOptions, type Subscription, type Topic } from '../../lib/bus';

/** A message on the wire: the value as its topic's codec encodes it. */
interface WireMessage {
  key: string;
  value: Uint8Array;
  partition?: number;
  offset?: string;
}

interface WireError {
  code: BusErrorCode;
  message: string;
  retriable: boolean;
}

interface WireBatch {
  minSize: number;
  maxWaitMs: number;
  maxSize?: number;
}

/** Child → test process. */
type Request =
  | { t: 'publish'; id: number; topic: string; messages: WireMessage[] }
  | { t: 'subscribe'; id: number; sub: number; topic: string; group: string; batch?: WireBatch }
  | { t: 'unsubscribe'; id: number; sub: number }
  | { t: 'delivered'; id: number; error?: string };

/** Test process → child. */
type Reply = { t: 'reply'; id: number; error?: WireError } | { t: 'deliver'; id: number; sub: number; messages: WireMessage[] };

const TOPIC_BY_NAME = new Map<string, Topic<unknown>>(Object.values(TOPICS).map((t) => [t.name, t as Topic<unknown>]));

function topicNamed(name: string): Topic<unknown> {
  const topic = TOPIC_BY_NAME.get(name);
  if (topic === undefined) throw new Error(`relay bus: unknown topic ${name}`);
  return topic;
}

/** IPC with `serialization: 'advanced'` hands Buffers over as plain Uint8Arrays. */
const bytes = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

/** A record topic's message weighs its array length, as the consumers' own batch policies count. */
const weigh = (value: unknown): number => (Array.isArray(value) ? value.length : 1);

function wireError(err: unknown): WireError {
  if (err instanceof BusError) return { code: err.code, message: err.message, retriable: err.retriable };
  return { code: 'BUS_PUBLISH_FAILED', message: String((err as Error)?.message ?? err), retriable: false };
}

/**
 * The broker side, in the test process: serves one child's publishes and subscriptions from `bus`. When the
 * child exits, its deliveries in flight fail (uncommitted, so redelivered) and its subscriptions stop.
 */
export function serveBus(child: ChildProcess, bus: Bus): void {
  const subscriptions = new Map<number, Subscription>();
  const deliveries = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  let nextDelivery = 0;
  let gone = false;
  const send = (reply: Reply): void => {
    if (!gone && child.connected) child.send(reply);
  };

  const handle = async (req: Request): Promise<void> => {
    switch (req.t) {
      case 'publish': {
        const topic = topicNamed(req.topic);
        const messages = req.messages.map((m) => ({ key: m.key, value: topic.codec.decode(bytes(m.value)) }));
        try {
          await bus.publish(topic, messages);
          send({ t: 'reply', id: req.id });
        } catch (err) {
          send({ t: 'reply', id: req.id, error: wireError(err) });
        }
        return;
      }
      case 'subscribe': {
        const topic = topicNamed(req.topic);
        const handler = (batch: DeliveredMessage<unknown>[]): Promise<void> =>
          new Promise((resolve, reject) => {
            if (gone) return reject(new Error('relay bus: the consumer process is gone'));
            const id = nextDelivery++;
            deliveries.set(id, { resolve, reject });
            const messages = batch.map((m) => ({ key: m.key, value: topic.codec.encode(m.value), partition: m.partition, offset: m.offset }));
            send({ t: 'deliver', id, sub: req.sub, messages });
          });
        const batch = req.batch ? { ...req.batch, sizeOf: weigh } : undefined;
        try {
          subscriptions.set(req.sub, await bus.subscribe(topic, req.group, handler, batch ? { batch } : undefined));
          send({ t: 'reply', id: req.id });
        } catch (err) {
          send({ t: 'reply', id: req.id, error: wireError(err) });
        }
        return;
      }
      case 'unsubscribe': {
        const sub = subscriptions.get(req.sub);
        subscriptions.delete(req.sub);
        await sub?.stop();
        send({ t: 'reply', id: req.id });
        return;
      }
      case 'delivered': {
        const d = deliveries.get(req.id);
        deliveries.delete(req.id);
        if (req.error === undefined) d?.resolve();
        else d?.reject(new Error(req.error));
        return;
      }
    }
  };

  child.on('message', (req: Request) => {
    handle(req).catch((err: unknown) => {
      if ('id' in req && req.t !== 'delivered') send({ t: 'reply', id: req.id, error: wireError(err) });
    });
  });
  child.once('exit', () => {
    gone = true;
    for (const d of deliveries.values()) d.reject(new Error('relay bus: the consumer process exited before committing'));
    deliveries.clear();
    for (const s of subscriptions.values()) void s.stop();
    subscriptions.clear();
  });
}

/**
 * The child side: a Bus whose every call goes to the test process over this process's IPC channel. Like the
 * Kafka bus it keeps nothing itself: `drain` has nothing to wait for and `pending` nothing to report.
 */
export function ipcBus(proc: NodeJS.Process = process): Bus {
  if (proc.send === undefined) throw new Error('relay bus: this process has no IPC channel (start it with fork)');
  const sendToParent = proc.send.bind(proc);
  const calls = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  const consumers = new Map<number, { topic: Topic<unknown>; handler: (batch: DeliveredMessage<unknown>[]) => Promise<void> }>();
  let nextId = 0;
  let closed = false;

  const call = (req: Request): Promise<void> =>
    new Promise((resolve, reject) => {
      if (closed || !proc.connected) return reject(new BusError('BUS_UNAVAILABLE', 'relay bus: not connected', true));
      calls.set(req.id, { resolve, reject });
      sendToParent(req);
    });

  proc.on('message', (msg: Reply) => {
    if (msg.t === 'reply') {
      const c = calls.get(msg.id);
      calls.delete(msg.id);
      if (msg.error === undefined) c?.resolve();
      else c?.reject(new BusError(msg.error.code, msg.error.message, msg.error.retriable));
      return;
    }
    const consumer = consumers.get(msg.sub);
    const done = (error?: string): void => {
      if (proc.connected) sendToParent({ t: 'delivered', id: msg.id, ...(error === undefined ? {} : { error }) } satisfies Request);
    };
    if (consumer === undefined) return done('no such subscription');
    const batch = msg.messages.map((m) => ({
      key: m.key,
      value: consumer.topic.codec.decode(bytes(m.value)),
      partition: m.partition ?? 0,
      offset: m.offset ?? '0',
    }));
    consumer.handler(batch).then(
      () => done(),
      (err: unknown) => done(String((err as Error)?.message ?? err)),
    );
  });
  // The broker went away: like a Kafka client whose brokers vanished, nothing can be acknowledged any more.
  proc.once('disconnect', () => {
    for (const c of calls.values()) c.reject(new BusError('BUS_UNAVAILABLE', 'relay bus: disconnected', true));
    calls.clear();
  });

  return {
    publish<T>(topic: Topic<T>, messages: BusMessage<T>[]): Promise<void> {
      if (messages.length === 0) return Promise.resolve();
      const wire = messages.map((m) => ({ key: m.key, value: topic.codec.encode(m.value) }));
      return call({ t: 'publish', id: nextId++, topic: topic.name, messages: wire });
    },
    async subscribe<T>(topic: Topic<T>, group: string, handler: (batch: DeliveredMessage<T>[]) => Promise<void>, options?: SubscribeOptions<T>) {
      const sub = nextId++;
      consumers.set(sub, { topic: topic as Topic<unknown>, handler: handler as (batch: DeliveredMessage<unknown>[]) => Promise<void> });
      const b = options?.batch;
      const batch = b ? { minSize: b.minSize, maxWaitMs: b.maxWaitMs, ...(b.maxSize === undefined ? {} : { maxSize: b.maxSize }) } : undefined;
      await call({ t: 'subscribe', id: nextId++, sub, topic: topic.name, group, ...(batch ? { batch } : {}) });
      return {
        stop: async () => {
          consumers.delete(sub);
          await call({ t: 'unsubscribe', id: nextId++, sub }).catch(() => undefined);
        },
      };
    },
    drain: () => Promise.resolve(true),
    pending: () => [],
    ready: () => !closed && proc.connected,
    close: () => {
      closed = true;
      return Promise.resolve();
    },
  };
}
