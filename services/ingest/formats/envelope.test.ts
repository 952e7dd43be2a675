/**
 * Fluent Bit and Vector envelopes (test/fixtures/accesslogs/*-envelope.ndjson; provenance in
 * test/fixtures/SOURCES.md): the inner line is parsed as TEXT or JSON, and the pod metadata names the
 * emitting workload — the source of outbound lines, the destination of inbound ones.
 */
import fc from 'fast-check';
import { workloadFromPodName } from '../../../lib/model';
import { accepted, fixtureLine, isSaneRecord, isWellFormedRejection, rejection } from './accesslog.testutil';
import { isEnvelope, parseEnvelope, parseEnvelopeObject } from './envelope';
import { parseIstioJson } from './istio-json';
import { parseIstioText } from './istio-text';

const fb = (i: number) => fixtureLine('fluentbit-envelope.ndjson', i);
const vec = (i: number) => fixtureLine('vector-envelope.ndjson', i);

describe('Fluent Bit (kubernetes filter)', () => {
  it('outbound TEXT line: the pod is the source workload', () => {
    const r = accepted(parseEnvelope(fb(0)));
    expect(r).toMatchObject({
      reporter: 'source',
      sourceWorkload: 'sleep',
      sourceNamespace: 'foo',
      destinationService: 'httpbin',
      destinationNamespace: 'foo',
      destinationWorkload: 'unknown',
      responseCode: 418,
      // Event time is the access log's START_TIME, not the shipper's `time`.
      startTimeMs: Date.UTC(2020, 10, 25, 21, 26, 18, 409),
    });
  });

  it('inbound TEXT line: the pod is the destination workload, with its version label', () => {
    const r = accepted(parseEnvelope(fb(1)));
    expect(r).toMatchObject({ reporter: 'destination', destinationWorkload: 'httpbin', destinationVersion: 'v1', destinationNamespace: 'foo', sourceWorkload: 'unknown' });
  });

  it('a denied inbound request names the canary workload; an all-digit pod suffix still names the Deployment', () => {
    const r = accepted(parseEnvelope(fb(2)));
    expect(r).toMatchObject({
      destinationSubset: 'version-canary',
      destinationNamespace: 'vm-blue-green-canary',
      destinationWorkload: 'blue-green-canary-vm',
      destinationVersion: 'canary',
      outcome: 'denied',
      denyReason: 'rbac',
    });
  });

  it('an Istio JSON line in `log` and the same record merged by Merge_Log give the same request', () => {
    const inString = accepted(parseEnvelope(fb(3)));
    const merged = accepted(parseEnvelope(fb(4)));
    expect(inString).toMatchObject({ reporter: 'source', sourceWorkload: 'sleep', sourceNamespace: 'default', destinationSubset: 'v1', destinationService: 'httpbin-service' });
    expect(merged).toEqual(inString);
    // The shipper's own keys are not attributes of the request.
    expect(merged.attributes).toEqual({});
  });

  it('another container is not an access log; nor is an istio-agent line from istio-proxy', () => {
    expect(rejection(parseEnvelope(fb(5)))).toMatchObject({ reason: 'not_an_access_log' });
    expect(rejection(parseEnvelope(fb(6)))).toMatchObject({ reason: 'not_an_access_log' });
  });

  it('the envelope adds only the emitter to what the bare line gives', () => {
    const env = JSON.parse(fb(1)) as { log: string };
    const bare = accepted(parseIstioText(env.log));
    const wrapped = accepted(parseEnvelope(fb(1)));
    expect({ ...wrapped, destinationWorkload: bare.destinationWorkload, destinationVersion: bare.destinationVersion }).toEqual(bare);
  });
});

