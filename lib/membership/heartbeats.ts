/**
 * Heartbeats — who is running: membership over the Bus, so that the process serving Prometheus targets (CONTRACT.md §6,
 * `GET /api/v1/prometheus/targets`) can list every meshlens process's `/metrics`, not only its own.
 *
 * - Every process publishes a `MemberHeartbeat` (instance, target, address, start time, send time) on
 *   `TOPICS.members` every `HEARTBEAT_INTERVAL_MS`, keyed by instance, and a last one with `leaving: true` when it
 *   stops, so it is unlisted at once instead of after expiry.
 * - The serving process subscribes with a consumer group of its own (`meshlens-members-<instance>`): a shared
 *   group would split the heartbeats between replicas, each seeing only some members. It lists the members heard
 *   from within `EXPIRE_AFTER_INTERVALS` intervals, by local receive time, plus itself (always, without the bus:
 *   the answer stays right when the bus is down or full).
 * - Kafka consumers start `fromBeginning`, so a new group replays the topic's history first: heartbeats sent
 *   longer ago than the expiry are ignored. That assumes clocks within ~30 s of each other (NTP), and a short
 *   `retention.ms` on `meshlens.members` keeps the replay small. Per-instance groups are left behind on the
 *   broker when a process stops and expire with `offsets.retention.minutes` (default 7 days).
 * - Two members advertising one address (a restarted container whose last heartbeats are still fresh, or two
 *   processes given the same `MESHLENS_ADVERTISE_ADDRESS`) would make Prometheus scrape the same endpoint twice
 *   under two label sets: the newest start wins, this process over any other.
 *
 * The memory bus keeps a message until every group that ever subscribed committed it, and a stopped group keeps
 * its offset: on a shared memory bus, a stopped member's group would hold the members topic until it is full.
 * Only the members topic is affected (capacity is per topic), the heartbeat publish failure is logged and the
 * serving process still lists itself. A process-private memory bus (all-in-one) has nobody else to hear, so
 * bin/start.ts publishes there only when the process serves targets itself.
 */
import type { Bus, BusLogger, DeliveredMessage, MemberHeartbeat, Subscription } from '../bus';
import { TOPICS } from '../bus';
import { within } from '../runtime';
import type { MemberDirectory } from './directory';

/** How often a process says it is alive. */
export const HEARTBEAT_INTERVAL_MS = 10_000;

export type SelfDescription = Omit<MemberHeartbeat, 'sentAtMs' | 'leaving'>;

/** A heartbeat as decoded from the bus: anything may arrive, so it is checked before use. */
export function isHeartbeat(v: unknown): v is MemberHeartbeat {
  if (typeof v !== 'object' || v === null) return false;
  const h = v as Record<string, unknown>;
  return (
    typeof h.instance === 'string' &&
    h.instance !== '' &&
    typeof h.target === 'string' &&
    typeof h.address === 'string' &&
    /^\S+:\d{1,5}$/.test(h.address) &&
    typeof h.startedAtMs === 'number' &&
    Number.isFinite(h.startedAtMs) &&
    typeof h.sentAtMs === 'number' &&
    Number.isFinite(h.sentAtMs) &&
    (h.leaving === undefined || typeof h.leaving === 'boolean')
  );
}


/** How long a stop waits for the `leaving` heartbeat to be accepted. */
const LEAVING_TIMEOUT_MS = 1_000;

export interface MembershipOptions {
  bus: Bus;
  self: SelfDescription;
  /** Publish heartbeats (default true). */
  publish?: boolean;
  /** Subscribe and fill this directory (the process serving targets); undefined: publish only. */
  directory?: MemberDirectory;
  intervalMs?: number;
  logger?: BusLogger;
  now?: () => number;
}

export interface Membership {
  /** Publishes `leaving`, stops the timer and the subscription. */
  stop(): Promise<void>;
}

/**
 * Heartbeats on `TOPICS.members` every interval, and, with a directory, a subscription feeding it and a sweep
 * per interval so that expiries are noticed without traffic. Never fails the start: a bus that cannot take the
 * subscription yet is retried every interval, a failed heartbeat is logged.
 */
export async function startMembership(opts: MembershipOptions): Promise<Membership> {
  const { bus, self, directory, logger } = opts;
  const intervalMs = opts.intervalMs ?? HEARTBEAT_INTERVAL_MS;
  const now = opts.now ?? Date.now;
  const publish = opts.publish ?? true;
  directory?.setSelf(self);

  let stopped = false;
  let failing = false;
  let inFlight: Promise<void> | null = null;
  const beat = (leaving: boolean): Promise<void> => {
    const hb: MemberHeartbeat = { ...self, sentAtMs: now(), ...(leaving ? { leaving: true } : {}) };
    return bus.publish(TOPICS.members, [{ key: self.instance, value: [hb] }]).then(
      () => {
        if (failing) logger?.info({ topic: TOPICS.members.name }, 'membership heartbeats are published again');
        failing = false;
      },
      (err: unknown) => {
        if (!failing) logger?.warn({ err, topic: TOPICS.members.name }, 'cannot publish the membership heartbeat; retrying every interval');
        failing = true;
      },
    );
  };
  const tick = (): void => {
    directory?.sweep();
    if (!publish || stopped || inFlight !== null) return; // a hanging publish is not stacked upon
    inFlight = beat(false).finally(() => (inFlight = null));
  };

  let subscription: Subscription | undefined;
  let subscribing: Promise<void> | null = null;
  const handler = async (messages: DeliveredMessage<MemberHeartbeat[]>[]): Promise<void> => {
    // Never throws: a bad message would otherwise be redelivered forever.
    for (const m of messages) if (Array.isArray(m.value)) for (const hb of m.value) directory?.observe(hb);
  };
  const subscribe = (): void => {
    if (directory === undefined || subscription !== undefined || subscribing !== null || stopped) return;
    subscribing = bus
      .subscribe(TOPICS.members, `meshlens-members-${self.instance}`, handler)
      .then(
        async (s) => {
          if (stopped) await s.stop();
          else subscription = s;
        },
        (err: unknown) => {
          logger?.warn({ err, topic: TOPICS.members.name }, 'cannot subscribe to membership heartbeats yet; retrying every interval');
        },
      )
      .finally(() => (subscribing = null));
  };

  // Not awaited: a Kafka bus that is not reachable yet must not hold the start (this process lists itself anyway).
  subscribe();
  tick();
  const timer = setInterval(() => {
    subscribe();
    tick();
  }, intervalMs);
  timer.unref();

  let stopping: Promise<void> | null = null;
  return {
    stop(): Promise<void> {
      stopping ??= (async () => {
        stopped = true;
        clearInterval(timer);
        await inFlight;
        // Bounded: a bus that cannot take it (Kafka down) must not hold the shutdown; expiry unlists us then.
        if (publish) await within(LEAVING_TIMEOUT_MS, beat(true));
        await subscribing;
        await subscription?.stop();
      })();
      return stopping;
    },
  };
}
