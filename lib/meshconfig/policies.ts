/**
 * Policies: Istio AuthorizationPolicies (L7) and Kubernetes NetworkPolicies (L3/L4), by `<namespace>/<name>`, the
 * form deny reasons carry (CONTRACT.md §4). Selectors are recorded, not evaluated.
 */
import { isObj, readLabels, str, type RawObject, type Reader } from './read';

export type PolicyAction = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';

export interface MeshPolicy {
  kind: 'AuthorizationPolicy' | 'NetworkPolicy';
  namespace: string;
  name: string;
  /** `<namespace>/<name>`, as deny reasons name policies (CONTRACT.md §4). */
  ref: string;
  /**
   * AuthorizationPolicy `spec.action` (ALLOW when absent). A NetworkPolicy is always ALLOW: an allow-list,
   * whose selected pods refuse whatever no policy allows.
   */
  action: PolicyAction;
  /** `matchLabels` of `spec.selector` / `spec.podSelector`; empty = every workload of the namespace. */
  selector: Readonly<Record<string, string>>;
  /** Number of `matchExpressions` in the selector (not evaluated). */
  selectorExpressions: number;
  /** AuthorizationPolicy `targetRef`/`targetRefs` as `<Kind>/<name>`; empty otherwise. */
  targetRefs: readonly string[];
  /** AuthorizationPolicy: `spec.rules` entries. NetworkPolicy: ingress plus egress rules. */
  rules: number;
  /** NetworkPolicy `policyTypes` (defaulted as Kubernetes does); empty for AuthorizationPolicy. */
  policyTypes: readonly ('Ingress' | 'Egress')[];
  /** CUSTOM action's `spec.provider.name`; ''. */
  provider: string;
  source: string;
  line: number;
}

/** Reads one AuthorizationPolicy or NetworkPolicy; undefined (and a problem) when its action is unknown. */
export function readPolicy(reader: Reader, o: RawObject): MeshPolicy | undefined {
  const s = o.spec;
  let action: PolicyAction = 'ALLOW';
  let selectorRaw: unknown;
  const targetRefs: string[] = [];
  let rules = 0;
  const policyTypes: ('Ingress' | 'Egress')[] = [];
  let provider = '';
  if (o.kind === 'AuthorizationPolicy') {
    const a = s.action === undefined ? 'ALLOW' : str(s.action);
    if (a !== 'ALLOW' && a !== 'DENY' && a !== 'AUDIT' && a !== 'CUSTOM') {
      reader.problem('invalid_field', o.source, o.line, o.label, `${o.label}: action ${JSON.stringify(s.action)} is not ALLOW, DENY, AUDIT or CUSTOM; skipped`);
      return;
    }
    action = a;
    selectorRaw = s.selector;
    const refs = [...(isObj(s.targetRef) ? [s.targetRef] : []), ...(Array.isArray(s.targetRefs) ? s.targetRefs : [])];
    for (const t of refs) if (isObj(t)) targetRefs.push(`${str(t.kind)}/${str(t.name)}`);
    rules = Array.isArray(s.rules) ? s.rules.length : 0;
    provider = isObj(s.provider) ? str(s.provider.name) : '';
  } else {
    selectorRaw = s.podSelector;
    if (selectorRaw === undefined) {
      reader.problem('missing_field', o.source, o.line, o.label, `${o.label} has no spec.podSelector (use {} to select every pod); read as {}`);
    }
    const ingress = Array.isArray(s.ingress) ? s.ingress.length : 0;
    const egress = Array.isArray(s.egress) ? s.egress.length : 0;
    rules = ingress + egress;
    if (Array.isArray(s.policyTypes)) {
      for (const t of s.policyTypes) {
        if (t === 'Ingress' || t === 'Egress') policyTypes.push(t);
        else reader.problem('invalid_field', o.source, o.line, o.label, `${o.label}: policyType ${JSON.stringify(t)} is not Ingress or Egress; ignored`);
      }
    } else {
      // Kubernetes' default: Ingress always, Egress when egress rules are present.
      policyTypes.push('Ingress');
      if (s.egress !== undefined) policyTypes.push('Egress');
    }
  }
  const sel = isObj(selectorRaw) ? selectorRaw : {};
  const policy: MeshPolicy = {
    kind: o.kind as MeshPolicy['kind'],
    namespace: o.namespace,
    name: o.name,
    ref: o.ref,
    action,
    selector: readLabels(reader, sel.matchLabels, o, 'selector matchLabels'),
    selectorExpressions: Array.isArray(sel.matchExpressions) ? sel.matchExpressions.length : 0,
    targetRefs,
    rules,
    policyTypes,
    provider,
    source: o.source,
    line: o.line,
  };
  return policy;
}
