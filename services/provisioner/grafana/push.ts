/**
 * Pushes the generated dashboards to a running Grafana through its HTTP API (MESHLENS_GRAFANA_URL,
 * MESHLENS_GRAFANA_TOKEN), into the folder with the stable uid FOLDER.uid:
 *
 * 1. `GET /api/folders/:uid`; on 404, `POST /api/folders` `{uid, title}`.
 * 2. Per dashboard, `GET /api/dashboards/uid/:uid`; when the stored model (less `id` and `version`) and its
 *    folder equal ours, nothing is written. Otherwise `POST /api/dashboards/db`
 *    `{dashboard (id null, our uid), folderUid, overwrite: true, message}`.
 *
 * Idempotent by comparison rather than by overwrite alone: every save through /api/dashboards/db bumps the
 * dashboard's version and adds a history entry, even when nothing changed, so a push on every restart would
 * flood the version history. `overwrite: true` still makes our copy win over edits made in the UI.
 *
 * 5xx, 429 and network errors are retried with exponential backoff and jitter within `budgetMs`; 401/403 stop at
 * once with a message naming MESHLENS_GRAFANA_TOKEN (or the URL's credentials). The token is only ever sent in
 * `Authorization: Bearer`, never logged nor put in an error.
 *
 * Without a token, a user and password in the URL (`http://admin:secret@grafana:3000`) are sent as HTTP basic
 * auth, which Grafana accepts by default: a fresh Grafana (the compose stack's) then needs no service-account
 * token made by hand first. fetch refuses URLs with credentials, so they move into the header.
 */
import { redactUrl } from '../../../lib/runtime';
import { FOLDER } from './datasources';
import { grafanaDashboards } from './index';

