/**
 * Per-minute rollup rows computed here, per consumed batch, instead of by materialized views in ClickHouse: a
 * view ran its GROUP BY over every raw row inside each insert; one batch of 20,000 requests from a mesh folds
 * into a few hundred rows (minute × reporter × caller × destination × subset), so ClickHouse writes little
 * and merges less, and the rollups no longer need the raw rows at all (MESHLENS_RAW_REQUESTS).
 *
 * The rows carry what the views computed (clickhouse/migrations/002–004): counts (as numbers for
 * requests_rollup_1m, migration 009; as `count`/`sum` states for flows_1m), and the latency histogram with the query
 * API's own bucket mapping. A batch's rollup rows are a function of the batch (and, for the joined view, of the
 * records waiting for partners), so a redelivered batch gives the same rows, inserted under a token derived from
 * the batch's (`<token>:rollup`) and dropped by ClickHouse as a repeat.
 */
import { hasMeshFailureFlag } from '../model';
import type { Flow, MeshRequest } from '../model';
import { latencyBucket } from './queries';

export interface FlowRollupRow {
  minute: number;
  reporter: string;
  sourceWorkload: string;
  sourceNamespace: string;
  destinationHost: string;
  destinationService: string;
  destinationNamespace: string;
  destinationWorkload: string;
  destinationPort: number;
  verdict: string;
  denyReason: string;
  policy: string;
  rule: number;
  records: number;
  connections: number;
}

const MINUTE_MS = 60_000;

/**
 * Groups by the values of `fields` through nested Maps, one level per field: no key string is built per record
 * (a joined key would be concatenated and then hashed whole for every record of the batch).
 */
class Groups<R, G> {
  private readonly root = new Map<unknown, unknown>();
  readonly rows: G[] = [];

  constructor(
    private readonly fields: readonly (keyof R & string)[],
    private readonly create: (record: R, minute: number) => G,
  ) {}

  /** The group of `record` in `minute`, created on first sight. */
  of(record: R, minute: number): G {
    let level = this.root;
    let next = level.get(minute) as Map<unknown, unknown> | undefined;
    if (next === undefined) level.set(minute, (next = new Map()));
    level = next;
    const last = this.fields.length - 1;
    for (let i = 0; i < last; i++) {
      const v = record[this.fields[i] as keyof R];
      next = level.get(v) as Map<unknown, unknown> | undefined;
      if (next === undefined) level.set(v, (next = new Map()));
      level = next;
    }
    const v = record[this.fields[last] as keyof R];
    let group = level.get(v) as G | undefined;
    if (group === undefined) {
      group = this.create(record, minute);
      level.set(v, group);
      this.rows.push(group);
    }
    return group;
  }
}

/**
 * How one request record counts in the request rollups: where (minute, reporter, names, and for the ledger port,
 * protocol and verdict details) and how (outcome, failure class, latency bucket). Computed once per stored record
 * and used by both the per-reporter rows and the joined view's (lib/store/pairing.ts), so the two count by the
 * same rules.
 */
export interface RequestContribution {
  minute: number;
  reporter: MeshRequest['reporter'];
  sourceWorkload: string;
  sourceNamespace: string;
  destinationHost: string;
  destinationService: string;
  destinationNamespace: string;
  destinationSubset: string;
  destinationPort: number;
  protocol: MeshRequest['protocol'];
  outcome: MeshRequest['outcome'];
  denyReason: MeshRequest['denyReason'];
  policy: string;
  rule: number;
  /** Not denied, with an upstream-failure response flag (migration 003's `meshFailure`). */
  meshFailure: boolean;
  bucket: number;
}

