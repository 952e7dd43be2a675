import { parseHubbleFlow } from './hubble';
import { accepted, records, rejection } from './flows.testutil';

/** Real records (test/fixtures/SOURCES.md, "Flows"), in file order. */
const [ICMP_INVALID_SOURCE, XWING_POLICY_DENIED, APISERVER_REPLY, HOST_TO_WORLD_SYN, HOST_TO_WORLD_ESTABLISHED, EGRESS_POLICY_DENY, AUDIT_TO_APISERVER] =
  records('hubble.ndjson') as [Record<string, unknown>, ...Record<string, unknown>[]];
/** Derived records, each from a real one (SOURCES.md says how). */
const [
  DROP_EVENT_SUBTYPE,
  NUMERIC_DROP_REASON,
  CT_MAP_DROP,
  INGRESS_ALLOWED_BY,
  L7_HTTP_DROPPED,
  L7_HTTP_RESPONSE,
  L7_DNS,
  VERDICT_ERROR,
  VERDICT_TRANSLATED,
  BARE_FLOW,
  AUTH_REQUIRED,
  NO_DROP_REASON,
  VERDICT_TRACED,
  VERDICT_REDIRECTED,
] = records('hubble-derived.ndjson');

describe('parseHubbleFlow on real records', () => {
  it('turns a policy drop from the Cilium exporter docs into a denied network_policy flow', () => {
    const f = accepted(parseHubbleFlow(XWING_POLICY_DENIED!));
    expect(f).toMatchObject({
      verdict: 'denied',
      denyReason: 'network_policy',
      detail: 'POLICY_DENIED',
      sourceWorkload: 'xwing',
      sourceNamespace: 'default',
      sourceAddress: '10.244.1.60',
      destinationWorkload: 'deathstar',
      destinationNamespace: 'default',
      destinationAddress: '10.244.1.5',
      destinationPort: 80,
      transport: 'tcp',
      count: 1,
      policy: '',
      rule: -1,
    });
    // RFC 3339 with nanoseconds → milliseconds, not arrival time.
    expect(f.startTimeMs).toBe(Date.UTC(2023, 7, 21, 12, 12, 18, 510));
    // The field mask removed traffic_direction: where the verdict was taken is not stated.
    expect(f.reporter).toBe('unknown');
    expect(f.attributes).toMatchObject({ node: 'kind-kind/kind-worker', source_port: '44916', layer: 'L3_L4' });
  });

  it('names the destination Service after the workload when the record has none, and says so', () => {
    const f = accepted(parseHubbleFlow(XWING_POLICY_DENIED!));
    expect(f).toMatchObject({ destinationService: 'deathstar', destinationHost: 'deathstar.default.svc.cluster.local' });
    expect(f.attributes.service_inferred).toBe('true');
  });

  it('takes the denying policy from egress_denied_by and the reporter from traffic_direction EGRESS', () => {
    const f = accepted(parseHubbleFlow(EGRESS_POLICY_DENY!));
    expect(f).toMatchObject({
      verdict: 'denied',
      denyReason: 'network_policy',
      detail: 'POLICY_DENY',
      policy: 'net-lab/deny-tg-to-echo',
      reporter: 'source',
      sourceWorkload: 'traffic-generator', // from workloads[], not guessed from the pod name
      destinationWorkload: 'echo-server',
      destinationPort: 80,
    });
    expect(f.attributes).toMatchObject({ policy_kind: 'CiliumNetworkPolicy', uuid: 'cd75b2ac-8dd3-486b-beca-3d17d9d56cff', node: 'topgun/cilium-w1' });
  });

  it('rejects a datapath drop (INVALID_SOURCE_IP) as unsupported: it is not a policy verdict', () => {
    const r = parseHubbleFlow(ICMP_INVALID_SOURCE!);
    expect(rejection(r)).toBe('unsupported_record');
    expect(r.ok || r.message).toMatch(/INVALID_SOURCE_IP/);
  });

  it('does not count reply packets of a forwarded connection', () => {
    expect(rejection(parseHubbleFlow(APISERVER_REPLY!))).toBe('unsupported_record');
    // is_reply alone decides, also when flags and trace_reason are masked away.
    const o = structuredClone(APISERVER_REPLY!) as { flow: Record<string, unknown> };
    delete o.flow.trace_reason;
    delete o.flow.reply;
    o.flow.l4 = { TCP: { source_port: 60002, destination_port: 57706 } };
    expect(rejection(parseHubbleFlow(o))).toBe('unsupported_record');
    o.flow.is_reply = false;
    expect(accepted(parseHubbleFlow(o)).verdict).toBe('allowed');
  });

  it('counts a connection at its first packet and not at the later ones', () => {
    const syn = accepted(parseHubbleFlow(HOST_TO_WORLD_SYN!));
    expect(syn).toMatchObject({
      verdict: 'allowed',
      detail: 'FORWARDED',
      denyReason: '',
      reporter: 'source',
      sourceWorkload: 'host', // reserved:host identity, no pod
      destinationWorkload: 'world',
      destinationHost: 'world', // bounded: the IP stays in destinationAddress
      destinationService: 'world',
      destinationNamespace: '',
      destinationAddress: '9.134.108.44',
      destinationPort: 9922,
    });
    expect(rejection(parseHubbleFlow(HOST_TO_WORLD_ESTABLISHED!))).toBe('unsupported_record');
  });

  it('counts an AUDIT verdict as allowed with detail AUDIT (the flow was not blocked)', () => {
    const f = accepted(parseHubbleFlow(AUDIT_TO_APISERVER!));
    expect(f).toMatchObject({
      verdict: 'allowed',
      denyReason: '',
      detail: 'AUDIT',
      reporter: 'destination',
      sourceWorkload: 'source-controller',
      sourceNamespace: 'flux-system',
      destinationWorkload: 'host',
      destinationPort: 6443,
    });
  });
});