export interface GrafanaPushOptions {
  /** Grafana's base URL (a sub-path such as `http://host/grafana` is kept). */
  url: string;
  /** Service-account token (`Authorization: Bearer`); without it, the URL's `user:password` (basic auth). */
  token?: string;
  /** Name → dashboard model; defaults to the generated dashboards. */
  dashboards?: Record<string, unknown>;
  /** Total time retries may take, per request (default 60 s). */
  budgetMs?: number;
  /** First backoff (default 500 ms), doubling to `maxBackoffMs` (default 10 s). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Per-request timeout (default 10 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface GrafanaPushResult {
  folder: { uid: string; created: boolean };
  created: string[];
  updated: string[];
  unchanged: string[];
}

export class GrafanaPushError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GrafanaPushError';
  }
}

const MESSAGE = 'meshlens provisioner: dashboards generated from code (services/provisioner/grafana)';

interface Answer {
  status: number;
  body: unknown;
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new GrafanaPushError('Grafana push stopped'));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(new GrafanaPushError('Grafana push stopped'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** JSON with object keys sorted, so two models compare equal whatever order Grafana stores their keys in. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** The model as compared: Grafana assigns `id` and `version` itself. */
function comparable(d: unknown): string {
  const { id: _id, version: _version, ...rest } = (d ?? {}) as Record<string, unknown>;
  return canonical(rest);
}

export async function pushDashboards(opts: GrafanaPushOptions): Promise<GrafanaPushResult> {
  const target = new URL(opts.url);
  let authorization: string;
  let credential: string;
  if (opts.token !== undefined) {
    authorization = `Bearer ${opts.token}`;
    credential = 'MESHLENS_GRAFANA_TOKEN is';
  } else if (target.username !== '') {
    const userPass = `${decodeURIComponent(target.username)}:${decodeURIComponent(target.password)}`;
    authorization = `Basic ${Buffer.from(userPass).toString('base64')}`;
    credential = 'the user and password in MESHLENS_GRAFANA_URL are';
  } else {
    throw new GrafanaPushError('no Grafana credentials: set MESHLENS_GRAFANA_TOKEN, or a user and password in MESHLENS_GRAFANA_URL');
  }
  target.username = '';
  target.password = '';
  const base = target.toString().replace(/\/+$/, '');
  const where = redactUrl(base);
  const budgetMs = opts.budgetMs ?? 60_000;
  const firstBackoff = opts.backoffMs ?? 500;
  const maxBackoff = opts.maxBackoffMs ?? 10_000;
  const timeoutMs = opts.timeoutMs ?? 10_000;

  /** One API call, retried on 5xx, 429 and network errors until the budget is spent. */
  const call = async (method: 'GET' | 'POST', path: string, body?: unknown): Promise<Answer> => {
    const deadline = Date.now() + budgetMs;
    let backoff = firstBackoff;
    for (let attempt = 1; ; attempt++) {
      let why: string;
      let retryAfterMs: number | undefined;
      try {
        const res = await fetch(`${base}${path}`, {
          method,
          headers: {
            Accept: 'application/json',
            Authorization: authorization,
            ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: opts.signal ? AbortSignal.any([opts.signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs),
        });
        const text = await res.text();
        let parsed: unknown = text;
        try {
          parsed = text === '' ? undefined : JSON.parse(text);
        } catch {
          // Not JSON (a proxy's error page): kept as text for the message.
        }
        if (res.status === 401 || res.status === 403) {
          throw new GrafanaPushError(
            `Grafana at ${where} answered ${res.status} to ${method} ${path}: ${credential} ${res.status === 401 ? 'not accepted' : 'not allowed to do this'}; use a service-account token (or a user) with the Editor role (folders and dashboards)`,
          );
        }
        if (res.status < 500 && res.status !== 429) return { status: res.status, body: parsed };
        why = `HTTP ${res.status}`;
        const ra = Number(res.headers.get('retry-after'));
        if (Number.isFinite(ra) && ra > 0) retryAfterMs = ra * 1000;
      } catch (err) {
        if (err instanceof GrafanaPushError) throw err;
        if (opts.signal?.aborted) throw new GrafanaPushError('Grafana push stopped');
        why = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name ?? 'network error';
      }
      const wait = Math.min(retryAfterMs ?? backoff * (0.5 + Math.random() / 2), maxBackoff);
      if (Date.now() + wait > deadline) {
        throw new GrafanaPushError(`Grafana at ${where} did not answer ${method} ${path} after ${attempt} attempts (last: ${why}); check MESHLENS_GRAFANA_URL`);
      }
      await sleep(wait, opts.signal);
      backoff = Math.min(backoff * 2, maxBackoff);
    }
  };
  const refused = (a: Answer, what: string): GrafanaPushError => {
    const m = (a.body as { message?: unknown } | undefined)?.message;
    return new GrafanaPushError(`Grafana at ${where} refused ${what}: HTTP ${a.status}${typeof m === 'string' ? ` (${m})` : ''}`);
  };

  // 1. The folder, by its stable uid.
  const result: GrafanaPushResult = { folder: { uid: FOLDER.uid, created: false }, created: [], updated: [], unchanged: [] };
  const folderPath = `/api/folders/${encodeURIComponent(FOLDER.uid)}`;
  const folder = await call('GET', folderPath);
  if (folder.status === 404) {
    const made = await call('POST', '/api/folders', { uid: FOLDER.uid, title: FOLDER.title });
    // 409/412: created meanwhile by another provisioner (or a folder of that title exists): check it is ours.
    if (made.status !== 200) {
      const again = await call('GET', folderPath);
      if (again.status !== 200) throw refused(made, `creating folder ${FOLDER.uid}`);
    } else result.folder.created = true;
  } else if (folder.status !== 200) {
    throw refused(folder, `reading folder ${FOLDER.uid}`);
  }

  // 2. Each dashboard: skipped when Grafana already holds it, as it is, in our folder.
  const dashboards = opts.dashboards ?? (grafanaDashboards() as unknown as Record<string, unknown>);
  for (const [name, d] of Object.entries(dashboards)) {
    const model: Record<string, unknown> = { ...(JSON.parse(JSON.stringify(d)) as Record<string, unknown>), id: null };
    const uid = model.uid;
    if (typeof uid !== 'string' || uid === '') throw new GrafanaPushError(`dashboard ${name} has no uid`);
    const stored = await call('GET', `/api/dashboards/uid/${encodeURIComponent(uid)}`);
    let exists = false;
    if (stored.status === 200) {
      exists = true;
      const s = stored.body as { dashboard?: unknown; meta?: { folderUid?: unknown } };
      if (s.meta?.folderUid === FOLDER.uid && comparable(s.dashboard) === comparable(model)) {
        result.unchanged.push(uid);
        continue;
      }
    } else if (stored.status !== 404) {
      throw refused(stored, `reading dashboard ${uid}`);
    }
    const saved = await call('POST', '/api/dashboards/db', { dashboard: model, folderUid: FOLDER.uid, overwrite: true, message: MESSAGE });
    if (saved.status !== 200) throw refused(saved, `saving dashboard ${uid}`);
    (exists ? result.updated : result.created).push(uid);
  }
  return result;
}
