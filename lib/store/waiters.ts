/**
 * Entries waiting for a partner, found by key and let go in arrival order: the records of the joined view waiting
 * for their request's other side (pairing.ts), the spans waiting for a log of their hop (spanedges.ts).
 *
 * An entry waits until it is removed (its partner came), until `windowMs` after it came, or until more than
 * `maxWaiting` wait (the oldest give up first; `evicted` counts those). Removal is marked on the entry (`done`)
 * and the arrival queue skips marked entries, so removing is O(entries under one key), not O(queue).
 */
export interface Waiter {
  /** Arrival time (ms) of the batch it came in. */
  since: number;
  /** Removed or given up: no longer found by its key. */
  done: boolean;
}

export class Waiters<K, W extends Waiter> {
  private readonly byKey = new Map<K, W[]>();
  /** Waiting entries in arrival order, for expiry and the bound; entries already done are skipped. */
  private queue: W[] = [];
  private head = 0;
  private count = 0;
  /** Entries that gave up because of the bound, not the window. */
  evicted = 0;

  constructor(
    private readonly keyOf: (w: W) => K,
    private readonly windowMs: number,
    private readonly maxWaiting: number,
  ) {}

  get size(): number {
    return this.count;
  }

  /** The entries waiting under `key`, in arrival order. */
  get(key: K): readonly W[] | undefined {
    return this.byKey.get(key);
  }

  add(w: W): void {
    const key = this.keyOf(w);
    const list = this.byKey.get(key);
    if (list === undefined) this.byKey.set(key, [w]);
    else list.push(w);
    this.queue.push(w);
    this.count++;
  }

  remove(w: W): void {
    if (w.done) return;
    w.done = true;
    this.count--;
    const key = this.keyOf(w);
    const list = this.byKey.get(key);
    if (list === undefined) return;
    const rest = list.filter((x) => x !== w);
    if (rest.length === 0) this.byKey.delete(key);
    else this.byKey.set(key, rest);
  }

  /** Lets entries past the window or the bound give up, oldest first. */
  expire(now: number): void {
    while (this.head < this.queue.length) {
      const w = this.queue[this.head] as W;
      if (!w.done) {
        const over = this.count > this.maxWaiting;
        if (!over && now - w.since < this.windowMs) break;
        if (over) this.evicted++;
        this.remove(w);
      }
      this.head++;
    }
    // Compact the queue once most of it is behind the head.
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  /** The entries still waiting, in arrival order (what a graceful stop saves). */
  pending(): W[] {
    return this.queue.slice(this.head).filter((w) => !w.done);
  }
}