describe('parseHubbleFlow on records derived from real ones', () => {
  it('reads the drop reason from a drop event sub_type or the numeric drop_reason when drop_reason_desc is masked', () => {
    expect(accepted(parseHubbleFlow(DROP_EVENT_SUBTYPE!))).toMatchObject({ verdict: 'denied', detail: 'POLICY_DENIED' });
    expect(accepted(parseHubbleFlow(NUMERIC_DROP_REASON!))).toMatchObject({ verdict: 'denied', detail: 'POLICY_DENIED' });
  });

  it('denies AUTH_REQUIRED drops as network_policy', () => {
    expect(accepted(parseHubbleFlow(AUTH_REQUIRED!))).toMatchObject({ verdict: 'denied', denyReason: 'network_policy', detail: 'AUTH_REQUIRED' });
  });

  it('rejects CT_MAP_INSERTION_FAILED drops as unsupported', () => {
    expect(rejection(parseHubbleFlow(CT_MAP_DROP!))).toBe('unsupported_record');
  });

  it('rejects a DROPPED flow whose reason was masked away as missing_field', () => {
    expect(rejection(parseHubbleFlow(NO_DROP_REASON!))).toBe('missing_field');
  });

  it('denies a DROPPED flow without reason when *_denied_by names the policy', () => {
    const o = structuredClone(EGRESS_POLICY_DENY!) as { flow: Record<string, unknown> };
    delete o.flow.drop_reason;
    delete o.flow.drop_reason_desc;
    expect(accepted(parseHubbleFlow(o))).toMatchObject({ verdict: 'denied', policy: 'net-lab/deny-tg-to-echo' });
  });

  it('takes the allowing policy from ingress_allowed_by and the named Service', () => {
    const f = accepted(parseHubbleFlow(INGRESS_ALLOWED_BY!));
    expect(f).toMatchObject({
      verdict: 'allowed',
      reporter: 'destination',
      policy: 'net-lab/allow-tg-to-echo',
      destinationService: 'echo-server',
      destinationNamespace: 'net-lab',
      destinationHost: 'echo-server.net-lab.svc.cluster.local',
    });
    expect(f.attributes.service_inferred).toBeUndefined();
  });

  it('denies an L7 request the proxy dropped, marked layer L7', () => {
    const f = accepted(parseHubbleFlow(L7_HTTP_DROPPED!));
    expect(f).toMatchObject({ verdict: 'denied', denyReason: 'network_policy', reporter: 'destination', destinationPort: 80 });
    expect(f.attributes).toMatchObject({ layer: 'L7', l7_protocol: 'http' });
  });

  it('rejects forwarded L7 records and DNS events as unsupported', () => {
    expect(rejection(parseHubbleFlow(L7_HTTP_RESPONSE!))).toBe('unsupported_record');
    const dns = parseHubbleFlow(L7_DNS!);
    expect(rejection(dns)).toBe('unsupported_record');
    expect(dns.ok || dns.message).toMatch(/dns/);
  });

  it('rejects ERROR, TRACED and TRANSLATED verdicts as unsupported', () => {
    for (const r of [VERDICT_ERROR, VERDICT_TRACED, VERDICT_TRANSLATED]) expect(rejection(parseHubbleFlow(r!))).toBe('unsupported_record');
  });

  it('counts REDIRECTED (handed to the L7 proxy) as allowed', () => {
    expect(accepted(parseHubbleFlow(VERDICT_REDIRECTED!))).toMatchObject({ verdict: 'allowed', detail: 'REDIRECTED' });
  });

  it('reads a bare flow object like the enveloped one', () => {
    const bare = accepted(parseHubbleFlow(BARE_FLOW!));
    const enveloped = accepted(parseHubbleFlow(XWING_POLICY_DENIED!));
    expect(bare).toEqual(enveloped);
  });
});

