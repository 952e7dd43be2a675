import { AUTHZ, codes, NETWORK_POLICY, NP_DEFAULT_DENY_INGRESS, parse } from './samples.testutil';

describe('policies', () => {
  const { config, problems } = parse(['authz.yaml', AUTHZ], ['np.yaml', NETWORK_POLICY], ['deny.yaml', NP_DEFAULT_DENY_INGRESS]);

  it('AuthorizationPolicies by namespace/name, with action, selector and rule count', () => {
    expect(problems).toEqual([]);
    expect([...config.authorizationPolicies.keys()]).toEqual(['default/allow-nothing', 'default/productpage-viewer', 'foo/deny-method-get']);
    expect(config.authorizationPolicies.get('default/allow-nothing')).toMatchObject({ action: 'ALLOW', selector: {}, rules: 0 });
    expect(config.authorizationPolicies.get('default/productpage-viewer')).toMatchObject({
      kind: 'AuthorizationPolicy',
      action: 'ALLOW',
      selector: { app: 'productpage' },
      rules: 1,
      source: 'authz.yaml',
      line: 9,
    });
    expect(config.authorizationPolicies.get('foo/deny-method-get')).toMatchObject({ action: 'DENY', selector: { app: 'httpbin' }, rules: 1 });
  });

  it('NetworkPolicies, block and flow style', () => {
    expect(config.networkPolicies.get('default/test-network-policy')).toMatchObject({
      kind: 'NetworkPolicy',
      action: 'ALLOW',
      selector: { role: 'db' },
      rules: 2,
      policyTypes: ['Ingress', 'Egress'],
    });
    expect(config.networkPolicies.get('default/default-deny-ingress')).toMatchObject({ selector: {}, rules: 0, policyTypes: ['Ingress'] });
  });

  it('an unknown action is reported and the policy skipped; CUSTOM keeps its provider', () => {
    const text = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: bad, namespace: x}
spec: {action: REJECT}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext, namespace: x}
spec:
  action: CUSTOM
  provider: {name: opa}
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
  rules: [{to: [{operation: {paths: ["/admin"]}}]}]
`;
    const r = parse(['p.yaml', text]);
    expect(codes(r.problems)).toEqual(['invalid_field']);
    expect(r.config.authorizationPolicies.has('x/bad')).toBe(false);
    expect(r.config.authorizationPolicies.get('x/ext')).toMatchObject({ action: 'CUSTOM', provider: 'opa', targetRefs: ['Gateway/waypoint'], rules: 1 });
  });
});
