/**
 * Cilium Hubble flows → Flow. Accepts what `hubble observe -o json` prints and what the Hubble exporter writes
 * (`{"flow": {...}, "node_name": "...", "time": "..."}`, GetFlowsResponse in protojson) and bare flow objects.
 * Field names follow `flow.proto` (https://github.com/cilium/cilium/blob/main/api/v1/flow/flow.proto); the
 * exporter's field mask can remove any of them (https://docs.cilium.io/en/stable/observability/hubble/configuration/export/),
 * so every field is optional here and a record is refused only when what is left cannot say what happened.
 *
 * Which records become flows (CONTRACT.md §4: a flow is an L3/L4 connection with an allow/deny verdict):
 *
 * | verdict | becomes |
 * |---|---|
 * | `FORWARDED` | allowed |
 * | `REDIRECTED` | allowed, detail `REDIRECTED`: L3/L4 policy admitted the connection and handed it to the L7 proxy; per-request L7 denials arrive as their own `DROPPED` L7 flows |
 * | `AUDIT` | allowed, detail `AUDIT`: policy audit mode let it through ("would have been dropped"); the would-deny policy is kept in `attributes.would_deny_policy`, never as the deciding `policy` |
 * | `DROPPED` + policy drop reason (`POLICY_DENIED` 133, `POLICY_DENY` 181, `AUTH_REQUIRED` 189) | denied, `network_policy` |
 * | `DROPPED` + any other reason (`CT_MAP_INSERTION_FAILED`, `STALE_OR_UNROUTABLE_IP`, `INVALID_SOURCE_IP`...) | rejected `unsupported_record`: a datapath drop is not a policy verdict. Counting it `denied` would blame a policy that decided nothing; counting it `allowed` would be false. The rejection is counted with its reason, so nothing is silent. |
 * | `DROPPED` with no reason left by the field mask | denied when `*_denied_by` names a policy, else rejected `missing_field` (add `drop_reason_desc` to the mask) |
 * | `ERROR`, `TRACED`, `TRANSLATED` | rejected `unsupported_record`: no policy verdict (processing error, observation without verdict, socket-LB translation) |
 *
 * Counting connections once:
 * - `is_reply: true` records (Hubble prints the reply packets of a forwarded connection) are rejected
 *   `unsupported_record`: the connection was counted at its first packet.
 * - Allowed records that are not a connection's first packet (`trace_reason` `ESTABLISHED`/`REPLY`/`RELATED`,
 *   or TCP flags without a bare `SYN`) are rejected the same way. Drops are kept one per packet: each refused
 *   SYN is an attempt the policy refused.
 * - The same first packet can still be seen at two observation points (source and destination node); the
 *   `reporter` (from `traffic_direction`) tells them apart and the aggregator lets the destination's verdict win
 *   (CONTRACT.md §6). Exporting only policy-verdict events and drops (`--type policy-verdict`, `verdict: DROPPED`)
 *   gives exactly one record per decision.
 *
 * L7 flows (`Type: L7`, `l7.http` / `l7.dns` / `l7.kafka`): a `DROPPED` one is Cilium's L7 policy refusing a
 * request or a DNS query (the proxy answers 403 / REFUSED), so it is denied with `network_policy` and
 * `attributes.layer = "L7"`. Other L7 records (requests the proxy let through, DNS lookups) are rejected
 * `unsupported_record`: the connection they ride on is counted by its L3/L4 flow, and requests are the access
 * logs' business.
 */
import type { Flow, Reporter, Result } from '../../../lib/model';
import { UNKNOWN, ok, reject, workloadFromPodName } from '../../../lib/model';
import {
  appLabel,
  emptyFlow,
  labelValue,
  parseRfc3339,
  setClusterDestination,
  setExternalDestination,
  str,
  uint,
} from './flow-common';
import { isObject, type JsonObject } from './json-values';

const VERDICTS = ['VERDICT_UNKNOWN', 'FORWARDED', 'DROPPED', 'ERROR', 'AUDIT', 'REDIRECTED', 'TRACED', 'TRANSLATED'] as const;
type Verdict = (typeof VERDICTS)[number];

/** Drop reasons that are a policy decision (flow.proto `DropReason`). */
const POLICY_DROP_REASONS: ReadonlyMap<number, string> = new Map([
  [133, 'POLICY_DENIED'],
  [181, 'POLICY_DENY'],
  [189, 'AUTH_REQUIRED'],
]);
const POLICY_DROP_NAMES: ReadonlySet<string> = new Set(POLICY_DROP_REASONS.values());
/** Cilium monitor message type of drop notifications: their `sub_type` is the drop reason. */
const MONITOR_DROP = 1;