describe('Vector (kubernetes_logs)', () => {
  it('nested `kubernetes.pod_*` fields, outbound and inbound', () => {
    expect(accepted(parseEnvelope(vec(0)))).toMatchObject({ reporter: 'source', sourceWorkload: 'sleep', sourceNamespace: 'foo', destinationService: 'httpbin' });
    expect(accepted(parseEnvelope(vec(1)))).toMatchObject({ reporter: 'destination', destinationWorkload: 'httpbin', destinationVersion: 'v1', destinationNamespace: 'foo' });
  });

  it('flattened dotted keys are the same envelope', () => {
    expect(accepted(parseEnvelope(vec(2)))).toEqual(accepted(parseEnvelope(vec(1))));
  });

  it("the Vector docs' sample (storage-provisioner) is not an access log", () => {
    expect(rejection(parseEnvelope(vec(3))).reason).toBe('not_an_access_log');
  });
});

describe('metadata edge cases', () => {
  const line = (JSON.parse(fb(0)) as { log: string }).log;

  it('without a pod name, app labels stand in as hints; without metadata values nothing is set', () => {
    const r = accepted(parseEnvelopeObject({ log: line, kubernetes: { namespace_name: 'foo', labels: { 'app.kubernetes.io/name': 'sleep-app', app: 'sleep' } } }));
    expect(r).toMatchObject({ sourceWorkload: 'sleep-app', sourceNamespace: 'foo' });
    const bare = accepted(parseEnvelopeObject({ log: line, kubernetes: {} }));
    expect(bare).toMatchObject({ sourceWorkload: 'unknown', sourceNamespace: 'unknown' });
  });

  it('the line decides the destination; metadata only fills what the line leaves unset', () => {
    const inbound = (JSON.parse(fb(1)) as { log: string }).log;
    const r = accepted(parseEnvelopeObject({ log: inbound, kubernetes: { pod_name: 'httpbin-74fb669cc6-qvlnm', namespace_name: 'elsewhere', container_name: 'istio-proxy' } }));
    expect(r).toMatchObject({ destinationNamespace: 'foo', destinationWorkload: 'httpbin' });
    // An Envoy-default line names no namespace: the pod's namespace fills it in.
    const envoy = fixtureLine('envoy-default-text.log', 0);
    const e = accepted(parseEnvelopeObject({ log: envoy, kubernetes: { pod_name: 'front-envoy-5b64f47978-x8k9q', namespace_name: 'edge', container_name: 'istio-proxy' } }));
    expect(e).toMatchObject({ reporter: 'unknown', sourceWorkload: 'front-envoy', sourceNamespace: 'edge' });
  });

  it('the pod name wins over labels: one app can run as several Deployments', () => {
    const r = accepted(parseEnvelopeObject({ log: line, kubernetes: { pod_name: 'sleep-canary-5b64f47978-x8k9q', namespace_name: 'foo', container_name: 'istio-proxy', labels: { app: 'sleep' } } }));
    expect(r.sourceWorkload).toBe('sleep-canary');
  });

  it('an envelope with no line is missing a field; a non-object is malformed', () => {
    expect(rejection(parseEnvelopeObject({ kubernetes: { pod_name: 'x' }, log: 42 })).reason).toBe('missing_field');
    expect(rejection(parseEnvelope('[1]')).reason).toBe('malformed_json');
    expect(rejection(parseEnvelope('{"log":')).reason).toBe('malformed_json');
    expect(rejection(parseEnvelope('{"start_time":"2020-10-29T03:22:16.126Z"}')).reason).toBe('missing_field');
  });

  it('isEnvelope: Kubernetes metadata with a line or a merged record, or a bare shipper line wrapper', () => {
    expect(isEnvelope({ log: 'x', kubernetes: {} })).toBe(true);
    expect(isEnvelope({ message: 'x', 'kubernetes.pod_name': 'p' })).toBe(true);
    expect(isEnvelope({ start_time: 'x', kubernetes: { pod_name: 'p' } })).toBe(true);
    // Fluent Bit `tail` + docker parser and Vector `file` wrap the line without Kubernetes metadata.
    expect(isEnvelope({ log: 'x', stream: 'stdout', time: '2026-03-14T09:26:53.589Z' })).toBe(true);
    expect(isEnvelope({ message: 'x', file: '/var/log/pods/x.log' })).toBe(true);
    // An Istio JSON record is never a wrapper, nor is a line that is not a string.
    expect(isEnvelope({ start_time: 'x', log: 'x' })).toBe(false);
    expect(isEnvelope({ log: 42 })).toBe(false);
    expect(isEnvelope({ kubernetes: {} })).toBe(false);
  });

  it('unwraps a bare shipper line with no metadata: the record, with no emitting workload named', () => {
    const line = fixtureLine('istio-1.9-text.log', 0);
    const r = accepted(parseEnvelopeObject({ log: line + '\n', stream: 'stdout' }));
    expect(r).toEqual(accepted(parseIstioText(line)));
  });

  it('workloadFromPodName handles the pod name shapes the envelopes carry', () => {
    expect(workloadFromPodName('reviews-v2-5b64f47978-x8k9q')).toBe('reviews-v2');
    expect(workloadFromPodName('reviews-v2-5b64f47978-24567')).toBe('reviews-v2'); // all-digit random suffix
    expect(workloadFromPodName('db-0')).toBe('db');
    expect(workloadFromPodName('fluent-bit-l9ls7')).toBe('fluent-bit');
    expect(workloadFromPodName('storage-provisioner')).toBe('storage-provisioner');
  });
});

