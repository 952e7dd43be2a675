/**
 * Reading: YAML or JSON text → Kubernetes objects of the modelled kinds, before any kind is interpreted.
 * `kind: List` (as `kubectl get -o yaml` prints) is unfolded; a later definition of the same object replaces the
 * earlier one, at the position of the first (creation order), as a re-apply would. Kinds meshlens does not model
 * are counted, not reported.
 */
import { LineCounter, isSeq, parseAllDocuments } from 'yaml';
import type { MeshConfigSource } from './parse';
import type { MeshConfigProblem, MeshConfigProblemCode } from './problems';

export type Obj = Record<string, unknown>;

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** A Kubernetes object as read, before its kind is interpreted. */
export interface RawObject {
  kind: Kind;
  version: string;
  namespace: string;
  name: string;
  ref: string;
  label: string;
  metadata: Obj;
  spec: Obj;
  /** Read for Pods only (`status.podIP`, `status.phase`). */
  status: Obj;
  source: string;
  line: number;
}

export type Kind = 'DestinationRule' | 'VirtualService' | 'AuthorizationPolicy' | 'NetworkPolicy' | 'Pod' | 'WorkloadEntry';

/** Modelled kinds: group and known versions, newest first. */
const KINDS: Record<Kind, { group: string; versions: readonly string[] }> = {
  DestinationRule: { group: 'networking.istio.io', versions: ['v1', 'v1beta1', 'v1alpha3'] },
  VirtualService: { group: 'networking.istio.io', versions: ['v1', 'v1beta1', 'v1alpha3'] },
  AuthorizationPolicy: { group: 'security.istio.io', versions: ['v1', 'v1beta1'] },
  NetworkPolicy: { group: 'networking.k8s.io', versions: ['v1'] },
  Pod: { group: '', versions: ['v1'] },
  WorkloadEntry: { group: 'networking.istio.io', versions: ['v1', 'v1beta1', 'v1alpha3'] },
};

const MAX_ALIASES = 1000;
const MAX_LIST_DEPTH = 4;

export class Reader {
  readonly problems: MeshConfigProblem[] = [];
  readonly objects = new Map<string, RawObject>();
  readonly namespaces = new Set<string>(['default']);
  readonly ignoredKinds = new Map<string, number>();

  problem(code: MeshConfigProblemCode, source: string, line: number, object: string, message: string): void {
    this.problems.push({ code, source, line, object, message });
  }

  readSource(src: MeshConfigSource): void {
    const lc = new LineCounter();
    const lineOf = (offset: number | undefined): number => (offset === undefined ? 0 : lc.linePos(offset).line);
    let docs;
    try {
      docs = parseAllDocuments(src.text, { lineCounter: lc, prettyErrors: false });
    } catch (e) {
      // The parser reports errors per document; this guards against the unforeseen (never throw on input).
      this.problem('yaml_syntax', src.name, 0, '', `does not parse: ${(e as Error).message}`);
      return;
    }
    for (const doc of docs) {
      const err = doc.errors[0];
      if (err !== undefined) {
        // The first error only: the ones after it are mostly its echo (an unclosed `[` also ends the file early).
        const line = lineOf(err.pos[0]);
        const more = doc.errors.length > 1 ? ` (and ${doc.errors.length - 1} more error(s) after it)` : '';
        this.problem('yaml_syntax', src.name, line, '', `${src.name}:${line}: ${err.message} (${err.code}); document skipped${more}`);
        continue;
      }
      const contents = doc.contents;
      if (contents === null) continue;
      const line = lineOf(contents.range?.[0]);
      let value: unknown;
      try {
        value = doc.toJS({ maxAliasCount: MAX_ALIASES });
      } catch (e) {
        this.problem('invalid_object', src.name, line, '', `document does not convert: ${(e as Error).message}`);
        continue;
      }
      if (value === null || value === undefined) continue; // comments only
      const itemsNode = isObj(value) && Array.isArray(value.items) ? doc.get('items', true) : undefined;
      const itemLines = isSeq(itemsNode) ? itemsNode.items.map((n) => lineOf((n as { range?: [number] }).range?.[0])) : [];
      this.readValue(value, src.name, line, itemLines, 0);
    }
  }