/** A record's contribution as its own side saw it. */
export function contributionOf(r: MeshRequest): RequestContribution {
  return {
    minute: minuteOf(r.startTimeMs),
    reporter: r.reporter,
    sourceWorkload: r.sourceWorkload,
    sourceNamespace: r.sourceNamespace,
    destinationHost: r.destinationHost,
    destinationService: r.destinationService,
    destinationNamespace: r.destinationNamespace,
    destinationSubset: r.destinationSubset,
    destinationPort: r.destinationPort,
    protocol: r.protocol,
    outcome: r.outcome,
    denyReason: r.denyReason,
    policy: r.policy,
    rule: r.rule,
    meshFailure: r.outcome !== 'denied' && hasMeshFailureFlag(r.responseFlags),
    bucket: latencyBucket(r.durationMs),
  };
}

/**
 * A row of requests_rollup_1m (migration 009): the RED counts (requests, errors, denied, failure classes, latency
 * histogram) per minute, reporter, caller, destination and subset, split by the ledger's port, protocol and verdict
 * (outcome, deny reason, policy, rule), so the subsets, graph, canaries and the allowed/denied ledger all read one
 * table that one insert per batch fills. `reporter` is the record's own for the per-reporter rows and `all` for the
 * joined view's (lib/store/pairing.ts), whose sums are signed: pairing a record with one seen earlier takes back
 * what that one added. A row with outcome '' (RED_ONLY) counts in the RED reads only, not in the ledger.
 */
export interface RequestRollupRow {
  minute: number;
  reporter: string;
  sourceWorkload: string;
  sourceNamespace: string;
  destinationHost: string;
  destinationService: string;
  destinationNamespace: string;
  destinationSubset: string;
  destinationPort: number;
  protocol: string;
  outcome: string;
  denyReason: string;
  policy: string;
  rule: number;
  requests: number;
  errors: number;
  denied: number;
  appErrors: number;
  meshFailures: number;
  /** Latency bucket (lib/store latencyBucket) → requests. */
  latencyBuckets: Map<number, number>;
}

/** The reporter the joined view's rows carry: the query API's `reporter=all`. */
export const JOINED_REPORTER = 'all';

/**
 * The ledger details of a row that counts in the RED reads only: its outcome '' is no request's (every record is ok,
 * error or denied), and queryLedger leaves such rows out. Migration 009 puts there what requests_1m and
 * requests_joined_1m held beyond the ledger's rows (minutes older than the ledger, latency, failure classes); the
 * joined view puts there the pair of a record saved by a version before the ledger (pairing file version 1), whose
 * ledger count stays as migration 007 filled it.
 */
export const RED_ONLY = { destinationPort: 0, protocol: '', outcome: '', denyReason: '', policy: '', rule: 0 } as const;

/** requests_rollup_1m's key beyond the minute (and the reporter, for per-reporter rows): the RED names, then the ledger's details. */
const NAMES = ['sourceWorkload', 'sourceNamespace', 'destinationHost', 'destinationService', 'destinationNamespace', 'destinationSubset'] as const;
const LEDGER_DETAIL = ['destinationPort', 'protocol', 'outcome', 'denyReason', 'policy', 'rule'] as const;

/** What a row is keyed on: a contribution, or one whose ledger details are RED_ONLY's. */
type RowKey = Pick<RequestContribution, 'reporter' | (typeof NAMES)[number]> & Record<(typeof LEDGER_DETAIL)[number], string | number>;

/**
 * Sums request contributions (added, or taken back in the joined view) into requests_rollup_1m rows: per reporter,
 * or the joined view's (reporter `all`).
 */
export class RequestRollup {
  private readonly groups: Groups<RowKey, RequestRollupRow>;

