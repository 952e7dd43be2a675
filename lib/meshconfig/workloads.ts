/**
 * Workloads with an Istio sidecar, for Prometheus scrape targets (services/aggregator/targets.ts): Kubernetes
 * `Pod`s as `kubectl get pods -o yaml` prints them (with `status.podIP`) and Istio `WorkloadEntry`s (VMs and other
 * non-Kubernetes workloads, `spec.address`). Only what a scrape target needs is kept.
 */
import { isObj, readLabels, str, type RawObject, type Reader } from './read';

/** The Istio annotation the sidecar injector writes on every pod it injected. */
export const SIDECAR_STATUS_ANNOTATION = 'sidecar.istio.io/status';
/** The name of Istio's sidecar container (a regular container, or an init container with native sidecars). */
export const ISTIO_PROXY_CONTAINER = 'istio-proxy';

export interface MeshWorkload {
  kind: 'Pod' | 'WorkloadEntry';
  namespace: string;
  name: string;
  /** `<namespace>/<name>`. */
  ref: string;
  /** Pod `status.podIP`; WorkloadEntry `spec.address` (an IP, a DNS name or `unix://...`); '' when absent. */
  address: string;
  /** Pod `metadata.labels`; WorkloadEntry `spec.labels`. */
  labels: Readonly<Record<string, string>>;
  /** `metadata.annotations` with string values. */
  annotations: Readonly<Record<string, string>>;
  /**
   * Pod: Istio injected a sidecar (the `sidecar.istio.io/status` annotation, or a container or init container
   * named `istio-proxy`). WorkloadEntry: always true, the workload runs the proxy itself (that is what a
   * WorkloadEntry is for).
   */
  sidecar: boolean;
  /** Pod `status.phase` (`Running`, `Succeeded`...); '' when absent and for WorkloadEntries. */
  phase: string;
  source: string;
  line: number;
}

/** Reads one Pod or WorkloadEntry. */
export function readWorkload(reader: Reader, o: RawObject): MeshWorkload {
  const annotations = readLabels(reader, o.metadata.annotations, o, 'metadata.annotations');
  if (o.kind === 'Pod') {
    const named = (list: unknown): boolean => Array.isArray(list) && list.some((c) => isObj(c) && c.name === ISTIO_PROXY_CONTAINER);
    return {
      kind: 'Pod',
      namespace: o.namespace,
      name: o.name,
      ref: o.ref,
      address: str(o.status.podIP).trim(),
      labels: readLabels(reader, o.metadata.labels, o, 'metadata.labels'),
      annotations,
      sidecar: annotations[SIDECAR_STATUS_ANNOTATION] !== undefined || named(o.spec.containers) || named(o.spec.initContainers),
      phase: str(o.status.phase),
      source: o.source,
      line: o.line,
    };
  }
  return {
    kind: 'WorkloadEntry',
    namespace: o.namespace,
    name: o.name,
    ref: o.ref,
    address: str(o.spec.address).trim(),
    labels: readLabels(reader, o.spec.labels, o, 'spec.labels'),
    annotations,
    sidecar: true,
    phase: '',
    source: o.source,
    line: o.line,
  };
}