describe('parseHubbleFlow edge cases', () => {
  const base = () => structuredClone(XWING_POLICY_DENIED!) as { flow: Record<string, unknown>; time?: unknown };

  it('falls back to the envelope time when the flow time is masked', () => {
    const o = base();
    delete o.flow.time;
    expect(accepted(parseHubbleFlow(o)).startTimeMs).toBe(Date.UTC(2023, 7, 21, 12, 12, 18, 510));
  });

  it('rejects a record with no time at all, or a time that is not RFC 3339', () => {
    const o = base();
    delete o.flow.time;
    delete o.time;
    expect(rejection(parseHubbleFlow(o))).toBe('missing_field');
    const p = base();
    p.flow.time = 'yesterday';
    expect(rejection(parseHubbleFlow(p))).toBe('invalid_timestamp');
  });

  it('rejects missing and unknown verdicts distinctly', () => {
    const o = base();
    delete o.flow.verdict;
    expect(rejection(parseHubbleFlow(o))).toBe('missing_field');
    o.flow.verdict = 'MAYBE';
    expect(rejection(parseHubbleFlow(o))).toBe('invalid_field');
  });

  it('accepts numeric verdicts (protojson with enum numbers)', () => {
    const o = base();
    o.flow.verdict = 2;
    expect(accepted(parseHubbleFlow(o)).verdict).toBe('denied');
  });

  it('takes the workload from the app label when neither workloads nor pod_name are left', () => {
    const o = base();
    o.flow.source = { namespace: 'shop', labels: ['k8s:app=cart', 'k8s:io.kubernetes.pod.namespace=shop'] };
    expect(accepted(parseHubbleFlow(o)).sourceWorkload).toBe('cart');
  });

  it('uses the DNS name Cilium learnt for an external destination', () => {
    const o = structuredClone(HOST_TO_WORLD_SYN!) as { flow: Record<string, unknown> };
    o.flow.destination_names = ['api.partner.example'];
    expect(accepted(parseHubbleFlow(o))).toMatchObject({ destinationHost: 'api.partner.example', destinationService: 'api.partner.example', destinationNamespace: '' });
  });

  it('counts the flows an aggregated exporter record stands for', () => {
    const o = structuredClone(HOST_TO_WORLD_SYN!) as { flow: Record<string, unknown> };
    o.flow.aggregate = { egress_flow_count: 4, ingress_flow_count: '2' };
    expect(accepted(parseHubbleFlow(o)).count).toBe(6);
  });

  it('rejects ports outside 0-65535 as invalid_number instead of storing them (or a garbled one as port 0)', () => {
    for (const bad of [70000, -1, 80.5, 'eighty']) {
      const o = base() as { flow: { l4: { TCP: Record<string, unknown> } } };
      o.flow.l4.TCP.destination_port = bad;
      expect(rejection(parseHubbleFlow(o))).toBe('invalid_number');
      const p = base() as { flow: { l4: { TCP: Record<string, unknown> } } };
      p.flow.l4.TCP.source_port = bad;
      expect(rejection(parseHubbleFlow(p))).toBe('invalid_number');
    }
    const ok = base() as { flow: { l4: { TCP: Record<string, unknown> } } };
    ok.flow.l4.TCP.destination_port = '65535';
    expect(accepted(parseHubbleFlow(ok)).destinationPort).toBe(65535);
  });

  it('rejects aggregate counts beyond uint32 (flow.proto) instead of counting one record 9e15 times', () => {
    const o = structuredClone(HOST_TO_WORLD_SYN!) as { flow: Record<string, unknown> };
    o.flow.aggregate = { ingress_flow_count: 9007199254740991 };
    expect(rejection(parseHubbleFlow(o))).toBe('invalid_number');
    o.flow.aggregate = { egress_flow_count: -3 };
    expect(rejection(parseHubbleFlow(o))).toBe('invalid_number');
    o.flow.aggregate = { egress_flow_count: 4294967295 };
    expect(accepted(parseHubbleFlow(o)).count).toBe(4294967295);
  });

  it('refuses non-flow envelopes and a non-object flow', () => {
    expect(rejection(parseHubbleFlow({ lost_events: { source: 'HUBBLE_RING_BUFFER', num_events_lost: '3' } }))).toBe('unsupported_record');
    expect(rejection(parseHubbleFlow({ flow: 'DROPPED' }))).toBe('malformed_json');
    expect(rejection(parseHubbleFlow({ node_name: 'x' }))).toBe('missing_field');
  });
});
