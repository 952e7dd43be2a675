/**
 * The joined view (`reporter=all`, one answer per request) computed as records arrive, into requests_rollup_1m's
 * rows of reporter `all`, so it needs no raw rows and a long period reads minutes.
 *
 * Rules (the query API's, CONTRACT.md §6): a source (client) record pairs with a destination (server) record of
 * the same request id on the same hop (destination namespace and service); several records on one side are
 * several requests, paired one to one in arrival order. A pair counts once, in the source record's minute, with
 * the source's names and latency, the destination's subset where the source names none, and the destination's
 * verdict when the destination denied it, else the source's outcome. A record without a partner, without a
 * request id, or with reporter `unknown` counts as its side saw it.
 *
 * A record is counted as unpaired at once and waits here for its partner; when the partner comes (in the same
 * batch or a later one) the unpaired count is taken back and the pair added, so the rows hold signed sums. A
 * record waits at most PAIRING_WINDOW_MS, and at most `maxWaiting` records wait (the oldest give up first, and
 * stay counted as their side saw them). Both sides of a request reach the same consumer: ingest keys request
 * records by destination service, which both sides of a hop share.
 *
 * Exactly once per batch: `plan` computes a batch's rows without changing the waiting records, the writer
 * inserts them with the batch's per-reporter rows under the batch's token (`<token>:rollup`), and only then `commit`
 * applies the plan. A retried
 * batch gets the same plan and the same token. The waiting records live in memory: a graceful stop saves them
 * (`save`), a start loads them (`load`). After a crash (kill -9) a request whose two records straddle the crash
 * counts twice in the joined view; per-reporter counts are exact regardless.
 */
import type { MeshRequest } from '../model';
import { RequestRollup } from './rollup';
import type { RequestContribution, RequestRollupRow } from './rollup';
import { loadState, saveState } from './state-file';
import { Waiters, type Waiter } from './waiters';

/** How long a record waits for its partner: sidecars flush access logs within seconds of each other. */
export const PAIRING_WINDOW_MS = 5 * 60_000;
/** Default bound on waiting records (about 420 bytes each besides the request id string, measured with 100,000 waiting; 370 before the ledger's port, protocol and verdict details). */
export const DEFAULT_MAX_WAITING = 500_000;

interface Waiting extends Waiter {
  requestId: string;
  reporter: 'source' | 'destination';
  /** The hop: destination namespace and service as this record names them. */
  namespace: string;
  service: string;
  /** What this record added when it came: taken back if a partner comes. */
  counted: RequestContribution;
  /**
   * Saved by a version before the ledger rollup (pairing file version 1): `counted` lacks port, protocol and verdict
   * details, so its pair leaves the ledger as migration 007 filled it from the raw rows (this record, unpaired), and
   * counts in the RED reads only (RED_ONLY rows, lib/store/rollup.ts).
   */
  noLedger?: true;
}

export interface PairingPlan {
  /** requests_rollup_1m rows of the joined view (reporter `all`). */
  rows: RequestRollupRow[];
  added: Waiting[];
  paired: Waiting[];
}

export class Pairing {
  private readonly waiters: Waiters<string, Waiting>;

  constructor(maxWaiting = DEFAULT_MAX_WAITING) {
    this.waiters = new Waiters((w) => w.requestId, PAIRING_WINDOW_MS, maxWaiting);
  }

  get waiting(): number {
    return this.waiters.size;
  }

  /** Records that gave up waiting because of the bound, not the window. */
  get evicted(): number {
    return this.waiters.evicted;
  }