/** Keys of GetFlowsResponse envelopes that carry something other than a flow. */
export const HUBBLE_NON_FLOW_KEYS = ['node_status', 'lost_events', 'agent_event', 'debug_event'] as const;

function verdictOf(v: unknown): Verdict | undefined {
  if (typeof v === 'string') {
    const up = v.toUpperCase();
    return (VERDICTS as readonly string[]).includes(up) ? (up as Verdict) : undefined;
  }
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < VERDICTS.length) return VERDICTS[v];
  return undefined;
}

/** The drop reason's name from `drop_reason_desc`, the deprecated numeric `drop_reason`, or a drop event's sub-type. */
function dropReasonOf(f: JsonObject): string {
  const desc = f.drop_reason_desc;
  if (typeof desc === 'string' && desc !== '' && desc !== 'DROP_REASON_UNKNOWN') return desc;
  const code = uint(desc) ?? uint(f.drop_reason);
  if (code !== undefined && code !== 0) return POLICY_DROP_REASONS.get(code) ?? `DROP_REASON_${code}`;
  const et = f.event_type;
  if (isObject(et) && uint(et.type) === MONITOR_DROP) {
    const sub = uint(et.sub_type);
    if (sub !== undefined && sub !== 0) return POLICY_DROP_REASONS.get(sub) ?? `DROP_REASON_${sub}`;
  }
  return '';
}

interface PolicyPick {
  policy: string;
  kind: string;
  all: string[];
}

/** `{name, namespace, labels, kind}` entries of `*_allowed_by` / `*_denied_by` → `namespace/name`. */
function policiesOf(list: unknown): PolicyPick | undefined {
  if (!Array.isArray(list) || list.length === 0) return undefined;
  const all: string[] = [];
  let kind = '';
  for (const p of list) {
    if (!isObject(p)) continue;
    const labels = stringArray(p.labels);
    let name = str(p.name) || labelValue(labels, 'io.cilium.k8s.policy.name');
    let ns = str(p.namespace) || labelValue(labels, 'io.cilium.k8s.policy.namespace');
    if (!name) {
      // Cilium's own rules (e.g. allow-localhost-ingress) carry only `reserved:io.cilium.policy.derived-from`.
      name = labelValue(labels, 'io.cilium.policy.derived-from');
      ns = '';
    }
    if (!name) continue;
    all.push(ns ? `${ns}/${name}` : name);
    if (!kind) kind = str(p.kind);
  }
  return all.length > 0 ? { policy: all[0]!, kind, all } : undefined;
}

function stringArray(v: unknown): string[] {
  if (!Array.isArray(v)) return [];
  const out: string[] = [];
  for (const x of v) if (typeof x === 'string') out.push(x);
  return out;
}

/** Pick the policy list of the side that decided (INGRESS → `ingress_*`), else whichever is present. */
function pickPolicies(f: JsonObject, effect: 'allowed' | 'denied', direction: string): PolicyPick | undefined {
  const ingress = policiesOf(f[`ingress_${effect}_by`]);
  const egress = policiesOf(f[`egress_${effect}_by`]);
  if (direction === 'EGRESS') return egress ?? ingress;
  return ingress ?? egress;
}

interface Endpoint {
  workload: string;
  namespace: string;
  /** `reserved:world` → `world`: Cilium's identity for non-pod peers. */
  reserved: string;
}

function endpointOf(e: unknown): Endpoint {
  if (!isObject(e)) return { workload: '', namespace: '', reserved: '' };
  const labels = stringArray(e.labels);
  let reserved = '';
  for (const l of labels) {
    if (l.startsWith('reserved:') && !l.includes('=')) {
      reserved = l.slice(9);
      break;
    }
  }
  let workload = '';
  if (Array.isArray(e.workloads)) {
    for (const w of e.workloads) {
      if (isObject(w) && str(w.name)) {
        workload = str(w.name);
        break;
      }
    }
  }
  if (!workload && str(e.pod_name)) workload = workloadFromPodName(str(e.pod_name));
  if (!workload) workload = appLabel(labels) || reserved;
  return { workload, namespace: str(e.namespace), reserved };
}

/** Whether an allowed record is the first packet of its connection (see the header). */
function opensConnection(f: JsonObject, l4: JsonObject | undefined): boolean {
  const reason = str(f.trace_reason).toUpperCase();
  if (reason === 'ESTABLISHED' || reason === 'REPLY' || reason === 'RELATED') return false;
  if (reason === 'NEW' || reason === 'REOPENED') return true;
  const tcp = l4 && isObject(l4.TCP) ? l4.TCP : undefined;
  if (tcp && isObject(tcp.flags)) {
    const flags = tcp.flags;
    let any = false;
    for (const k in flags) if (flags[k] === true) any = true;
    if (any) return flags.SYN === true && flags.ACK !== true;
  }
  return true; // UDP, ICMP, or flags masked: nothing says it is a later packet
}

