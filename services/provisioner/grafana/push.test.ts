/**
 * The Grafana push against a test server implementing the documented endpoints of Grafana's HTTP API
 * (Folder API: `GET /api/folders/:uid`, `POST /api/folders`; Dashboard API: `GET /api/dashboards/uid/:uid`,
 * `POST /api/dashboards/db`). The server checks every request (method, path, bearer token, content type,
 * JSON body shape), keeps state as Grafana does (ids, versions, folders) and answers with Grafana's status
 * codes and bodies. Anything outside the documented API is recorded as a violation and answered 404/400.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { start } from '../../../bin/start';
import { createLogger, loadConfig } from '../../../lib/runtime';
import { FOLDER } from './datasources';
import { grafanaDashboards } from './index';
import { GrafanaPushError, pushDashboards } from './push';

const TOKEN = 'glsa_test_secret_token_0123456789';
/** The `user:password` the fake Grafana takes as basic auth (a fresh Grafana's admin, with a password set). */
const BASIC_USER = 'admin:s3cret p@ss';
const FAST = { budgetMs: 5_000, backoffMs: 10, maxBackoffMs: 50, timeoutMs: 2_000 };

interface StoredDashboard {
  dashboard: Record<string, unknown>;
  folderUid: string;
  version: number;
}

interface FakeGrafana {
  url: string;
  folders: Map<string, { id: number; uid: string; title: string; version: number }>;
  dashboards: Map<string, StoredDashboard>;
  requests: { method: string; path: string }[];
  violations: string[];
  /** Statuses answered (before any checking) to the next requests, in order. */
  failNext: number[];
  /** Never answer (a hung Grafana). */
  hang: boolean;
  /** The state as a string: equal strings, no change. */
  snapshot(): string;
  close(): Promise<void>;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

async function fakeGrafana(acceptedToken = TOKEN): Promise<FakeGrafana> {
  let nextId = 1;
  const g: Omit<FakeGrafana, 'url' | 'close'> = {
    folders: new Map(),
    dashboards: new Map(),
    requests: [],
    violations: [],
    failNext: [],
    hang: false,
    snapshot: () => JSON.stringify({ folders: [...g.folders.entries()], dashboards: [...g.dashboards.entries()] }),
  };
  const send = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const handle = (req: IncomingMessage, res: ServerResponse, raw: string): void => {
    const method = req.method ?? '';
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    g.requests.push({ method, path });
    if (g.hang) return;
    const failure = g.failNext.shift();
    if (failure !== undefined) return send(res, failure, { message: 'Service Unavailable' });
    const bad = (why: string, status = 400): void => {
      g.violations.push(`${method} ${path}: ${why}`);
      send(res, status, { message: why });
    };
    // Authentication: a service-account token as a bearer token, or a user's basic auth (Grafana takes both by default).
    const auth = req.headers.authorization;
    const basic = auth === undefined ? null : /^Basic (\S+)$/.exec(auth);
    if (basic) {
      if (Buffer.from(basic[1] as string, 'base64').toString() !== BASIC_USER) return send(res, 401, { message: 'invalid username or password', traceID: '' });
    } else {
      if (auth === undefined || !/^Bearer \S+$/.test(auth)) return bad('no Authorization: Bearer header', 401);
      if (auth !== `Bearer ${acceptedToken}`) return send(res, 401, { message: 'invalid API key', traceID: '' });
    }
    let body: unknown;
    if (method === 'POST') {
      if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) return bad('POST without Content-Type: application/json');
      try {
        body = JSON.parse(raw);
      } catch {
        return bad('body is not JSON');
      }
      if (!isObject(body)) return bad('body is not a JSON object');
    } else if (raw !== '') return bad(`${method} with a body`);

    let m: RegExpExecArray | null;
    if (method === 'GET' && (m = /^\/api\/folders\/([^/]+)$/.exec(path))) {
      const f = g.folders.get(decodeURIComponent(m[1] as string));
      if (!f) return send(res, 404, { message: 'folder not found', status: 'not-found' });
      return send(res, 200, { ...f, url: `/dashboards/f/${f.uid}/${f.title}`, hasAcl: false, canSave: true, canEdit: true, canAdmin: true });
    }
    if (method === 'POST' && path === '/api/folders') {
      const b = body as Record<string, unknown>;
      const extra = Object.keys(b).filter((k) => !['uid', 'title', 'parentUid', 'description'].includes(k));
      if (extra.length > 0) return bad(`unknown folder fields ${extra.join(', ')}`);
      if (typeof b.title !== 'string' || b.title === '') return bad('folder title missing');
      if (b.uid !== undefined && (typeof b.uid !== 'string' || b.uid.length > 40)) return bad('folder uid must be a string of at most 40 characters');
      const uid = (b.uid as string | undefined) ?? `gen${nextId}`;
      if (g.folders.has(uid)) return send(res, 409, { message: 'a folder with the same uid already exists' });
      const f = { id: nextId++, uid, title: b.title, version: 1 };
      g.folders.set(uid, f);
      return send(res, 200, { ...f, url: `/dashboards/f/${uid}/${b.title}` });
    }
    if (method === 'GET' && (m = /^\/api\/dashboards\/uid\/([^/]+)$/.exec(path))) {
      const d = g.dashboards.get(decodeURIComponent(m[1] as string));
      if (!d) return send(res, 404, { message: 'Dashboard not found' });
      const folder = g.folders.get(d.folderUid);
      return send(res, 200, {
        dashboard: d.dashboard,
        meta: { type: 'db', slug: String(d.dashboard.title).toLowerCase(), version: d.version, folderUid: d.folderUid, folderTitle: folder?.title, provisioned: false },
      });
    }
    if (method === 'POST' && path === '/api/dashboards/db') {
      const b = body as Record<string, unknown>;
      const extra = Object.keys(b).filter((k) => !['dashboard', 'folderId', 'folderUid', 'message', 'overwrite'].includes(k));
      if (extra.length > 0) return bad(`unknown fields ${extra.join(', ')}`);
      const d = b.dashboard;
      if (!isObject(d)) return bad('dashboard missing');
      if (!('id' in d) || d.id !== null) return bad('dashboard.id must be null (we do not send Grafana-local ids)');
      if (typeof d.uid !== 'string' || d.uid === '' || d.uid.length > 40) return bad('dashboard.uid must be our stable uid (at most 40 characters)');
      if (typeof d.title !== 'string' || d.title === '') return bad('dashboard.title missing');
      if (typeof b.folderUid !== 'string') return bad('folderUid missing (dashboards go into the meshlens folder by uid)');
      if (b.folderId !== undefined) return bad('folderId is deprecated: folderUid only');
      if (b.overwrite !== true) return bad('overwrite must be true');
      if (b.message !== undefined && typeof b.message !== 'string') return bad('message must be a string');
      if (!g.folders.has(b.folderUid)) return send(res, 400, { message: 'folder not found', status: 'not-found' });
      const old = g.dashboards.get(d.uid);
      const version = (old?.version ?? 0) + 1;
      const id = (old?.dashboard.id as number | undefined) ?? nextId++;
      g.dashboards.set(d.uid, { dashboard: { ...d, id, version }, folderUid: b.folderUid, version });
      return send(res, 200, { id, uid: d.uid, url: `/d/${d.uid}/x`, status: 'success', version, slug: 'x' });
    }
    return bad('not a documented endpoint of the Folder or Dashboard API', 404);
  };
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (raw += c));
    req.on('end', () => handle(req, res, raw));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    ...g,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  } as FakeGrafana;
}

