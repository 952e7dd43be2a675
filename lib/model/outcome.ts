/**
 * The outcome and deny-reason rules of CONTRACT.md §4. Denials set no response flag in Envoy
 * (envoyproxy/envoy#21197), so they are read from the details columns; see telemetry-formats.md §4.
 */
import * as clusters from './cluster';
import * as flagRules from './flags';
import type { DenyReason, MeshRequest, Outcome } from './records';

// Bound once at load: CommonJS re-exports compile to property getters, and classifyOutcome runs once per line.
const { BLACKHOLE_CLUSTER, stripAltStatSuffix } = clusters;
const { hasFlag, hasMeshFailureFlag } = flagRules;

const RBAC_DENIED_PREFIX = 'rbac_access_denied_matched_policy[';
/** Istio's HTTP route that answers 502 for unknown hosts under `REGISTRY_ONLY` (the HTTP face of BlackHoleCluster). */
export const BLACKHOLE_ROUTE = 'block_all';

export interface PolicyRef {
  /** `<namespace>/<name>` for Istio ids, the raw id for other Envoy RBAC policy names, '' for `none`. */
  policy: string;
  /** Rule index, -1 when not named. */
  rule: number;
}

/**
 * `rbac_access_denied_matched_policy[ns[shop]-policy[deny-legacy]-rule[1]]` → `shop/deny-legacy`, rule 1
 * (Istio's id form from istio/proxy#3100); `...[none]` → no policy. Returns undefined when `details` is not
 * an RBAC denial.
 */
export function parseRbacDenial(details: string): PolicyRef | undefined {
  if (!details.startsWith(RBAC_DENIED_PREFIX) || details.charCodeAt(details.length - 1) !== 93 /* ] */) {
    return undefined;
  }
  const id = details.slice(RBAC_DENIED_PREFIX.length, -1);
  if (id === 'none' || id.length === 0) return { policy: '', rule: -1 };
  if (id.startsWith('ns[')) {
    const nsEnd = id.indexOf(']-policy[', 3);
    const ruleAt = id.lastIndexOf(']-rule[');
    if (nsEnd > 3 && ruleAt > nsEnd && id.charCodeAt(id.length - 1) === 93) {
      const ns = id.slice(3, nsEnd);
      const name = id.slice(nsEnd + 9, ruleAt);
      const ruleText = id.slice(ruleAt + 7, -1);
      const rule = /^\d{1,6}$/.test(ruleText) ? Number(ruleText) : -1;
      return { policy: `${ns}/${name}`, rule };
    }
  }
  return { policy: id, rule: -1 };
}

interface Classified {
  outcome: Outcome;
  denyReason: DenyReason;
  policy: string;
  rule: number;
}

/** Fields of a request that decide its outcome. */
export type OutcomeInput = Pick<
  MeshRequest,
  'responseCode' | 'responseFlags' | 'responseCodeDetails' | 'connectionTerminationDetails' | 'upstreamCluster' | 'routeName'
>;

// The verdicts that name no policy are the same every time: one frozen object each, not one per record.
const EXT_AUTHZ: Readonly<Classified> = Object.freeze({ outcome: 'denied', denyReason: 'ext_authz', policy: '', rule: -1 });
const BLACKHOLE: Readonly<Classified> = Object.freeze({ outcome: 'denied', denyReason: 'blackhole', policy: '', rule: -1 });
const ERROR: Readonly<Classified> = Object.freeze({ outcome: 'error', denyReason: '', policy: '', rule: -1 });
const OK: Readonly<Classified> = Object.freeze({ outcome: 'ok', denyReason: '', policy: '', rule: -1 });

export function classifyOutcome(r: OutcomeInput): Readonly<Classified> {
  const rbac = parseRbacDenial(r.responseCodeDetails) ?? parseRbacDenial(r.connectionTerminationDetails);
  if (rbac) return { outcome: 'denied', denyReason: 'rbac', policy: rbac.policy, rule: rbac.rule };
  // UAEX is also set when a fail-closed authorizer errors (`ext_authz_error`): the request was still refused
  // by the authorization step, so CONTRACT.md §4 counts it as an ext_authz denial.
  if (hasFlag(r.responseFlags, 'UAEX') || r.responseCodeDetails === 'ext_authz_denied') return EXT_AUTHZ;
  // `BlackHoleCluster;` (Istio ≥ 1.22 alt_stat_name) is the same cluster; finishRequest already treats it so.
  if (stripAltStatSuffix(r.upstreamCluster) === BLACKHOLE_CLUSTER || r.routeName === BLACKHOLE_ROUTE) return BLACKHOLE;
  const code = r.responseCode;
  if (code >= 500 || (code === 0 && !hasFlag(r.responseFlags, 'DC') && hasMeshFailureFlag(r.responseFlags))) return ERROR;
  return OK;
}

/** Classify `r` in place (the parsers' hot path: no intermediate record). */
export function applyOutcome(r: MeshRequest): MeshRequest {
  const c = classifyOutcome(r);
  r.outcome = c.outcome;
  r.denyReason = c.denyReason;
  r.policy = c.policy;
  r.rule = c.rule;
  return r;
}
