/**
 * The member directory: the meshlens processes heard from recently (by heartbeat, heartbeats.ts), plus this one.
 * Pure bookkeeping, fed by `startMembership`; read by the Prometheus targets route.
 */
import { HEARTBEAT_INTERVAL_MS, isHeartbeat, type SelfDescription } from './heartbeats';

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