describe('byte order mark', () => {
  it('a UTF-8 byte order mark before the line is ignored (the first line of a body a Windows tool wrote)', () => {
    const line = fixtureLine('fluentbit-envelope.ndjson', 0);
    expect(parseEnvelope('\uFEFF' + line)).toEqual(parseEnvelope(line));
  });
});

describe('properties', () => {
  const inner = fc.oneof(
    fc.constantFrom(fixtureLine('istio-1.9-text.log', 0), fixtureLine('istio-json-strings.ndjson', 2), fixtureLine('rejected-text.log', 0)),
    fc.string(),
    fc.jsonValue().map((v) => JSON.stringify(v)),
  );
  const meta = fc.record(
    {
      pod_name: fc.oneof(fc.string(), fc.constant('httpbin-74fb669cc6-qvlnm'), fc.jsonValue()),
      namespace_name: fc.oneof(fc.string(), fc.jsonValue()),
      pod_namespace: fc.string(),
      container_name: fc.oneof(fc.constant('istio-proxy'), fc.string(), fc.jsonValue()),
      labels: fc.oneof(fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.jsonValue())), fc.jsonValue()),
      pod_labels: fc.jsonValue(),
    },
    { requiredKeys: [] },
  );

  it('any envelope-shaped object is parsed or rejected with a catalogued reason, never thrown', () => {
    fc.assert(
      fc.property(inner, meta, fc.constantFrom('log', 'message'), fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 5 }), (line, k8s, key, extra) => {
        const obj = { ...extra, [key]: line, kubernetes: k8s };
        const r = parseEnvelopeObject(obj);
        expect(isWellFormedRejection(r)).toBe(true);
        if (r.ok) expect(isSaneRecord(r.value)).toBe(true);
        expect(isWellFormedRejection(parseEnvelope(JSON.stringify(obj)))).toBe(true);
      }),
      { numRuns: 400 },
    );
  });

  it('a line accepted bare is accepted in an istio-proxy envelope, with the same request fields', () => {
    fc.assert(
      fc.property(fc.constantFrom(...[0, 1, 2, 3, 9].map((i) => fixtureLine('istio-1.9-text.log', i)), fixtureLine('istio-json-strings.ndjson', 5)), fc.constantFrom('log', 'message'), (line, key) => {
        const bare = line.startsWith('{') ? parseIstioJson(line) : parseIstioText(line);
        const wrapped = parseEnvelopeObject({ [key]: line, kubernetes: { pod_name: 'x-5b64f47978-x8k9q', namespace_name: 'ns', container_name: 'istio-proxy' } });
        expect(accepted(wrapped).requestId).toBe(accepted(bare).requestId);
        expect(accepted(wrapped).destinationHost).toBe(accepted(bare).destinationHost);
      }),
    );
  });
});
