/**
 * Pods and WorkloadEntries in the mesh config (`MeshConfig.workloads`), kept for Prometheus sidecar targets.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { emptyMeshConfig, parseMeshConfig } from './index';

const FIXTURES = join(__dirname, '../../test/fixtures/mesh-config/sidecars');

function parseFixtures() {
  const sources = readdirSync(FIXTURES)
    .sort()
    .map((f) => ({ name: f, text: readFileSync(join(FIXTURES, f), 'utf8') }));
  return parseMeshConfig(sources);
}

describe('mesh config workloads', () => {
  it('keeps Pods (from a kubectl List and plain manifests) and WorkloadEntries, with what a scrape target needs', () => {
    const { config, problems } = parseFixtures();
    expect(problems).toEqual([]);
    expect(config.ignoredKinds.size).toBe(0);
    expect(config.workloads.map((w) => [w.kind, w.ref, w.address, w.sidecar, w.phase])).toEqual([
      ['Pod', 'default/sleep', '', true, ''],
      ['Pod', 'default/details-v1-7d4d9d5fcb-mqjlq', '10.244.1.12', true, 'Running'],
      ['Pod', 'default/reviews-v2-5b9d8f6c4d-x7k2p', '10.244.2.31', true, 'Running'],
      ['Pod', 'bookinfo/ratings-v1-6c9f5b8d7-q2w4e', 'fd00:10:244::7', true, 'Running'],
      ['Pod', 'db/mysqldb-v1-55cb9c5c8b-9hv2l', '10.244.3.5', false, 'Running'],
      ['Pod', 'bookinfo/migrate-ratings-8kz5t', '10.244.2.40', true, 'Succeeded'],
      ['Pod', 'default/productpage-v1-797d845774-76f95', '10.244.1.13', true, 'Running'],
      ['WorkloadEntry', 'bookinfo/details-svc', '192.0.2.20', true, ''],
      ['WorkloadEntry', 'bookinfo/details-svc-2', 'vm2.details.example.internal', true, ''],
      ['WorkloadEntry', 'bookinfo/local-socket', 'unix:///var/run/example/socket', true, ''],
    ]);
    const details = config.workloads[1];
    expect(details?.labels).toMatchObject({ app: 'details', version: 'v1' });
    expect(details?.annotations).toMatchObject({ 'prometheus.io/port': '15020', 'prometheus.io/path': '/stats/prometheus' });
    expect(details?.source).toBe('pods.yaml');
    expect(details?.line).toBeGreaterThan(1);
    // WorkloadEntry labels come from spec.labels.
    expect(config.workloads[7]?.labels).toEqual({ app: 'details-legacy', 'instance-id': 'vm1' });
  });

  it('tells a sidecar by the injector annotation, a container or an init container named istio-proxy', () => {
    const pod = (name: string, extra: string) => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
${extra}
status: {podIP: 10.0.0.1}
---
`;
    const text =
      pod('annotated', `  annotations: {sidecar.istio.io/status: '{}'}\nspec: {containers: [{name: app}]}`) +
      pod('container', `spec: {containers: [{name: app}, {name: istio-proxy}]}`) +
      pod('native', `spec: {containers: [{name: app}], initContainers: [{name: istio-proxy, restartPolicy: Always}]}`) +
      pod('plain', `spec: {containers: [{name: app}], initContainers: [{name: istio-init}]}`) +
      pod('nospec', '');
    const { config, problems } = parseMeshConfig([{ name: 'pods.yaml', text }]);
    expect(problems).toEqual([]);
    expect(config.workloads.map((w) => [w.name, w.sidecar])).toEqual([
      ['annotated', true],
      ['container', true],
      ['native', true],
      ['plain', false],
      ['nospec', false],
    ]);
  });

  it('is bad input as values: odd label types are reported, a nameless Pod is skipped, other versions noted', () => {
    const text = `apiVersion: v1
kind: Pod
metadata:
  name: odd
  labels: {version: 2, app: [x]}
status: {podIP: 10.0.0.2}
---
apiVersion: v1
kind: Pod
metadata: {namespace: x}
---
apiVersion: networking.istio.io/v1alpha3
kind: WorkloadEntry
metadata: {name: vm}
spec: {address: 10.0.0.3}
---
apiVersion: networking.istio.io/v2
kind: WorkloadEntry
metadata: {name: future}
spec: {address: 10.0.0.4}
`;
    const { config, problems } = parseMeshConfig([{ name: 'w.yaml', text }]);
    expect(problems.map((p) => p.code)).toEqual(['missing_field', 'unsupported_api_version', 'invalid_field', 'invalid_field']);
    expect(config.workloads.map((w) => [w.name, w.address, w.labels])).toEqual([
      ['odd', '10.0.0.2', { version: '2' }],
      ['vm', '10.0.0.3', {}],
      ['future', '10.0.0.4', {}],
    ]);
  });

  it('a Pod of another API group is still ignored; the empty config has no workloads', () => {
    const { config } = parseMeshConfig([{ name: 'x', text: 'apiVersion: example.com/v1\nkind: Pod\nmetadata: {name: p}\n' }]);
    expect(config.workloads).toEqual([]);
    expect(config.ignoredKinds.get('Pod.example.com')).toBe(1);
    expect(emptyMeshConfig().workloads).toEqual([]);
  });
});
