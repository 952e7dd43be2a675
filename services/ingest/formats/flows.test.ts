import fc from 'fast-check';
import { REJECT_REASONS } from '../../../lib/model';
import { parseRfc3339, workloadFromName } from './flow-common';
import { parseFlowLine } from './flows';
import { fixtureLines as lines } from './flows.testutil';

describe('parseFlowLine', () => {
  it('routes every Hubble fixture to the Hubble parser and every Calico fixture to the Calico parser', () => {
    for (const file of ['hubble.ndjson', 'hubble-derived.ndjson']) {
      for (const l of lines(file)) expect(parseFlowLine(l).format).toBe('hubble');
    }
    for (const file of ['calico-enterprise.ndjson', 'calico-enterprise-derived.ndjson', 'calico-goldmane.ndjson', 'calico-goldmane-derived.ndjson']) {
      for (const l of lines(file)) expect(parseFlowLine(l).format).toBe('calico');
    }
  });

  it('accepts the real policy drops of both formats as denied flows', () => {
    const hubble = parseFlowLine(lines('hubble.ndjson')[1]!);
    const calico = parseFlowLine(lines('calico-enterprise.ndjson')[0]!);
    for (const { result } of [hubble, calico]) {
      expect(result.ok && { verdict: result.value.verdict, denyReason: result.value.denyReason }).toEqual({ verdict: 'denied', denyReason: 'network_policy' });
    }
  });

  it('ignores a UTF-8 byte order mark before the line (the first line of a body a Windows tool wrote)', () => {
    for (const line of [...lines('hubble.ndjson'), ...lines('calico-enterprise.ndjson')]) {
      expect(parseFlowLine('\uFEFF' + line)).toEqual(parseFlowLine(line));
    }
  });

  it('rejects text that is not JSON, and JSON that is not an object, as malformed_json', () => {
    for (const l of ['{"flow": {', 'hello', '[1,2]', 'null', '42', '"flow"']) {
      const { result } = parseFlowLine(l);
      expect(result.ok ? 'ok' : result.reason).toBe('malformed_json');
    }
  });

  it('attributes a broken line to the format its text names', () => {
    expect(parseFlowLine('{"start_time": 1, "action": "deny", ').format).toBe('calico');
    expect(parseFlowLine('{"flow": {"verdict": "DROPPED"').format).toBe('hubble');
  });

  it('rejects an object of neither layout as unknown_layout', () => {
    const r = parseFlowLine('{"neither": true}');
    expect(r.format).toBe('hubble');
    expect(r.result.ok ? 'ok' : r.result.reason).toBe('unknown_layout');
    // A nested "action" does not make a Calico record.
    const nested = parseFlowLine('{"meta": {"action": "deny"}}');
    expect(nested.format).toBe('calico');
    expect(nested.result.ok ? 'ok' : nested.result.reason).toBe('unknown_layout');
  });

  it('never throws, and always answers with a known reason, whatever the line', () => {
    const reasons = new Set<string>(REJECT_REASONS);
    const check = (line: string) => {
      const { format, result } = parseFlowLine(line);
      expect(['hubble', 'calico']).toContain(format);
      if (!result.ok) expect(reasons.has(result.reason)).toBe(true);
    };
    fc.assert(fc.property(fc.string(), check), { numRuns: 300 });
    // Arbitrary JSON objects, and objects shaped like flows with arbitrary values in every field.
    fc.assert(fc.property(fc.jsonValue(), (v) => check(JSON.stringify(v))), { numRuns: 300 });
    const anyValue = fc.oneof(fc.jsonValue(), fc.constantFrom('-', '', null, -1, 0, 133, 'DROPPED', 'FORWARDED', 'deny', 'Pass'));
    const realKeys = [...new Set(lines('hubble.ndjson').flatMap((l) => Object.keys((JSON.parse(l) as { flow: object }).flow)))];
    const calicoKeys = [...new Set(lines('calico-goldmane.ndjson').concat(lines('calico-enterprise.ndjson')).flatMap((l) => Object.keys(JSON.parse(l) as object)))];
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...realKeys), anyValue), fc.constantFrom('DROPPED', 'FORWARDED', 'AUDIT', 7), (flow, verdict) =>
        check(JSON.stringify({ flow: { ...flow, verdict } })),
      ),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...calicoKeys), anyValue), fc.constantFrom('allow', 'deny', 'Allow', 'Deny'), (rec, action) =>
        check(JSON.stringify({ ...rec, action })),
      ),
      { numRuns: 300 },
    );
  });
});

describe('flow helpers', () => {
  it('reads RFC 3339 with nanoseconds, offsets and without fraction', () => {
    expect(parseRfc3339('2023-08-21T12:12:18.510175415Z')).toBe(Date.UTC(2023, 7, 21, 12, 12, 18, 510));
    expect(parseRfc3339('2026-09-27T11:32:15Z')).toBe(Date.UTC(2026, 8, 27, 11, 32, 15));
    expect(parseRfc3339('2026-09-27T13:32:15.5+02:00')).toBe(Date.UTC(2026, 8, 27, 11, 32, 15, 500));
    for (const bad of ['2026-02-30T00:00:00Z', '2026-13-01T00:00:00Z', '2026-09-27 11:32', '1659621542', '']) {
      expect(parseRfc3339(bad)).toBeUndefined();
    }
  });

  it('turns aggregated names and pod names into workloads', () => {
    expect(workloadFromName('cart-7b9c6d5f4-*')).toBe('cart');
    expect(workloadFromName('calico-node-*')).toBe('calico-node');
    expect(workloadFromName('checkoutservice-598d5b586d-wsvmz', '598d5b586d')).toBe('checkoutservice');
    // The label makes it exact where the guess would keep a suffix that does not look like a hash.
    expect(workloadFromName('api-v1-abc123-*', 'abc123')).toBe('api-v1');
    expect(workloadFromName('multitool')).toBe('multitool');
  });
});
