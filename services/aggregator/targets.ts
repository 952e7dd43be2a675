/**
 * Prometheus scrape targets (CONTRACT.md §6): `GET /api/v1/prometheus/targets` answers Prometheus HTTP service
 * discovery (https://prometheus.io/docs/prometheus/latest/http_sd/): 200, `Content-Type: application/json`, the
 * full list of target groups `[{"targets": ["host:port"], "labels": {...}}]` every time (an empty list is valid).
 * With `MESHLENS_FILE_SD_PATH` the same groups are kept in a file for `file_sd_configs`.
 *
 * Two kinds of group, told apart by `meshlens_source` (prometheus/prometheus.yml splits them into two jobs):
 * - `membership`: every meshlens process's own `/metrics`, from lib/membership/ (this process, plus
 *   the `ingest`/`aggregator` replicas heard on the bus). Labels `meshlens_target`, `meshlens_instance`.
 * - `mesh-config`: the Envoy sidecars named in `MESHLENS_MESH_CONFIG`: Pods with an injected `istio-proxy` and a
 *   `status.podIP` (as `kubectl get pods -o yaml` prints them), and Istio WorkloadEntries, on the proxy's stats
 *   port `15090`, path `/stats/prometheus`. A pod that Istio's metrics merging annotated
 *   (`prometheus.io/port: "15020"`, `prometheus.io/path: /stats/prometheus`, the default since Istio 1.7) is
 *   scraped there instead, as Istio's own Prometheus configuration does. Pods labelled `istio-prometheus-ignore`
 *   are left out, as Istio's sample PodMonitor leaves them out. Labels `namespace`, `pod` (or `workload_entry`),
 *   `app`, `version`.
 *
 * Reserved labels: `__metrics_path__` sets the path per target; `job` is left to the scrape config.
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { MeshConfig, MeshWorkload } from '../../lib/meshconfig';
import type { Logger } from '../../lib/runtime';
import { hostPort, type Member, type MemberDirectory } from '../../lib/membership';
import { ApiError, TargetGroups, type TargetGroup } from './api-schema';

export const TARGETS_PATH = '/api/v1/prometheus/targets';
/** Envoy's Prometheus endpoint in every Istio sidecar (port `http-envoy-prom` of the `istio-proxy` container). */
export const ENVOY_STATS_PORT = 15090;
export const ENVOY_STATS_PATH = '/stats/prometheus';
/** meshlens's own metrics path (CONTRACT.md §5). */
export const MESHLENS_METRICS_PATH = '/metrics';
/** Label telling the two kinds of target group apart. */
export const SOURCE_LABEL = 'meshlens_source';
export const SOURCE_MEMBERSHIP = 'membership';
export const SOURCE_MESH_CONFIG = 'mesh-config';
/** Istio's sample PodMonitor keeps only pods without this label (samples/addons/extras/prometheus-operator.yaml). */
export const IGNORE_LABEL = 'istio-prometheus-ignore';

/** One target group of the HTTP SD answer (`{"targets": ["host:port"], "labels": {...}}`), as api-schema.ts describes it. */
export type { TargetGroup };

/** One group per meshlens process, sorted as the directory lists them. */
export function memberTargetGroups(members: readonly Member[]): TargetGroup[] {
  return members.map((m) => ({
    targets: [m.address],
    labels: {
      __metrics_path__: MESHLENS_METRICS_PATH,
      [SOURCE_LABEL]: SOURCE_MEMBERSHIP,
      meshlens_target: m.target,
      meshlens_instance: m.instance,
    },
  }));
}

function first(labels: Readonly<Record<string, string>>, keys: readonly string[]): string {
  for (const k of keys) {
    const v = labels[k];
    if (v !== undefined && v !== '') return v;
  }
  return '';
}

/** Where to scrape a workload's sidecar; undefined when it has none or cannot be reached. */
export function sidecarTarget(w: MeshWorkload): { address: string; path: string } | undefined {
  if (!w.sidecar || w.address === '' || w.address.includes('://')) return undefined;
  if (w.labels[IGNORE_LABEL] !== undefined) return undefined;
  // A finished pod's IP is handed to the next pod: never scrape it.
  if (w.phase === 'Succeeded' || w.phase === 'Failed') return undefined;
  let port = ENVOY_STATS_PORT;
  let path = ENVOY_STATS_PATH;
  // Istio's metrics merging (meshConfig.enablePrometheusMerge) rewrites these to the agent's 15020, which serves
  // Envoy's and the application's metrics together; `prometheus.io/scrape: "false"` turns merging off.
  if (w.kind === 'Pod' && w.annotations['prometheus.io/scrape'] !== 'false') {
    const p = w.annotations['prometheus.io/port'];
    if (p !== undefined && /^\d{1,5}$/.test(p.trim()) && Number(p) >= 1 && Number(p) <= 65535) port = Number(p);
    const q = w.annotations['prometheus.io/path'];
    if (q !== undefined && q.trim().startsWith('/')) path = q.trim();
  }
  return { address: hostPort(w.address, port), path };
}

