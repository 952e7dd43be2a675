import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../runtime';
import { configuredWeights, loadMeshConfig, stableSubset, subsetForVersion } from './index';
import { DESTINATION_RULE_ALL, REVIEWS, VS_REVIEWS_90_10 } from './samples.testutil';

/** The reviews document of istio/istio samples/bookinfo/networking/destination-rule-all.yaml, annotated with its stable subset. */
const DR_REVIEWS = DESTINATION_RULE_ALL.split('---\n')
  .find((doc) => doc.includes('  name: reviews\n'))!
  .replace('  name: reviews\n', '  name: reviews\n  annotations:\n    meshlens.io/stable-subset: v1\n');

/** istio/istio samples/bookinfo/networking/virtual-service-reviews-80-20.yaml, as later re-applied over 90-10. */
const VS_REVIEWS_80_20 = VS_REVIEWS_90_10.replace('weight: 90', 'weight: 80').replace('weight: 10', 'weight: 20');

/** The `productpage-viewer` policy of istio/istio.io content/en/docs/tasks/security/authorization/authz-http/snips.sh, as `kubectl get -o json` prints it. */
const AP_JSON = JSON.stringify(
  {
    apiVersion: 'security.istio.io/v1beta1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'productpage-viewer', namespace: 'default' },
    spec: { selector: { matchLabels: { app: 'productpage' } }, action: 'ALLOW', rules: [{ to: [{ operation: { methods: ['GET'] } }] }] },
  },
  null,
  2,
);


describe('loadMeshConfig', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshlens-mesh-config-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads one file', async () => {
    const f = join(dir, 'reviews.yaml');
    await writeFile(f, `${DR_REVIEWS}---\n${VS_REVIEWS_90_10}`);
    const { config, problems } = await loadMeshConfig(f);
    expect(problems).toEqual([]);
    expect(subsetForVersion(config, REVIEWS, { version: 'v3' })).toBe('v3');
    expect(configuredWeights(config, REVIEWS)).toEqual([
      { subset: 'v1', weight: 90 },
      { subset: 'v2', weight: 10 },
    ]);
    expect(stableSubset(config, REVIEWS)).toBe('v1');
  });

  it('reads a folder recursively in kubectl order, skipping other files and hidden entries', async () => {
    await mkdir(join(dir, 'routing', 'canary'), { recursive: true });
    await mkdir(join(dir, '.git'));
    await writeFile(join(dir, 'destination-rules.yml'), DR_REVIEWS);
    await writeFile(join(dir, 'routing', 'a-reviews.yaml'), VS_REVIEWS_90_10);
    // Applied after routing/a-reviews.yaml, so its definition of default/reviews wins.
    await writeFile(join(dir, 'routing', 'canary', 'reviews.YAML'), VS_REVIEWS_80_20);
    await writeFile(join(dir, 'policy.json'), AP_JSON);
    await writeFile(join(dir, 'README.md'), '# not config\n');
    await writeFile(join(dir, 'broken.yaml'), 'kind: VirtualService\nspec: {hosts: [reviews\n');
    await writeFile(join(dir, '.git', 'config.yaml'), 'kind: [\n');
    const { config, problems } = await loadMeshConfig(dir);
    expect(problems.map((p) => [p.code, p.source, p.line])).toEqual([
      ['yaml_syntax', join(dir, 'broken.yaml'), 3],
      ['duplicate_object', join(dir, 'routing', 'canary', 'reviews.YAML'), 1],
    ]);
    expect(problems[0]?.message).toContain(`${join(dir, 'broken.yaml')}:3:`);
    expect(configuredWeights(config, REVIEWS)).toEqual([
      { subset: 'v1', weight: 80 },
      { subset: 'v2', weight: 20 },
    ]);
    expect(config.virtualServices[0]?.source).toBe(join(dir, 'routing', 'canary', 'reviews.YAML'));
    expect(config.authorizationPolicies.get('default/productpage-viewer')).toMatchObject({ action: 'ALLOW', rules: 1 });
    expect(subsetForVersion(config, REVIEWS, { version: 'v2' })).toBe('v2');
  });

  it('reads a ConfigMap mount once (the ..data indirection is hidden)', async () => {
    const ts = join(dir, '..2024_05_01_12_00_00.000');
    await mkdir(ts);
    await writeFile(join(ts, 'reviews.yaml'), DR_REVIEWS);
    await symlink('..2024_05_01_12_00_00.000', join(dir, '..data'));
    await symlink(join('..data', 'reviews.yaml'), join(dir, 'reviews.yaml'));
    await symlink(dir, join(dir, 'loop'));
    const { config, problems } = await loadMeshConfig(dir);
    expect(problems).toEqual([]);
    expect(config.destinationRules).toHaveLength(1);
    expect(config.destinationRules[0]?.source).toBe(join(dir, 'reviews.yaml'));
  });

  it('an empty folder is a problem, not an error', async () => {
    const { config, problems } = await loadMeshConfig(dir);
    expect(problems.map((p) => p.code)).toEqual(['no_files']);
    expect(config.hosts.size).toBe(0);
  });

  it('a missing path stops the start with an error naming MESHLENS_MESH_CONFIG', async () => {
    const missing = join(dir, 'nope');
    const err = await loadMeshConfig(missing).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual([`MESHLENS_MESH_CONFIG=${JSON.stringify(missing)}: no such file or folder`]);
    expect((err as Error).message).toContain('MESHLENS_MESH_CONFIG');
  });
});
