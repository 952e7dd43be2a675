/**
 * The joined view's pairing, as rows: each request counts once whichever of its records comes first and however
 * batches cut them, a plan changes nothing until committed (a retried batch gets the same rows), waiting is bounded
 * in time and number, and what waits survives a save and load.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { emptyRequest } from '../model';
import type { MeshRequest } from '../model';
import { Pairing, PAIRING_WINDOW_MS } from './pairing';
import { contributionOf, RED_ONLY } from './rollup';
import type { RequestRollupRow } from './rollup';

const T0 = Date.UTC(2026, 11, 2, 9, 0, 0);

function record(reporter: 'source' | 'destination', requestId: string, over: Partial<MeshRequest> = {}): MeshRequest {
  return {
    ...emptyRequest(),
    startTimeMs: T0,
    reporter,
    requestId,
    sourceWorkload: 'productpage-v1',
    sourceNamespace: 'default',
    destinationHost: 'reviews.default.svc.cluster.local',
    destinationService: 'reviews',
    destinationNamespace: 'default',
    destinationSubset: reporter === 'source' ? 'v2' : '',
    durationMs: reporter === 'source' ? 20 : 15,
    responseCode: 200,
    outcome: 'ok',
    ...over,
  };
}

/** Rows summed per subset, as the query API sums them. */
function totals(rows: RequestRollupRow[]): Record<string, { requests: number; errors: number; denied: number }> {
  const out: Record<string, { requests: number; errors: number; denied: number }> = {};
  for (const r of rows) {
    const t = (out[r.destinationSubset] ??= { requests: 0, errors: 0, denied: 0 });
    t.requests += r.requests;
    t.errors += r.errors;
    t.denied += r.denied;
  }
  for (const [k, t] of Object.entries(out)) if (t.requests === 0 && t.errors === 0 && t.denied === 0) delete out[k];
  return out;
}

/** Feeds batches through plan and commit, returning every row written (those the ledger reads, not RED_ONLY, through `ledger` too). */
function run(pairing: Pairing, batches: MeshRequest[][], now = T0, ledger: RequestRollupRow[] = []): RequestRollupRow[] {
  const rows: RequestRollupRow[] = [];
  for (const batch of batches) {
    const plan = pairing.plan(batch, batch.map(contributionOf), now);
    rows.push(...plan.rows);
    ledger.push(...plan.rows.filter((r) => r.outcome !== RED_ONLY.outcome));
    pairing.commit(plan, now);
  }
  return rows;
}

/** Ledger rows summed per (subset, port, protocol, outcome, deny reason, policy, rule), zero sums left out. */
function ledgerTotals(rows: RequestRollupRow[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of rows) {
    expect(r.reporter).toBe('all');
    const k = [r.sourceWorkload, r.destinationSubset, r.destinationPort, r.protocol, r.outcome, r.denyReason, r.policy, r.rule].join('|');
    out[k] = (out[k] ?? 0) + r.requests;
  }
  for (const [k, n] of Object.entries(out)) if (n === 0) delete out[k];
  return out;
}