/** One group per sidecar, in the mesh config's order; a second workload on an already listed address is left out. */
export function sidecarTargetGroups(mesh: MeshConfig): TargetGroup[] {
  const out: TargetGroup[] = [];
  const seen = new Set<string>();
  for (const w of mesh.workloads) {
    const t = sidecarTarget(w);
    if (t === undefined || seen.has(`${t.address}${t.path}`)) continue;
    seen.add(`${t.address}${t.path}`);
    const labels: Record<string, string> = { __metrics_path__: t.path, [SOURCE_LABEL]: SOURCE_MESH_CONFIG, namespace: w.namespace };
    labels[w.kind === 'Pod' ? 'pod' : 'workload_entry'] = w.name;
    // The labels Istio derives its canonical service and revision from, most common first.
    const app = first(w.labels, ['app', 'app.kubernetes.io/name', 'service.istio.io/canonical-name']);
    const version = first(w.labels, ['version', 'app.kubernetes.io/version', 'service.istio.io/canonical-revision']);
    if (app !== '') labels.app = app;
    if (version !== '') labels.version = version;
    out.push({ targets: [t.address], labels });
  }
  return out;
}

export function buildTargetGroups(members: readonly Member[], mesh: MeshConfig): TargetGroup[] {
  return [...memberTargetGroups(members), ...sidecarTargetGroups(mesh)];
}

/**
 * Writes `groups` to `path` for `file_sd_configs`: a temporary file in the same folder, then a rename, so that
 * Prometheus (which watches the folder) never reads half a file. The temporary name does not end in `.json`, so a
 * `*.json` glob never picks it up.
 */
export async function writeFileSd(path: string, groups: readonly TargetGroup[]): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.tmp`);
  try {
    await writeFile(tmp, `${JSON.stringify(groups, null, 2)}\n`);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}

export interface PrometheusTargetsOptions {
  directory: MemberDirectory;
  meshConfig: MeshConfig;
  /** `MESHLENS_FILE_SD_PATH`; undefined → no file. */
  fileSdPath?: string;
  logger: Logger;
  /** Delay before retrying a failed file write. Default 10 s. */
  retryMs?: number;
}

export interface PrometheusTargets {
  /** The current target groups. */
  groups(): TargetGroup[];
  /** `GET /api/v1/prometheus/targets`. */
  registerRoutes(app: FastifyInstance): void;
  /** Writes the file_sd file now and whenever the members change. */
  start(): Promise<void>;
  /** Stops following changes and waits for a write in progress. The file stays. */
  close(): Promise<void>;
}

export function createPrometheusTargets(opts: PrometheusTargetsOptions): PrometheusTargets {
  const { directory, logger, fileSdPath } = opts;
  const retryMs = opts.retryMs ?? 10_000;
  // The mesh config is read once at start: its groups never change.
  const sidecars = sidecarTargetGroups(opts.meshConfig);
  const groups = (): TargetGroup[] => [...memberTargetGroups(directory.list()), ...sidecars];

  let written: string | undefined;
  let writing: Promise<void> | null = null;
  let again = false;
  let retryTimer: NodeJS.Timeout | null = null;
  let unsubscribe: (() => void) | undefined;
  let closed = false;

  const write = (): Promise<void> => {
    if (fileSdPath === undefined || closed) return Promise.resolve();
    if (writing !== null) {
      again = true; // the groups may have changed after the running write serialized them
      return writing;
    }
    writing = (async () => {
      do {
        again = false;
        const current = groups();
        const text = JSON.stringify(current);
        if (text === written) continue;
        try {
          await writeFileSd(fileSdPath, current);
          written = text;
          logger.debug({ path: fileSdPath, groups: current.length }, 'file_sd targets written');
        } catch (err) {
          logger.error({ err, path: fileSdPath, retryInMs: retryMs }, 'cannot write the file_sd targets file');
          if (!closed && retryTimer === null) {
            retryTimer = setTimeout(() => {
              retryTimer = null;
              void write();
            }, retryMs);
            retryTimer.unref();
          }
          break;
        }
      } while (again && !closed);
    })().finally(() => (writing = null));
    return writing;
  };

  return {
    groups,
    registerRoutes(app: FastifyInstance): void {
      // The schema documents the answer (OpenAPI); the body is sent as bytes, so it is not what serializes it.
      app.get(TARGETS_PATH, { schema: { response: { 200: TargetGroups, '4xx': ApiError } } }, async (_request, reply) =>
        // Prometheus accepts `application/json` with at most a utf-8 charset; a Buffer keeps fastify from adding one.
        reply.code(200).header('content-type', 'application/json').send(Buffer.from(JSON.stringify(groups()))),
      );
    },
    async start(): Promise<void> {
      if (fileSdPath === undefined) return;
      const ext = extname(fileSdPath).toLowerCase();
      if (ext !== '.json' && ext !== '.yml' && ext !== '.yaml') {
        logger.warn({ path: fileSdPath }, 'MESHLENS_FILE_SD_PATH: Prometheus file_sd reads only *.json, *.yml and *.yaml files');
      }
      unsubscribe = directory.onChange(() => void write());
      await write();
    },
    async close(): Promise<void> {
      closed = true;
      unsubscribe?.();
      if (retryTimer !== null) clearTimeout(retryTimer);
      await writing;
    },
  };
}