  /**
   * The joined rows of a batch of stored records (`counted[i]` is `records[i]`'s contribution), and the changes to
   * apply once they are stored.
   */
  plan(records: readonly MeshRequest[], counted: readonly RequestContribution[], now: number): PairingPlan {
    const rollup = new RequestRollup(false);
    const added: Waiting[] = [];
    const paired: Waiting[] = [];
    const pairedNow = new Set<Waiting>();
    /** Records of this batch still unpaired, by request id. */
    const local = new Map<string, Waiting[]>();
    for (let i = 0; i < records.length; i++) {
      const r = records[i] as MeshRequest;
      const own = counted[i] as RequestContribution;
      if (r.requestId === '' || (r.reporter !== 'source' && r.reporter !== 'destination')) {
        rollup.add(own, 1);
        continue;
      }
      const earlier = partnerIn(this.waiters.get(r.requestId), r, pairedNow);
      const partner = earlier ?? partnerIn(local.get(r.requestId), r, pairedNow);
      if (partner === undefined) {
        rollup.add(own, 1);
        const w: Waiting = { requestId: r.requestId, reporter: r.reporter, namespace: r.destinationNamespace, service: r.destinationService, counted: own, since: now, done: false };
        added.push(w);
        const list = local.get(r.requestId);
        if (list === undefined) local.set(r.requestId, [w]);
        else list.push(w);
        continue;
      }
      pairedNow.add(partner);
      if (earlier !== undefined) paired.push(partner);
      const ledger = partner.noLedger !== true;
      rollup.add(partner.counted, -1, ledger);
      rollup.add(partner.reporter === 'source' ? joined(partner.counted, own) : joined(own, partner.counted), 1, ledger);
    }
    return { rows: rollup.rows(), added: added.filter((w) => !pairedNow.has(w)), paired };
  }

  /** Applies a plan whose rows are stored, then lets records past the window or the bound give up. */
  commit(plan: PairingPlan, now: number): void {
    for (const w of plan.paired) this.waiters.remove(w);
    for (const w of plan.added) this.waiters.add(w);
    this.waiters.expire(now);
  }

  /** Writes the waiting records to `file` (a graceful stop), atomically. */
  async save(file: string): Promise<void> {
    await saveState(file, { version: 2, waiting: this.waiters.pending() });
  }

  /** Loads what `save` wrote (a missing file: nothing waits); returns how many records wait. */
  async load(file: string, now: number): Promise<number> {
    const saved = (await loadState(file)) as { version: number; waiting: Waiting[] } | undefined;
    if (saved === undefined) return 0;
    if ((saved.version !== 1 && saved.version !== 2) || !Array.isArray(saved.waiting)) throw new Error(`${file}: not a pairing state this version knows`);
    const legacy = saved.version === 1;
    const added = saved.waiting.map((w): Waiting => (legacy ? { ...w, done: false, noLedger: true } : { ...w, done: false }));
    this.commit({ rows: [], added, paired: [] }, now);
    return this.waiters.size;
  }
}

/** The first record of the other side on the same hop, among `list`, not yet paired in this batch. */
function partnerIn(list: readonly Waiting[] | undefined, r: MeshRequest, pairedNow: ReadonlySet<Waiting>): Waiting | undefined {
  if (list === undefined) return undefined;
  for (const w of list) {
    if (w.reporter !== r.reporter && w.namespace === r.destinationNamespace && w.service === r.destinationService && !pairedNow.has(w)) return w;
  }
  return undefined;
}

/**
 * A pair as it counts: the source's names, minute, port, protocol and latency; the destination's subset where the
 * source names none, and the destination's verdict (outcome, failure class, deny reason, policy, rule) when the
 * destination denied the request, else the source's.
 */
function joined(source: RequestContribution, destination: RequestContribution): RequestContribution {
  const verdict = destination.outcome === 'denied' ? destination : source;
  return {
    minute: source.minute,
    reporter: source.reporter,
    sourceWorkload: source.sourceWorkload,
    sourceNamespace: source.sourceNamespace,
    destinationHost: source.destinationHost,
    destinationService: source.destinationService,
    destinationNamespace: source.destinationNamespace,
    destinationPort: source.destinationPort,
    protocol: source.protocol,
    bucket: source.bucket,
    destinationSubset: source.destinationSubset !== '' ? source.destinationSubset : destination.destinationSubset,
    outcome: verdict.outcome,
    meshFailure: verdict.meshFailure,
    denyReason: verdict.denyReason,
    policy: verdict.policy,
    rule: verdict.rule,
  };
}