describe('Pairing', () => {
  const s = record('source', 'a');
  const d = record('destination', 'a');
  const denied = record('destination', 'a', { outcome: 'denied', denyReason: 'rbac', responseCode: 403 });

  it.each([
    ['in one batch, source first', [[s, d]]],
    ['in one batch, destination first', [[d, s]]],
    ['source in an earlier batch', [[s], [d]]],
    ['destination in an earlier batch', [[d], [s]]],
  ])('counts a request both sides reported once, with the source subset: %s', (_, batches) => {
    const pairing = new Pairing();
    expect(totals(run(pairing, batches))).toEqual({ v2: { requests: 1, errors: 0, denied: 0 } });
    expect(pairing.waiting).toBe(0);
  });

  it('takes the destination verdict when it denied the request, and its subset when the source names none', () => {
    expect(totals(run(new Pairing(), [[record('source', 'a', { responseCode: 403 })], [denied]]))).toEqual({ v2: { requests: 1, errors: 0, denied: 1 } });
    const unnamed = record('source', 'b', { destinationSubset: '', outcome: 'error', responseCode: 503 });
    expect(totals(run(new Pairing(), [[record('destination', 'b', { destinationSubset: 'v1' })], [unnamed]]))).toEqual({ v1: { requests: 1, errors: 1, denied: 0 } });
  });

  it('keeps the ledger rows of the joined view by the same rules: the source names, port and protocol, the destination verdict details when it denied', () => {
    const client = record('source', 'a', { destinationPort: 9080, protocol: 'http', responseCode: 403 });
    const server = record('destination', 'a', {
      sourceWorkload: 'unknown',
      destinationPort: 0,
      protocol: 'unknown',
      outcome: 'denied',
      denyReason: 'rbac',
      policy: 'default/deny-productpage',
      rule: 2,
      responseCode: 403,
    });
    const alone = record('destination', 'b', { sourceWorkload: 'unknown', destinationPort: 9080, protocol: 'http' });
    for (const batches of [[[client, server, alone]], [[server], [alone, client]]]) {
      const ledger: RequestRollupRow[] = [];
      run(new Pairing(), batches, T0, ledger);
      expect(ledgerTotals(ledger)).toEqual({
        'productpage-v1|v2|9080|http|denied|rbac|default/deny-productpage|2': 1,
        'unknown||9080|http|ok|||-1': 1,
      });
    }
    // A client-side denial (no server record) keeps its own details; a server that allowed leaves the client's verdict.
    const blackhole = record('source', 'c', { outcome: 'denied', denyReason: 'blackhole', protocol: 'tcp', destinationPort: 3306 });
    const failed = record('source', 'd', { outcome: 'error', responseCode: 503 });
    const ledger: RequestRollupRow[] = [];
    run(new Pairing(), [[blackhole, failed], [record('destination', 'd', { responseCode: 200 })]], T0, ledger);
    expect(ledgerTotals(ledger)).toEqual({ 'productpage-v1|v2|3306|tcp|denied|blackhole||-1': 1, 'productpage-v1|v2|0|unknown|error|||-1': 1 });
  });

  it('pairs one to one: one client record and four server attempts are four requests; other hops and ids stay apart', () => {
    const attempts = [1, 2, 3, 4].map(() => record('destination', 'r', { outcome: 'error', responseCode: 503 }));
    const client = record('source', 'r', { outcome: 'error', responseCode: 503 });
    const otherHop = record('destination', 'r', { destinationService: 'ratings', destinationHost: 'ratings.default.svc.cluster.local' });
    const rows = run(new Pairing(), [[attempts[0] as MeshRequest, attempts[1] as MeshRequest], [client, otherHop], [attempts[2] as MeshRequest, attempts[3] as MeshRequest]]);
    expect(totals(rows)).toEqual({ v2: { requests: 1, errors: 1, denied: 0 }, '': { requests: 4, errors: 3, denied: 0 } });
  });

  it('counts records without a request id or with reporter unknown as they are, and never holds them', () => {
    const pairing = new Pairing();
    const rows = run(pairing, [[record('source', ''), record('destination', ''), { ...record('source', 'x'), reporter: 'unknown' }]]);
    expect(totals(rows)).toEqual({ v2: { requests: 2, errors: 0, denied: 0 }, '': { requests: 1, errors: 0, denied: 0 } });
    expect(pairing.waiting).toBe(0);
  });

  it('changes nothing until a plan is committed: a retried batch gets the same rows', () => {
    const pairing = new Pairing();
    run(pairing, [[s]]);
    const first = pairing.plan([d], [contributionOf(d)], T0);
    const again = pairing.plan([d], [contributionOf(d)], T0);
    expect(again.rows).toEqual(first.rows);
    pairing.commit(again, T0);
    expect(pairing.waiting).toBe(0);
  });

  it('lets a record give up after the pairing window, or when too many wait (oldest first), and counts it as its side saw it', () => {
    const windowed = new Pairing();
    run(windowed, [[s]], T0);
    run(windowed, [[]], T0 + PAIRING_WINDOW_MS);
    expect(windowed.waiting).toBe(0);
    expect(totals(run(windowed, [[d]], T0 + PAIRING_WINDOW_MS))).toEqual({ '': { requests: 1, errors: 0, denied: 0 } });

    const bounded = new Pairing(2);
    run(bounded, [[record('source', 'p'), record('source', 'q'), record('source', 'r')]]);
    expect([bounded.waiting, bounded.evicted]).toEqual([2, 1]);
    expect(totals(run(bounded, [[record('destination', 'p')]]))).toEqual({ '': { requests: 1, errors: 0, denied: 0 } });
  });

  it('keeps what waits across a save and a load', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshlens-pairing-'));
    try {
      const before = new Pairing();
      run(before, [[s]]);
      await before.save(join(dir, 'pairing.json'));
      const after = new Pairing();
      expect(await after.load(join(dir, 'pairing.json'), T0)).toBe(1);
      expect(await new Pairing().load(join(dir, 'missing.json'), T0)).toBe(0);
      const rows = run(after, [[d]]);
      // The source record counted before the restart; the pair takes its place, so nothing is added now (without
      // the saved record the destination's would count as a second request).
      expect(totals(rows)).toEqual({});
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('loads a file saved before the ledger existed: its records pair in the joined view, and their pairs leave the ledger as migration 007 filled it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshlens-pairing-'));
    try {
      // What the previous version saved: a contribution without port, protocol or verdict details.
      const { destinationPort, protocol, denyReason, policy, rule, ...old } = contributionOf(s);
      expect([destinationPort, protocol, denyReason, policy, rule]).toEqual([0, 'unknown', '', '', -1]);
      const file = join(dir, 'pairing.json');
      writeFileSync(file, JSON.stringify({ version: 1, waiting: [{ requestId: 'a', reporter: 'source', namespace: 'default', service: 'reviews', counted: old, since: T0, done: false }] }));
      const pairing = new Pairing();
      expect(await pairing.load(file, T0)).toBe(1);
      const ledger: RequestRollupRow[] = [];
      expect(totals(run(pairing, [[d]], T0, ledger))).toEqual({});
      expect(ledger).toEqual([]);
      // Saved again, it is a version this one wrote.
      await pairing.save(file);
      expect(await new Pairing().load(file, T0)).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
