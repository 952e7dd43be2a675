/**
 * Admission to every receiver (HTTP and gRPC alike): whether a new request is taken at all, and the requests
 * taken and not yet answered.
 *
 * - Stopping: once `close()` is called, every receiver answers 503 with Retry-After (gRPC UNAVAILABLE) before
 *   reading a body, while the requests already taken finish: their records are stored and they get their 2xx
 *   (CONTRACT.md §3: SIGTERM stops intake first, then finishes what was acknowledged). `idle()` waits for them.
 * - Unavailable: while `ready()` says the pipeline cannot store (in the all-in-one: ClickHouse down or the
 *   schema not yet migrated; distributed: Kafka disconnected), new requests get 503 at once rather than waiting
 *   for an acknowledgement that cannot come.
 */
export interface Refusal {
  /** The reply's `error` code: `stopping` or `unavailable`. */
  code: 'stopping' | 'unavailable';
  message: string;
}

const STOPPING: Refusal = { code: 'stopping', message: 'meshlens is stopping and takes no new records; retry later' };
const UNAVAILABLE: Refusal = {
  code: 'unavailable',
  message: 'meshlens cannot store records right now (storage or bus unavailable); retry later',
};

export class Intake {
  private closed = false;
  private active = 0;
  private idleWaiters: (() => void)[] = [];

  /** @param ready whether the pipeline behind the receivers can take records now. */
  constructor(private readonly ready: () => boolean = () => true) {}

  /** Why a new request is refused, or undefined when it may be taken. */
  refusal(): Refusal | undefined {
    if (this.closed) return STOPPING;
    if (!this.ready()) return UNAVAILABLE;
    return undefined;
  }

  /** A request was taken; call `end()` exactly once when its response is over. */
  begin(): void {
    this.active++;
  }

  end(): void {
    this.active--;
    if (this.active === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Requests taken and not yet answered. */
  get inFlight(): number {
    return this.active;
  }

  /** From now on every new request is refused with `stopping`. */
  close(): void {
    this.closed = true;
  }

  /** Resolves true once no request taken is still unanswered, or false after `timeoutMs`. */
  idle(timeoutMs: number): Promise<boolean> {
    if (this.active === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const i = this.idleWaiters.indexOf(done);
        if (i >= 0) this.idleWaiters.splice(i, 1);
        resolve(false);
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      this.idleWaiters.push(done);
    });
  }
}