  /** `perReporter`: rows per the records' own reporter; otherwise the joined view's rows, reporter `all`. */
  constructor(perReporter: boolean) {
    const fields = [...NAMES, ...LEDGER_DETAIL];
    this.groups = new Groups<RowKey, RequestRollupRow>(perReporter ? ['reporter', ...fields] : fields, (c, minute) => ({
      minute,
      reporter: perReporter ? c.reporter : JOINED_REPORTER,
      sourceWorkload: c.sourceWorkload,
      sourceNamespace: c.sourceNamespace,
      destinationHost: c.destinationHost,
      destinationService: c.destinationService,
      destinationNamespace: c.destinationNamespace,
      destinationSubset: c.destinationSubset,
      destinationPort: c.destinationPort as number,
      protocol: c.protocol as string,
      outcome: c.outcome as string,
      denyReason: c.denyReason as string,
      policy: c.policy as string,
      rule: c.rule as number,
      requests: 0,
      errors: 0,
      denied: 0,
      appErrors: 0,
      meshFailures: 0,
      latencyBuckets: new Map(),
    }));
  }

  /**
   * Adds `c` (sign 1) or takes it back (sign -1), in the row of its ledger details, or with `ledger` false in its
   * RED_ONLY row (counted as `c` says, but not in the ledger).
   */
  add(c: RequestContribution, sign: 1 | -1, ledger = true): void {
    const g = this.groups.of(ledger ? c : { ...c, ...RED_ONLY }, c.minute);
    g.requests += sign;
    if (c.outcome === 'denied') g.denied += sign;
    else if (c.outcome === 'error') {
      g.errors += sign;
      if (!c.meshFailure) g.appErrors += sign;
    }
    if (c.meshFailure) g.meshFailures += sign;
    const n = (g.latencyBuckets.get(c.bucket) ?? 0) + sign;
    if (n === 0) g.latencyBuckets.delete(c.bucket);
    else g.latencyBuckets.set(c.bucket, n);
  }

  /** The rows with any non-zero sum (a record added and taken back in one batch leaves nothing). */
  rows(): RequestRollupRow[] {
    const out: RequestRollupRow[] = [];
    for (const g of this.groups.rows) {
      if (g.requests !== 0 || g.errors !== 0 || g.denied !== 0 || g.appErrors !== 0 || g.meshFailures !== 0 || g.latencyBuckets.size > 0) out.push(g);
    }
    return out;
  }
}

/** The per-reporter rollup of a batch's stored records. */
export function requestRollupOf(counted: readonly RequestContribution[]): RequestRollup {
  const rollup = new RequestRollup(true);
  for (const c of counted) rollup.add(c, 1);
  return rollup;
}

/** The per-reporter requests_rollup_1m rows of a batch's stored records, from their contributions. */
export function rollUpRequests(counted: readonly RequestContribution[]): RequestRollupRow[] {
  return requestRollupOf(counted).rows();
}

const FLOW_KEY = [
  'reporter',
  'sourceWorkload',
  'sourceNamespace',
  'destinationHost',
  'destinationService',
  'destinationNamespace',
  'destinationWorkload',
  'destinationPort',
  'verdict',
  'denyReason',
  'policy',
  'rule',
] as const satisfies readonly (keyof Flow)[];

export function rollUpFlows(records: readonly Flow[]): FlowRollupRow[] {
  const groups = new Groups<Flow, FlowRollupRow>(FLOW_KEY, (f, minute) => ({
    minute,
    reporter: f.reporter,
    sourceWorkload: f.sourceWorkload,
    sourceNamespace: f.sourceNamespace,
    destinationHost: f.destinationHost,
    destinationService: f.destinationService,
    destinationNamespace: f.destinationNamespace,
    destinationWorkload: f.destinationWorkload,
    destinationPort: f.destinationPort,
    verdict: f.verdict,
    denyReason: f.denyReason,
    policy: f.policy,
    rule: f.rule,
    records: 0,
    connections: 0,
  }));
  for (const f of records) {
    const g = groups.of(f, minuteOf(f.startTimeMs));
    g.records++;
    g.connections += f.count;
  }
  return groups.rows;
}

/** The minute an event time falls in, as DateTime seconds (toStartOfMinute of the views). */
function minuteOf(ms: number): number {
  return Math.floor(ms / MINUTE_MS) * 60;
}
