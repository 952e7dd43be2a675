/**
 * Calico flow logs → Flow. Two shapes:
 *
 * - **Calico Enterprise / Cloud** flow logs, one JSON object per line in `/var/log/calico/flowlogs/flows.log`
 *   and the `tigera_secure_ee_flows*` index (https://docs.tigera.io/calico-enterprise/latest/visibility/elastic/flow/datatypes):
 *   `action` `allow`/`deny`, `reporter` `src`/`dst`, epoch-second `start_time`, `source_*`/`dest_*`,
 *   `dest_service_*`, `policies.all_policies` entries `"<index>|<tier>|<namespace>/<tier>.<policy>|<action>|<ruleIndex>"`
 *   (older releases: the same without `|<ruleIndex>`),
 *   `num_flows`, byte and packet counters, aggregated names ending in `*`.
 * - **Calico Open Source 3.30+ Goldmane / Whisker** flows (https://github.com/projectcalico/calico/blob/master/goldmane/proto/api.proto):
 *   `action` `Allow`/`Deny`/`Pass`, `reporter` `Src`/`Dst`, RFC 3339 or epoch `start_time`, `policies.enforced[]`
 *   of `{kind, name, namespace, tier, action, policy_index, rule_index, trigger}`. The protojson form, with the
 *   identity under `key` and lowerCamel names, is read too.
 *
 * Decisions:
 * - The deciding policy is the enforced entry whose action is the flow's own action (`allow`/`deny`) with the
 *   highest evaluation index (ties: the later entry). Tiers are evaluated in index order and a `pass` hands the
 *   decision to the next tier, so the highest-index terminal action is the one that took effect. The tier
 *   prefix is stripped from the name (`hipstershop/app-hipstershop.checkoutservice` → `hipstershop/checkoutservice`,
 *   Kubernetes policies `ns/knp.default.x` → `ns/x`); global policies have no namespace.
 * - `ruleIndex` `-1` (Enterprise) and Goldmane's `EndOfTier` hit mean the tier's default action decided: `rule`
 *   is -1, `attributes.end_of_tier = "true"`, and the policy is the one named by the entry (Enterprise) or the
 *   `trigger` that made the endpoint subject to the tier (Goldmane).
 * - A profile (`__PROFILE__.kns.default`, Goldmane kind `Profile`) is Calico's per-namespace default when no
 *   policy selected the endpoint: it is not a policy anyone wrote, so `policy` stays '' and
 *   `attributes.profile` names it.
 * - A record whose own `action` is `pass`/`Pass` is rejected `unsupported_record`: pass defers the decision
 *   to a later tier, so the record holds no final allow/deny verdict to count.
 * - `num_flows` (Enterprise) or `num_connections_started` (Goldmane) is the count, at least 1.
 */
import type { Flow, Reporter, Result } from '../../../lib/model';
import { UNKNOWN, ok, reject } from '../../../lib/model';
import {
  appLabel,
  emptyFlow,
  int,
  labelValue,
  parseRfc3339,
  setClusterDestination,
  setExternalDestination,
  str,
  transportName,
  uint,
  workloadFromName,
} from './flow-common';
import { isObject, type JsonObject } from './json-values';

/** The Calico tier name of profiles in Enterprise policy strings. */
const PROFILE_TIER = '__PROFILE__';

interface Hit {
  index: number;
  tier: string;
  /** `namespace/name` or `name`, tier prefix stripped; '' for profiles. */
  policy: string;
  profile: string;
  kind: string;
  action: string;
  rule: number;
  endOfTier: boolean;
}

/** A field from the protojson `key`, then from the record itself, under its snake_case or lowerCamel name. */
function field(k: JsonObject, obj: JsonObject, snake: string, camel: string): unknown {
  const v = k[snake] ?? k[camel];
  if (v !== undefined && v !== null) return v;
  return obj[snake] ?? obj[camel];
}

