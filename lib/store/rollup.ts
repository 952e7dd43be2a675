/**
 * Per-minute rollup rows computed here, per consumed batch, instead of by materialized views in ClickHouse: a
 * view ran its GROUP BY over every raw row inside each insert; one batch of 20,000 requests from a mesh folds
 * into a few hundred rows (minute × reporter × caller × destination × subset), so ClickHouse writes little
 * and merges less, and the rollups no longer need the raw rows at all (MESHLENS_RAW_REQUESTS).
 *
 * The rows carry what the views computed (clickhouse/migrations/002–004): counts as the `count`/`countIf`
 * states the rollup tables hold, and the latency histogram with the query API's own bucket mapping. A batch's
 * rollup rows are a function of the batch alone, so a redelivered batch gives the same rows, inserted under a
 * token derived from the batch's (`<token>:rollup`) and dropped by ClickHouse as a repeat.
 */
import { hasMeshFailureFlag } from '../model';
import type { Flow, MeshRequest } from '../model';
import { latencyBucket } from './queries';

export interface RequestRollupRow {
  minute: number;
  reporter: string;
  sourceWorkload: string;
  sourceNamespace: string;
  destinationHost: string;
  destinationService: string;
  destinationNamespace: string;
  destinationSubset: string;
  requests: number;
  errors: number;
  denied: number;
  appErrors: number;
  meshFailures: number;
  /** Latency bucket (lib/store latencyBucket) → requests. */
  latencyBuckets: Map<number, number>;
}

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

const REQUEST_KEY = [
  'reporter',
  'sourceWorkload',
  'sourceNamespace',
  'destinationHost',
  'destinationService',
  'destinationNamespace',
  'destinationSubset',
] as const satisfies readonly (keyof MeshRequest)[];

export function rollUpRequests(records: readonly MeshRequest[]): RequestRollupRow[] {
  const groups = new Groups<MeshRequest, RequestRollupRow>(REQUEST_KEY, (r, minute) => ({
    minute,
    reporter: r.reporter,
    sourceWorkload: r.sourceWorkload,
    sourceNamespace: r.sourceNamespace,
    destinationHost: r.destinationHost,
    destinationService: r.destinationService,
    destinationNamespace: r.destinationNamespace,
    destinationSubset: r.destinationSubset,
    requests: 0,
    errors: 0,
    denied: 0,
    appErrors: 0,
    meshFailures: 0,
    latencyBuckets: new Map(),
  }));
  for (const r of records) {
    const g = groups.of(r, minuteOf(r.startTimeMs));
    g.requests++;
    const denied = r.outcome === 'denied';
    const meshFailure = !denied && hasMeshFailureFlag(r.responseFlags);
    if (denied) g.denied++;
    else if (r.outcome === 'error') {
      g.errors++;
      if (!meshFailure) g.appErrors++;
    }
    if (meshFailure) g.meshFailures++;
    const bucket = latencyBucket(r.durationMs);
    g.latencyBuckets.set(bucket, (g.latencyBuckets.get(bucket) ?? 0) + 1);
  }
  return groups.rows;
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

/**
 * One request as it counts in the joined view (`reporter=all`, requests_joined_1m): where it counts (the minute
 * and names) and how (outcome, failure class, latency bucket). Built by the aggregator's pairing of source and
 * destination records (services/aggregator/pairing.ts).
 */
export interface JoinedContribution {
  minute: number;
  sourceWorkload: string;
  sourceNamespace: string;
  destinationHost: string;
  destinationService: string;
  destinationNamespace: string;
  destinationSubset: string;
  outcome: MeshRequest['outcome'];
  meshFailure: boolean;
  bucket: number;
}

/** A record's contribution as its own side saw it. */
export function contributionOf(r: MeshRequest): JoinedContribution {
  const meshFailure = r.outcome !== 'denied' && hasMeshFailureFlag(r.responseFlags);
  return {
    minute: minuteOf(r.startTimeMs),
    sourceWorkload: r.sourceWorkload,
    sourceNamespace: r.sourceNamespace,
    destinationHost: r.destinationHost,
    destinationService: r.destinationService,
    destinationNamespace: r.destinationNamespace,
    destinationSubset: r.destinationSubset,
    outcome: r.outcome,
    meshFailure,
    bucket: latencyBucket(r.durationMs),
  };
}

/** requests_joined_1m rows: signed sums, since pairing a record with one seen earlier takes back what that one added. */
export interface JoinedRollupRow {
  minute: number;
  sourceWorkload: string;
  sourceNamespace: string;
  destinationHost: string;
  destinationService: string;
  destinationNamespace: string;
  destinationSubset: string;
  requests: number;
  errors: number;
  denied: number;
  appErrors: number;
  meshFailures: number;
  latencyBuckets: Map<number, number>;
}

const JOINED_KEY = [
  'sourceWorkload',
  'sourceNamespace',
  'destinationHost',
  'destinationService',
  'destinationNamespace',
  'destinationSubset',
] as const satisfies readonly (keyof JoinedContribution)[];

/** Sums contributions (added or taken back) into requests_joined_1m rows. */
export class JoinedRollup {
  private readonly groups = new Groups<JoinedContribution, JoinedRollupRow>(JOINED_KEY, (c, minute) => ({
    minute,
    sourceWorkload: c.sourceWorkload,
    sourceNamespace: c.sourceNamespace,
    destinationHost: c.destinationHost,
    destinationService: c.destinationService,
    destinationNamespace: c.destinationNamespace,
    destinationSubset: c.destinationSubset,
    requests: 0,
    errors: 0,
    denied: 0,
    appErrors: 0,
    meshFailures: 0,
    latencyBuckets: new Map(),
  }));

  /** Adds `c` (sign 1) or takes it back (sign -1). */
  add(c: JoinedContribution, sign: 1 | -1): void {
    const g = this.groups.of(c, c.minute);
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
  rows(): JoinedRollupRow[] {
    return this.groups.rows.filter((g) => g.requests !== 0 || g.errors !== 0 || g.denied !== 0 || g.meshFailures !== 0 || g.latencyBuckets.size > 0);
  }
}
