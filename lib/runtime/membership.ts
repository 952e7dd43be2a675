/**
 * Who is running: membership over the Bus, so that the process serving Prometheus targets (CONTRACT.md §6,
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
import { randomBytes } from 'node:crypto';
import { hostname, networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { TOPICS } from '../bus/types';
import type { Bus, BusLogger, DeliveredMessage, MemberHeartbeat, Subscription } from '../bus/types';
import { within } from './time';

/** How often a process says it is alive. */
export const HEARTBEAT_INTERVAL_MS = 10_000;
/** A member unheard for this many intervals is no longer listed. */
export const EXPIRE_AFTER_INTERVALS = 3;

export interface Member {
  instance: string;
  target: string;
  address: string;
  startedAtMs: number;
  /** Local time of the last heartbeat received (for this process: now). */
  lastSeenMs: number;
  /** This process. */
  self: boolean;
}

export type SelfDescription = Omit<MemberHeartbeat, 'sentAtMs' | 'leaving'>;

/** `<hostname>-<pid>-<random>`: readable in labels, unique per process start. */
export function newInstanceId(): string {
  const host = hostname().replace(/[^A-Za-z0-9.-]/g, '-').slice(0, 63) || 'host';
  return `${host}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/** `host:port`, with brackets around an IPv6 address (`[fd00::1]:8080`), as Prometheus targets are written. */
export function hostPort(host: string, port: number): string {
  const h = host.replace(/^\[(.*)\]$/, '$1');
  return h.includes(':') ? `[${h}]:${port}` : `${h}:${port}`;
}

const WILDCARD_HOSTS = new Set(['', '0.0.0.0', '::', '::0', '0:0:0:0:0:0:0:0']);

export interface AdvertiseOptions {
  /** `MESHLENS_ADVERTISE_ADDRESS`; wins when set. */
  advertiseAddress: string | undefined;
  /** `MESHLENS_LISTEN_HOST`. */
  listenHost: string;
  /** The bound HTTP port (the configured one may be 0). */
  port: number;
  /** `os.networkInterfaces()`; injectable for tests. */
  interfaces?: NodeJS.Dict<NetworkInterfaceInfo[]>;
}

/**
 * The `host:port` other processes and Prometheus reach this process's HTTP port at:
 * 1. `MESHLENS_ADVERTISE_ADDRESS` when set (NAT, port mapping, a Service name: only the operator knows);
 * 2. the listen host when it is one address (`127.0.0.1`, `10.0.0.5`, `meshlens-0.meshlens`), with the bound port;
 * 3. when listening on every address (`0.0.0.0`, `::`, as containers do), the first non-internal IPv4 address of
 *    the network interfaces, then a global IPv6 one, else `127.0.0.1`. An IP, not `os.hostname()`: a container's
 *    hostname is its container id, which the other containers (and Prometheus) cannot resolve unless the
 *    compose service or pod has a matching DNS name; its interface IP is reachable on the shared network.
 */
export function advertiseAddress(o: AdvertiseOptions): string {
  if (o.advertiseAddress !== undefined && o.advertiseAddress !== '') return o.advertiseAddress;
  const host = o.listenHost.replace(/^\[(.*)\]$/, '$1');
  if (!WILDCARD_HOSTS.has(host)) return hostPort(host, o.port);
  const all = Object.values(o.interfaces ?? networkInterfaces()).flatMap((list) => list ?? []);
  const external = all.filter((i) => !i.internal);
  const v4 = external.find((i) => i.family === 'IPv4');
  if (v4 !== undefined) return hostPort(v4.address, o.port);
  // Link-local IPv6 (fe80::/10) needs a zone id to be reachable: not usable as a target.
  const v6 = external.find((i) => i.family === 'IPv6' && !/^fe[89ab]/i.test(i.address));
  if (v6 !== undefined) return hostPort(v6.address, o.port);
  return hostPort('127.0.0.1', o.port);
}

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

export interface MemberDirectoryOptions {
  /** Default `EXPIRE_AFTER_INTERVALS × HEARTBEAT_INTERVAL_MS`. */
  expireAfterMs?: number;
  /** Injected clock (tests). */
  now?: () => number;
}

/** The members heard from recently. Pure bookkeeping: the bus side is `startMembership`. */
export class MemberDirectory {
  readonly expireAfterMs: number;
  private readonly now: () => number;
  private self: SelfDescription | undefined;
  private readonly others = new Map<string, Member>();
  private readonly listeners = new Set<() => void>();
  private signature = '';

  constructor(options: MemberDirectoryOptions = {}) {
    this.expireAfterMs = options.expireAfterMs ?? EXPIRE_AFTER_INTERVALS * HEARTBEAT_INTERVAL_MS;
    this.now = options.now ?? Date.now;
  }

  /** This process: always listed, never expires. */
  setSelf(self: SelfDescription): void {
    this.self = self;
    this.others.delete(self.instance);
    this.check();
  }

  /** Takes a heartbeat from the bus; ignores what is not one, replayed history and this process's own. */
  observe(hb: unknown): void {
    if (!isHeartbeat(hb)) return;
    if (hb.instance === this.self?.instance) return;
    const now = this.now();
    if (hb.leaving === true) {
      this.others.delete(hb.instance);
    } else if (now - hb.sentAtMs <= this.expireAfterMs) {
      this.others.set(hb.instance, {
        instance: hb.instance,
        target: hb.target,
        address: hb.address,
        startedAtMs: hb.startedAtMs,
        lastSeenMs: now,
        self: false,
      });
    }
    this.check();
  }

  /** Forgets expired members and tells the listeners when that changed the list (call periodically). */
  sweep(): void {
    this.check();
  }

  /** Listed members, sorted by target then address; expired ones are dropped first. */
  list(): Member[] {
    const now = this.now();
    for (const [k, m] of this.others) if (now - m.lastSeenMs > this.expireAfterMs) this.others.delete(k);
    const byAddress = new Map<string, Member>();
    const consider = (m: Member): void => {
      const held = byAddress.get(m.address);
      if (held === undefined || (!held.self && (m.self || m.startedAtMs > held.startedAtMs))) byAddress.set(m.address, m);
    };
    if (this.self !== undefined) consider({ ...this.self, lastSeenMs: now, self: true });
    for (const m of this.others.values()) consider(m);
    return [...byAddress.values()].sort((a, b) => cmp(a.target, b.target) || cmp(a.address, b.address) || cmp(a.instance, b.instance));
  }

  /** Called whenever the listed set (instance, target, address) changes. Returns an unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private check(): void {
    const sig = this.list()
      .map((m) => `${m.instance} ${m.target} ${m.address}`)
      .join('\n');
    if (sig === this.signature) return;
    this.signature = sig;
    for (const l of this.listeners) l();
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
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