/** Enterprise `{labels: [...]}`, a bare array, or Goldmane's `"a=b | c=d"` string → `["a=b", "c=d"]`. */
function labelsOf(v: unknown): string[] {
  if (isObject(v)) return labelsOf(v.labels);
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  if (typeof v === 'string' && v.length > 0 && v !== '-') {
    const out: string[] = [];
    for (const part of v.split('|')) {
      const t = part.trim();
      if (t) out.push(t);
    }
    return out;
  }
  return [];
}

/** Strip `<tier>.` (and Kubernetes NetworkPolicy's `knp.default.`) from a policy's local name. */
function stripTier(local: string, tier: string): string {
  if (local.startsWith('knp.default.')) return local.slice(12);
  if (tier && local.length > tier.length + 1 && local.startsWith(tier) && local.charCodeAt(tier.length) === 46 /* . */) {
    return local.slice(tier.length + 1);
  }
  return local;
}

function qualified(namespace: string, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

/**
 * An Enterprise policy string → Hit. Two spellings (Calico's own reader, `PolicyHitFromFlowLogPolicyString` in
 * projectcalico/calico lma/pkg/api, accepts exactly these and nothing else):
 * - 5 fields `index|tier|name|action|rule`: `1|app-hipstershop|hipstershop/app-hipstershop.checkoutservice|deny|-1`.
 *   Rule `-1` is the tier's end (its default deny); `-` is an unknown rule index, not the end of a tier.
 * - 4 fields `index|tier|name|action`, written by releases before the rule index existed (the Calico Enterprise
 *   3.14 docs' records: `0|default|policy-demo/default.access-nginx|allow`): the rule is unknown, so -1, and
 *   nothing says whether a rule or the end of the tier decided (issue 9: these lost their policy name).
 * Scanned with indexOf: one string per record in the flow path, no intermediate array.
 */
function parsePolicyString(s: string, position: number): Hit | undefined {
  const p1 = s.indexOf('|');
  const p2 = p1 < 0 ? -1 : s.indexOf('|', p1 + 1);
  const p3 = p2 < 0 ? -1 : s.indexOf('|', p2 + 1);
  if (p3 < 0) return undefined;
  const p4 = s.indexOf('|', p3 + 1);
  if (p4 >= 0 && s.indexOf('|', p4 + 1) >= 0) return undefined;
  const tier = s.slice(p1 + 1, p2);
  const rawName = s.slice(p2 + 1, p3);
  const action = (p4 < 0 ? s.slice(p3 + 1) : s.slice(p3 + 1, p4)).toLowerCase();
  const index = int(s.slice(0, p1)) ?? position;
  const ruleIndex = p4 < 0 ? undefined : int(s.slice(p4 + 1));
  const rule = ruleIndex !== undefined && ruleIndex >= 0 ? ruleIndex : -1;
  const hit: Hit = { index, tier, policy: '', profile: '', kind: '', action, rule, endOfTier: ruleIndex === -1 };
  if (tier === PROFILE_TIER) {
    hit.profile = rawName.startsWith(PROFILE_TIER + '.') ? rawName.slice(PROFILE_TIER.length + 1) : rawName;
    hit.kind = 'Profile';
    hit.endOfTier = false;
    return hit;
  }
  const slash = rawName.indexOf('/');
  const namespace = slash >= 0 ? rawName.slice(0, slash) : '';
  const local = slash >= 0 ? rawName.slice(slash + 1) : rawName;
  if (local.startsWith('knp.default.')) hit.kind = 'NetworkPolicy';
  hit.policy = qualified(namespace, stripTier(local, tier));
  return hit;
}

/** Goldmane `PolicyHit` `{kind, name, namespace, tier, action, policy_index, rule_index, trigger}` → Hit. */
function parsePolicyHit(h: JsonObject, position: number): Hit {
  const kind = str(h.kind);
  const tier = str(h.tier);
  const index = int(h.policy_index ?? h.policyIndex) ?? position;
  const rule = int(h.rule_index ?? h.ruleIndex) ?? -1;
  const hit: Hit = { index, tier, policy: '', profile: '', kind, action: str(h.action).toLowerCase(), rule, endOfTier: false };
  if (kind === 'Profile') {
    hit.profile = str(h.name);
    return hit;
  }
  let source: JsonObject = h;
  if (kind === 'EndOfTier') {
    hit.endOfTier = true;
    hit.rule = -1;
    if (isObject(h.trigger)) source = h.trigger;
  } else if (rule === -1) {
    hit.endOfTier = true;
  }
  const name = str(source.name);
  if (name) hit.policy = qualified(str(source.namespace), stripTier(name, str(source.tier) || tier));
  return hit;
}

function hitsOf(policies: unknown): Hit[] {
  if (!isObject(policies)) return [];
  const list = policies.all_policies ?? policies.enforced ?? policies.enforced_policies ?? policies.enforcedPolicies ?? policies.allPolicies;
  if (!Array.isArray(list)) return [];
  const hits: Hit[] = [];
  for (let i = 0; i < list.length; i++) {
    const e = list[i];
    if (typeof e === 'string') {
      const h = parsePolicyString(e, i);
      if (h) hits.push(h);
    } else if (isObject(e)) {
      hits.push(parsePolicyHit(e, i));
    }
  }
  return hits;
}

/** The entry that took effect: the flow's own action, highest evaluation index, later entry on ties. */
function decidingHit(hits: readonly Hit[], action: string): Hit | undefined {
  let best: Hit | undefined;
  for (const h of hits) {
    if (h.action !== action) continue;
    if (!best || h.index >= best.index) best = h;
  }
  return best;
}

/**
 * Start time → Unix ms. Enterprise writes epoch seconds; Goldmane's REST/Whisker form RFC 3339; protojson an
 * int64 string. A number above 1e11 cannot be seconds (year 5138) and is taken as milliseconds.
 */
function timeOf(v: unknown): number | undefined | 'invalid' {
  if (v === undefined || v === null || v === '' || v === '-') return undefined;
  if (typeof v === 'string' && !/^\d+$/.test(v)) return parseRfc3339(v) ?? 'invalid';
  const n = uint(v);
  if (n === undefined || n === 0) return 'invalid';
  return n > 1e11 ? n : n * 1000;
}

interface Side {
  name: string;
  namespace: string;
  type: string;
  labels: string[];
}

function sideOf(k: JsonObject, obj: JsonObject, prefix: 'source' | 'dest', camel: 'source' | 'dest'): Side {
  const name = str(field(k, obj, `${prefix}_name`, `${camel}Name`));
  const aggr = str(field(k, obj, `${prefix}_name_aggr`, `${camel}NameAggr`));
  return {
    name: name || aggr,
    namespace: str(field(k, obj, `${prefix}_namespace`, `${camel}Namespace`)),
    type: str(field(k, obj, `${prefix}_type`, `${camel}Type`)).toLowerCase(),
    labels: labelsOf(field(k, obj, `${prefix}_labels`, `${camel}Labels`)),
  };
}

/** Workload endpoints (`wep`, Goldmane `WorkloadEndpoint`) are pods; hosts, network sets and networks keep their name. */
function workloadOf(side: Side): string {
  if (!side.name) return appLabel(side.labels);
  const isPod = side.type === '' || side.type === 'wep' || side.type === 'workloadendpoint';
  if (!isPod) return side.name;
  return workloadFromName(side.name, labelValue(side.labels, 'pod-template-hash')) || appLabel(side.labels);
}

function reporterOf(v: string): Reporter {
  const r = v.toLowerCase();
  if (r === 'src') return 'source';
  if (r === 'dst') return 'destination';
  return 'unknown';
}

export function parseCalicoFlow(obj: Record<string, unknown>): Result<Flow> {
  const k: JsonObject = isObject(obj.key) ? obj.key : obj;
  const rawAction = field(k, obj, 'action', 'action');
  if (rawAction === undefined || rawAction === null || rawAction === '') return reject('missing_field', 'flow log has no "action"');
  const action = typeof rawAction === 'string' ? rawAction.toLowerCase() : '';
  if (action === 'pass') {
    return reject('unsupported_record', 'action "pass" defers to a later tier: the record holds no final allow/deny verdict');
  }
  if (action !== 'allow' && action !== 'deny') return reject('invalid_field', `unknown Calico action ${JSON.stringify(rawAction)}`);

  const t = timeOf(field(k, obj, 'start_time', 'startTime'));
  if (t === undefined) return reject('missing_field', 'flow log has no "start_time"');
  if (t === 'invalid') return reject('invalid_timestamp', `"start_time" ${JSON.stringify(field(k, obj, 'start_time', 'startTime'))} is neither epoch seconds nor RFC 3339`);

  const f: Flow = emptyFlow();
  const attrs = f.attributes;
  f.startTimeMs = t;
  f.verdict = action === 'allow' ? 'allowed' : 'denied';
  f.denyReason = action === 'deny' ? 'network_policy' : '';
  f.detail = action;
  f.reporter = reporterOf(str(field(k, obj, 'reporter', 'reporter')));

  const hit = decidingHit(hitsOf(field(k, obj, 'policies', 'policies')), action);
  if (hit) {
    f.policy = hit.policy;
    f.rule = hit.endOfTier || hit.profile ? -1 : hit.rule;
    if (hit.endOfTier) attrs.end_of_tier = 'true';
    if (hit.profile) attrs.profile = hit.profile;
    if (hit.tier && hit.tier !== PROFILE_TIER) attrs.tier = hit.tier;
    if (hit.kind) attrs.policy_kind = hit.kind;
  }

  const src = sideOf(k, obj, 'source', 'source');
  const dst = sideOf(k, obj, 'dest', 'dest');
  f.sourceWorkload = workloadOf(src) || UNKNOWN;
  f.sourceNamespace = src.namespace || UNKNOWN;
  f.destinationWorkload = workloadOf(dst) || UNKNOWN;
  f.sourceAddress = str(obj.source_ip);
  f.destinationAddress = str(obj.dest_ip);
  if (src.type) attrs.source_type = src.type;
  if (dst.type) attrs.dest_type = dst.type;

  f.destinationPort = uint(field(k, obj, 'dest_port', 'destPort')) ?? 0;
  f.transport = transportName(field(k, obj, 'proto', 'proto') ?? field(k, obj, 'protocol', 'protocol'));
  const sourcePort = uint(obj.source_port);
  if (sourcePort) attrs.source_port = String(sourcePort);

  const svcName = str(field(k, obj, 'dest_service_name', 'destServiceName'));
  const svcNamespace = str(field(k, obj, 'dest_service_namespace', 'destServiceNamespace'));
  if (svcName) {
    setClusterDestination(f, svcName, svcNamespace || dst.namespace, f.destinationWorkload);
  } else if (dst.namespace) {
    setClusterDestination(f, '', dst.namespace, f.destinationWorkload);
  } else {
    const domains = field(k, obj, 'dest_domains', 'destDomains');
    const domain = Array.isArray(domains) && typeof domains[0] === 'string' ? domains[0] : '';
    setExternalDestination(f, domain || dst.name || f.destinationAddress || UNKNOWN);
  }

  const flows = uint(obj.num_flows) ?? uint(obj.num_connections_started ?? obj.numConnectionsStarted);
  f.count = flows !== undefined && flows > 0 ? flows : 1;
  f.bytes = (uint(obj.bytes_in ?? obj.bytesIn) ?? 0) + (uint(obj.bytes_out ?? obj.bytesOut) ?? 0);
  f.packets = (uint(obj.packets_in ?? obj.packetsIn) ?? 0) + (uint(obj.packets_out ?? obj.packetsOut) ?? 0);
  const host = str(obj.host);
  if (host) attrs.node = host;
  return ok(f);
}