interface L4 {
  transport: string;
  sourcePort: number;
  destinationPort: number;
}

const MAX_PORT = 65535;
/** flow.proto's counters are uint32. */
const MAX_UINT32 = 4294967295;

/**
 * A port: absent or null (the exporter's field mask) is 0; present, it must be an integer in 0–65535, since a
 * port outside it is a corrupt record, and keeping it as 0 would quietly file the flow under another port.
 */
function portOf(v: unknown): number | undefined {
  if (v === undefined || v === null) return 0;
  const n = uint(v);
  return n !== undefined && n <= MAX_PORT ? n : undefined;
}

function l4Of(l4: JsonObject | undefined): Result<L4> {
  if (!l4) return ok({ transport: '', sourcePort: 0, destinationPort: 0 });
  for (const [key, transport] of L4_KINDS) {
    const v = l4[key];
    if (isObject(v)) {
      const sourcePort = portOf(v.source_port);
      const destinationPort = portOf(v.destination_port);
      if (sourcePort === undefined) return reject('invalid_number', `l4.${key}.source_port ${JSON.stringify(v.source_port)} is not a port (0–65535)`);
      if (destinationPort === undefined) {
        return reject('invalid_number', `l4.${key}.destination_port ${JSON.stringify(v.destination_port)} is not a port (0–65535)`);
      }
      return ok({ transport, sourcePort, destinationPort });
    }
  }
  return ok({ transport: '', sourcePort: 0, destinationPort: 0 });
}

const AGGREGATE_COUNTS = ['ingress_flow_count', 'egress_flow_count', 'unknown_direction_flow_count'] as const;

/** How many flows an aggregated record stands for (0 when it says none); a count outside uint32 is invalid_number. */
function aggregateCount(aggregate: JsonObject): Result<number> {
  let n = 0;
  for (const k of AGGREGATE_COUNTS) {
    const v = aggregate[k];
    if (v === undefined || v === null) continue;
    const c = uint(v);
    // Each one multiplies what the record counts: a corrupt 9e15 would outweigh every real flow.
    if (c === undefined || c > MAX_UINT32) return reject('invalid_number', `aggregate.${k} ${JSON.stringify(v)} is not a uint32 count`);
    n += c;
  }
  return ok(n);
}

const L4_KINDS: ReadonlyArray<readonly [string, string]> = [
  ['TCP', 'tcp'],
  ['UDP', 'udp'],
  ['SCTP', 'sctp'],
  ['ICMPv4', 'icmp'],
  ['ICMPv6', 'icmp'],
];

function l7KindOf(l7: JsonObject): string {
  if (isObject(l7.http)) return 'http';
  if (isObject(l7.dns)) return 'dns';
  if (isObject(l7.kafka)) return 'kafka';
  return 'l7';
}

