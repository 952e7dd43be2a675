/**
 * After every phase: did meshlens store and count what it acknowledged? With MESHLENS_RAW_REQUESTS below 1 the
 * raw `requests` table keeps only some `ok` rows, so "every line is a raw row" is no longer the test. What must
 * hold in every mode:
 * - the `requests_rollup_1m` rollup (each side's own rows) and `meshlens_requests_total` count every accepted line;
 * - every `error` and `denied` record is a raw row (they are always kept);
 * - with the share at 1, every `ok` record is a raw row too; at 0, an `ok` raw row is allowed only beside an
 *   error/denied row of the same request id (rows are kept per request, so a denied request's other rows may
 *   come along), and a build that ignores the setting (every `ok` row kept) is reported as such, not failed:
 *   its figures then include raw rows, and the bench says so.
 * The expected outcome split comes from the simulator's ground truth when the phase sent exactly the lines it
 * generated; otherwise from /metrics' `outcome` label, checked against the rollup's own error and denied counts.
 */
import type { OutcomeCounts, VerifyResult } from './server';

export interface StoredCheck {
  /** Empty when everything checked out. */
  problems: string[];
  /** `all`: every `ok` record is a raw row; `sampled`: some or none are. */
  rawRows: 'all' | 'sampled';
  /** Share of `ok` records stored as raw rows. */
  okStoredShare: number;
  /** Raw `ok` rows kept beside an error/denied row of their request. */
  okKeptWithTheirRequest: number;
}

export function checkStored(v: VerifyResult, accepted: number, rawShare: number, truth?: OutcomeCounts): StoredCheck {
  const problems: string[] = [];
  const expectEq = (what: string, got: number, want: number): void => {
    if (got !== want) problems.push(`${what} is ${got}, expected ${want}`);
  };
  if (v.ingest.rejected > 0) problems.push(`${v.ingest.rejected} records rejected`);
  expectEq('meshlens_ingest_records_total{outcome="accepted"}', v.ingest.accepted, accepted);
  expectEq('requests_rollup_1m requests', v.rollup.requests, accepted);
  expectEq('meshlens_requests_total (sum)', v.metrics.total, accepted);
  const want: OutcomeCounts = truth ?? { ok: v.metrics.ok, error: v.metrics.error, denied: v.metrics.denied };
  if (truth) {
    expectEq('meshlens_requests_total{outcome="error"}', v.metrics.error, truth.error);
    expectEq('meshlens_requests_total{outcome="denied"}', v.metrics.denied, truth.denied);
  }
  expectEq('requests_rollup_1m errors', v.rollup.errors, want.error);
  expectEq('requests_rollup_1m denied', v.rollup.denied, want.denied);
  expectEq('raw error rows', v.raw.error, want.error);
  expectEq('raw denied rows', v.raw.denied, want.denied);
  const okRecords = accepted - want.error - want.denied;
  if (v.raw.rows !== v.raw.ok + v.raw.error + v.raw.denied) problems.push(`${v.raw.rows - v.raw.ok - v.raw.error - v.raw.denied} raw rows with another outcome`);
  let rawRows: StoredCheck['rawRows'] = v.raw.ok === okRecords ? 'all' : 'sampled';
  if (rawShare >= 1) {
    expectEq('raw ok rows (MESHLENS_RAW_REQUESTS=1)', v.raw.ok, okRecords);
  } else if (v.raw.ok > okRecords) {
    problems.push(`${v.raw.ok} raw ok rows for ${okRecords} ok records`);
  } else if (rawShare <= 0 && rawRows === 'sampled' && v.raw.ok !== v.rawOkWithNonOkPartner) {
    problems.push(`${v.raw.ok - v.rawOkWithNonOkPartner} raw ok rows stored with MESHLENS_RAW_REQUESTS=0 that belong to no error/denied request`);
  }
  if (okRecords === 0) rawRows = 'all';
  return {
    problems,
    rawRows,
    okStoredShare: okRecords > 0 ? v.raw.ok / okRecords : 1,
    okKeptWithTheirRequest: v.rawOkWithNonOkPartner,
  };
}