  private readValue(value: unknown, source: string, line: number, itemLines: number[], depth: number): void {
    if (!isObj(value)) {
      this.problem('invalid_object', source, line, '', 'a document that is not a mapping is not a Kubernetes object');
      return;
    }
    const kind = str(value.kind);
    const apiVersion = str(value.apiVersion);
    if (kind === '') {
      this.problem('invalid_object', source, line, '', 'a document without `kind` is not a Kubernetes object');
      return;
    }
    // `kubectl get -o yaml` prints `kind: List`; typed lists (`VirtualServiceList`) have the same shape.
    if (kind.endsWith('List') && Array.isArray(value.items)) {
      if (depth >= MAX_LIST_DEPTH) {
        this.problem('invalid_object', source, line, '', `lists nested deeper than ${MAX_LIST_DEPTH}`);
        return;
      }
      value.items.forEach((item, i) => this.readValue(item, source, itemLines[i] ?? line, [], depth + 1));
      return;
    }
    const slash = apiVersion.lastIndexOf('/');
    const group = slash < 0 ? '' : apiVersion.slice(0, slash);
    const version = apiVersion.slice(slash + 1);
    const metadata = isObj(value.metadata) ? value.metadata : {};
    const namespace = str(metadata.namespace) || 'default';
    this.namespaces.add(namespace);
    if (kind === 'Namespace' && group === '' && str(metadata.name)) this.namespaces.add(str(metadata.name));

    const known = (KINDS as Record<string, { group: string; versions: readonly string[] } | undefined>)[kind];
    if (known === undefined || known.group !== group) {
      const key = group === '' ? kind : `${kind}.${group}`;
      this.ignoredKinds.set(key, (this.ignoredKinds.get(key) ?? 0) + 1);
      return;
    }
    const name = str(metadata.name);
    if (name === '') {
      this.problem('missing_field', source, line, kind, `${kind} without metadata.name skipped`);
      return;
    }
    const ref = `${namespace}/${name}`;
    const label = `${kind} ${ref}`;
    if (!known.versions.includes(version)) {
      this.problem(
        'unsupported_api_version',
        source,
        line,
        label,
        `apiVersion ${apiVersion} is not one of ${known.versions.map((v) => `${group}/${v}`).join(', ')}; read as ${group}/${known.versions[0]}`,
      );
    }
    const obj: RawObject = {
      kind: kind as Kind,
      version,
      namespace,
      name,
      ref,
      label,
      metadata,
      spec: isObj(value.spec) ? value.spec : {},
      status: isObj(value.status) ? value.status : {},
      source,
      line,
    };
    const key = `${kind} ${ref}`;
    const prev = this.objects.get(key);
    if (prev !== undefined) {
      this.problem(
        'duplicate_object',
        source,
        line,
        label,
        `${label} is defined again (first at ${prev.source}:${prev.line}); the later definition is used, as kubectl apply would`,
      );
    }
    this.objects.set(key, obj);
  }
}

/** Labels, selectors and annotations: a mapping of strings; other values are problems of the object `o`. */
export function readLabels(reader: Reader, v: unknown, o: RawObject, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (v === undefined || v === null) return out;
  if (!isObj(v)) {
    reader.problem('invalid_field', o.source, o.line, o.label, `${o.label}: ${what} is not a mapping; ignored`);
    return out;
  }
  for (const [k, x] of Object.entries(v)) {
    if (typeof x === 'string') out[k] = x;
    else if (typeof x === 'number' || typeof x === 'boolean') {
      // Kubernetes labels are strings; `version: 2` would be refused by the API server. Read as written.
      reader.problem('invalid_field', o.source, o.line, o.label, `${o.label}: ${what}: ${k} is not a string; read as "${String(x)}"`);
      out[k] = String(x);
    } else {
      reader.problem('invalid_field', o.source, o.line, o.label, `${o.label}: ${what}: ${k} is not a string; ignored`);
    }
  }
  return out;
}