export function parseHubbleFlow(obj: Record<string, unknown>): Result<Flow> {
  let f: JsonObject;
  if (obj.flow !== undefined) {
    if (!isObject(obj.flow)) return reject('malformed_json', '"flow" is not a JSON object');
    f = obj.flow;
  } else if (obj.verdict !== undefined) {
    f = obj;
  } else {
    for (const k of HUBBLE_NON_FLOW_KEYS) {
      if (obj[k] !== undefined) return reject('unsupported_record', `Hubble ${k} event, not a flow`);
    }
    return reject('missing_field', 'no "flow" object and no "verdict": not a Hubble flow');
  }

  if (f.verdict === undefined || f.verdict === null) return reject('missing_field', 'flow has no "verdict"');
  const verdict = verdictOf(f.verdict);
  if (verdict === undefined || verdict === 'VERDICT_UNKNOWN') {
    return reject('invalid_field', `unknown Hubble verdict ${JSON.stringify(f.verdict)}`);
  }
  if (verdict === 'ERROR' || verdict === 'TRACED' || verdict === 'TRANSLATED') {
    return reject('unsupported_record', `verdict ${verdict} carries no policy decision`);
  }
  if (f.is_reply === true || (f.is_reply === undefined && f.reply === true)) {
    return reject('unsupported_record', 'reply packet of a connection already counted at its first packet');
  }

  const l4 = isObject(f.l4) ? f.l4 : undefined;
  const l7 = isObject(f.l7) ? f.l7 : undefined;
  const isL7 = str(f.Type) === 'L7' || l7 !== undefined;
  const direction = str(f.traffic_direction).toUpperCase();

  const out = emptyFlow();
  const attrs = out.attributes;
  if (verdict === 'DROPPED') {
    const reason = dropReasonOf(f);
    const deniedBy = pickPolicies(f, 'denied', direction);
    if (isL7) {
      // The L7 proxy refused a request or DNS query (https://docs.cilium.io/en/stable/security/policy/language/#layer-7-examples).
      out.detail = reason || 'DROPPED';
    } else if (reason) {
      if (!POLICY_DROP_NAMES.has(reason)) {
        return reject('unsupported_record', `DROPPED for ${reason}: a datapath drop, not a policy verdict`);
      }
      out.detail = reason;
    } else if (deniedBy) {
      out.detail = 'DROPPED';
    } else {
      return reject('missing_field', 'DROPPED flow without drop_reason_desc: cannot tell a policy drop from a datapath drop');
    }
    out.verdict = 'denied';
    out.denyReason = 'network_policy';
    if (deniedBy) {
      out.policy = deniedBy.policy;
      if (deniedBy.kind) attrs.policy_kind = deniedBy.kind;
      if (deniedBy.all.length > 1) attrs.policies = deniedBy.all.join(',');
    }
  } else {
    // FORWARDED, REDIRECTED, AUDIT: the traffic went through.
    if (isL7) {
      const kind = l7 ? l7KindOf(l7) : 'l7';
      return reject('unsupported_record', `L7 ${kind} record with verdict ${verdict}: requests are counted from access logs, connections from L3/L4 flows`);
    }
    if (!opensConnection(f, l4)) {
      return reject('unsupported_record', 'later packet of a connection already counted at its first packet');
    }
    out.verdict = 'allowed';
    out.detail = verdict;
    const allowedBy = pickPolicies(f, 'allowed', direction);
    if (allowedBy) {
      out.policy = allowedBy.policy;
      if (allowedBy.kind) attrs.policy_kind = allowedBy.kind;
      if (allowedBy.all.length > 1) attrs.policies = allowedBy.all.join(',');
    }
    if (verdict === 'AUDIT') {
      const wouldDeny = pickPolicies(f, 'denied', direction);
      if (wouldDeny) attrs.would_deny_policy = wouldDeny.all.join(',');
    }
  }

  const timeText = str(f.time) || str(obj.time);
  if (!timeText) return reject('missing_field', 'flow has no "time"');
  const t = parseRfc3339(timeText);
  if (t === undefined) return reject('invalid_timestamp', `"time" ${JSON.stringify(timeText)} is not RFC 3339`);
  out.startTimeMs = t;

  out.reporter = reporterOf(direction);

  const src = endpointOf(f.source);
  const dst = endpointOf(f.destination);
  out.sourceWorkload = src.workload || UNKNOWN;
  out.sourceNamespace = src.namespace || UNKNOWN;
  out.destinationWorkload = dst.workload || UNKNOWN;

  const ip = isObject(f.IP) ? f.IP : undefined;
  if (ip) {
    out.sourceAddress = str(ip.source);
    out.destinationAddress = str(ip.destination);
  }
  const l4Fields = l4Of(l4);
  if (!l4Fields.ok) return l4Fields;
  const ports = l4Fields.value;
  out.transport = ports.transport;
  out.destinationPort = ports.destinationPort;
  if (ports.sourcePort !== 0) attrs.source_port = String(ports.sourcePort);

  const svc = isObject(f.destination_service) ? f.destination_service : undefined;
  const svcName = svc ? str(svc.name) : '';
  const svcNamespace = svc ? str(svc.namespace) : '';
  if (svcName) {
    setClusterDestination(out, svcName, svcNamespace || dst.namespace, dst.workload);
  } else if (dst.namespace) {
    setClusterDestination(out, '', dst.namespace, dst.workload);
  } else {
    // Outside the cluster, or a node: the DNS name Cilium learnt for the IP, else the identity (`world`,
    // `host`, `kube-apiserver`), which keeps the set of external destinations bounded; the IP stays in
    // destinationAddress. With labels masked away, the IP is all there is.
    const names = stringArray(f.destination_names);
    setExternalDestination(out, names[0] || dst.reserved || out.destinationAddress || UNKNOWN);
  }

  const aggregate = isObject(f.aggregate) ? f.aggregate : undefined;
  if (aggregate) {
    const n = aggregateCount(aggregate);
    if (!n.ok) return n;
    if (n.value > 0) out.count = n.value;
  }

  attrs.layer = isL7 ? 'L7' : 'L3_L4';
  if (isL7 && l7) attrs.l7_protocol = l7KindOf(l7);
  const node = str(f.node_name) || str(obj.node_name);
  if (node) attrs.node = node;
  const uuid = str(f.uuid);
  if (uuid) attrs.uuid = uuid;
  return ok(out);
}

function reporterOf(direction: string): Reporter {
  // INGRESS: the verdict was taken where the traffic enters the destination endpoint.
  if (direction === 'INGRESS') return 'destination';
  if (direction === 'EGRESS') return 'source';
  return 'unknown';
}