const ours = grafanaDashboards() as unknown as Record<string, { uid: string; title: string }>;
const ourUids = Object.values(ours).map((d) => d.uid).sort();

describe('pushDashboards (Grafana HTTP API)', () => {
  let grafana: FakeGrafana;
  beforeEach(async () => {
    grafana = await fakeGrafana();
  });
  afterEach(async () => {
    await grafana.close();
  });

  it('creates the folder by uid and every dashboard in it, then a second run changes nothing', async () => {
    const first = await pushDashboards({ url: grafana.url, token: TOKEN, ...FAST });
    expect(grafana.violations).toEqual([]);
    expect(first.folder).toEqual({ uid: FOLDER.uid, created: true });
    expect(first.created.sort()).toEqual(ourUids);
    expect(first.updated).toEqual([]);
    expect([...grafana.folders.keys()]).toEqual([FOLDER.uid]);
    expect([...grafana.dashboards.keys()].sort()).toEqual(ourUids);
    for (const d of Object.values(ours)) {
      const stored = grafana.dashboards.get(d.uid) as StoredDashboard;
      expect(stored.folderUid).toBe(FOLDER.uid);
      expect(stored.dashboard.title).toBe(d.title);
      expect(stored.version).toBe(1);
    }

    const before = grafana.snapshot();
    const seen = grafana.requests.length;
    const second = await pushDashboards({ url: grafana.url, token: TOKEN, ...FAST });
    expect(grafana.violations).toEqual([]);
    expect(second).toEqual({ folder: { uid: FOLDER.uid, created: false }, created: [], updated: [], unchanged: expect.any(Array) });
    expect(second.unchanged.sort()).toEqual(ourUids);
    expect(grafana.snapshot()).toBe(before);
    // Reads only: no folder re-created, no dashboard saved (no version bump, no history entry).
    expect(grafana.requests.slice(seen).filter((r) => r.method !== 'GET')).toEqual([]);
  });

  it('puts back a dashboard edited in Grafana (overwrite) and leaves the others alone', async () => {
    await pushDashboards({ url: grafana.url, token: TOKEN, ...FAST });
    const uid = ourUids[0] as string;
    const edited = grafana.dashboards.get(uid) as StoredDashboard;
    edited.dashboard = { ...edited.dashboard, title: 'edited in the UI' };
    const r = await pushDashboards({ url: grafana.url, token: TOKEN, ...FAST });
    expect(grafana.violations).toEqual([]);
    expect(r.updated).toEqual([uid]);
    expect(r.unchanged).toHaveLength(ourUids.length - 1);
    const restored = grafana.dashboards.get(uid) as StoredDashboard;
    expect(restored.version).toBe(2);
    expect(restored.dashboard.title).toBe(Object.values(ours).find((d) => d.uid === uid)?.title);
  });

  it('stops at once on 401 with one line naming MESHLENS_GRAFANA_TOKEN, never the token', async () => {
    const wrong = 'glsa_wrong_secret_value_987654321';
    let error: unknown;
    try {
      await pushDashboards({ url: grafana.url, token: wrong, ...FAST });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(GrafanaPushError);
    const message = (error as Error).message;
    expect(message).toMatch(/401.*MESHLENS_GRAFANA_TOKEN/);
    expect(message).not.toContain('\n');
    expect(message).not.toContain(wrong);
    expect(message).not.toContain(TOKEN);
    // No retry of a refused token.
    expect(grafana.requests).toHaveLength(1);
    expect(grafana.folders.size).toBe(0);
    expect(grafana.violations).toEqual([]);
  });

  it('without a token, sends the user and password of the URL as basic auth, never in the URL or an error', async () => {
    const withUser = (userPass: string): string => grafana.url.replace('http://', `http://${userPass.split(':').map(encodeURIComponent).join(':')}@`);
    const r = await pushDashboards({ url: withUser(BASIC_USER), ...FAST });
    expect(grafana.violations).toEqual([]);
    expect(r.created.sort()).toEqual(ourUids);
    let error: unknown;
    try {
      await pushDashboards({ url: withUser('admin:wrong-password'), ...FAST });
    } catch (e) {
      error = e;
    }
    expect((error as Error).message).toMatch(/401.*the user and password in MESHLENS_GRAFANA_URL are not accepted/);
    expect((error as Error).message).not.toContain('wrong-password');
    await expect(pushDashboards({ url: grafana.url, ...FAST })).rejects.toThrow(/no Grafana credentials: set MESHLENS_GRAFANA_TOKEN/);
  });

  it('retries 503 (and 429) with backoff, then succeeds', async () => {
    grafana.failNext.push(503, 503, 429);
    const r = await pushDashboards({ url: grafana.url, token: TOKEN, ...FAST });
    expect(grafana.violations).toEqual([]);
    expect(r.created.sort()).toEqual(ourUids);
    // The first request (GET folder) was answered 503, 503, 429 and then 200/404.
    expect(grafana.requests.slice(0, 4).map((q) => `${q.method} ${q.path}`)).toEqual(Array(4).fill(`GET /api/folders/${FOLDER.uid}`));
  });

  it('gives up on a Grafana that keeps failing within its budget, naming MESHLENS_GRAFANA_URL', async () => {
    grafana.failNext.push(...Array<number>(1000).fill(503));
    await expect(pushDashboards({ url: grafana.url, token: TOKEN, ...FAST, budgetMs: 300 })).rejects.toThrow(/after \d+ attempts \(last: HTTP 503\).*MESHLENS_GRAFANA_URL/);
  });
});

describe('the provisioner target', () => {
  const env = (url: string): Record<string, string> => ({
    MESHLENS_GRAFANA_URL: url,
    MESHLENS_GRAFANA_TOKEN: TOKEN,
    MESHLENS_HTTP_PORT: '0',
    MESHLENS_LOG_LEVEL: 'silent',
  });

  it('pushes the dashboards at start, and is ready once they are in Grafana', async () => {
    const grafana = await fakeGrafana();
    const running = await start({ config: loadConfig(env(grafana.url)), target: 'provisioner', logger: createLogger('silent', 'test'), processMetrics: false, grafanaTuning: FAST });
    try {
      const r = await running.grafanaPush;
      expect(r?.created.sort()).toEqual(ourUids);
      expect([...grafana.dashboards.keys()].sort()).toEqual(ourUids);
      expect(grafana.violations).toEqual([]);
      const ready = await fetch(`http://127.0.0.1:${running.ports.http}/readyz`);
      expect(ready.status).toBe(200);
    } finally {
      await running.close();
      await grafana.close();
    }
  });

  it('does not wait for a Grafana that does not answer', async () => {
    const grafana = await fakeGrafana();
    grafana.hang = true;
    const t0 = Date.now();
    const running = await start({
      config: loadConfig(env(grafana.url)),
      target: 'provisioner',
      logger: createLogger('silent', 'test'),
      processMetrics: false,
      grafanaTuning: { ...FAST, timeoutMs: 60_000, budgetMs: 60_000 },
    });
    try {
      expect(Date.now() - t0).toBeLessThan(5_000);
      const health = await fetch(`http://127.0.0.1:${running.ports.http}/healthz`);
      expect(health.status).toBe(200);
      expect(grafana.requests.length).toBeGreaterThan(0);
    } finally {
      await running.close();
      await expect(running.grafanaPush).resolves.toBeUndefined();
      await grafana.close();
    }
  });

  it('refuses to start without MESHLENS_GRAFANA_URL, naming it', async () => {
    await expect(start({ config: loadConfig({ MESHLENS_HTTP_PORT: '0' }), target: 'provisioner', logger: createLogger('silent', 'test'), processMetrics: false })).rejects.toThrow(
      /MESHLENS_GRAFANA_URL is not set/,
    );
  });
});
