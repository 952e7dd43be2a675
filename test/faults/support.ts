/**
 * Harness of the fault suite (issue 9): meshlens runs as users run it, `node bin/meshlens.js all` (or
 * `npm start`) in a child process with its settings in the environment, and the tests talk to it over real
 * HTTP and gRPC, then do to it what operators and failures do (SIGTERM, kill -9, restarts, a store that goes
 * away, hostile bodies). Nothing here imports meshlens itself: the only way in is the wire.
 *
 * `MESHLENS_FAULT_ROOT` chooses the meshlens checkout to run (default: this repository), so the same tests
 * can be pointed at an older commit to prove that they fail there:
 *
 *   git worktree add /tmp/meshlens-baseline 2bc1333 && ln -s "$PWD/node_modules" /tmp/meshlens-baseline/
 *   MESHLENS_FAULT_ROOT=/tmp/meshlens-baseline npx jest test/faults/tokens.test.ts
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  credentials,
  makeGenericClientConstructor,
  Metadata,
  status as grpcStatus,
  type Client,
  type ServiceError,
} from '@grpc/grpc-js';
import type { SubsetsAnswer } from '../../services/aggregator';

/** The meshlens checkout whose CLI the tests run. */
export const ROOT = resolve(process.env.MESHLENS_FAULT_ROOT ?? join(__dirname, '..', '..'));

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------------------------

export interface Ports {
  http: number;
  otlpGrpc: number;
  otlpHttp: number;
  zipkin: number;
}

/** The meshlens CLI targets a test can run. */
export type Target = 'all' | 'ingest' | 'aggregator' | 'tracer';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StartOptions {
  /** Reuse a data dir (restarts); default: a fresh temporary one, removed after the test file. */
  dataDir?: string;
  /** More MESHLENS_* settings (they win over the harness defaults). */
  env?: Record<string, string>;
  /** Wait for `GET /readyz` 200 before returning (default true). */
  waitReady?: boolean;
  /** `node` runs `node bin/meshlens.js <target>`; `npm` runs `npm start` (what the README tells users to type). */
  via?: 'node' | 'npm';
  /** The CLI target (default `all`); `ingest` and `all` serve every receiver, the others HTTP only. */
  target?: Target;
  /** Starts the child instead of `node bin/meshlens.js <target>` (the distributed test's relay-bus children). */
  launch?: (env: NodeJS.ProcessEnv, target: Target) => ChildProcess;
  /** How long to wait for the banner and readiness (default 60 s: tsx compiles the CLI on a cold cache). */
  startTimeoutMs?: number;
  /** `test` (default): ended after the test that started it; `file`: shared by a file's tests (beforeAll). */
  scope?: 'test' | 'file';
}

const TAIL = 16 * 1024;
const children = new Map<Meshlens, 'test' | 'file'>();
const tempDirs = new Set<string>();

/** A fresh temporary folder, removed by `cleanup()` once every child using it is gone. */
export function tempDir(prefix = 'meshlens-fault-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

/**
 * One running meshlens. Ports come from the banner the CLI prints on stdout (every port is 0, so the OS picks
 * free ones and test files can run side by side).
 */
export class Meshlens {
  readonly child: ChildProcess;
  readonly dataDir: string;
  readonly startedAt = Date.now();
  ports: Ports = { http: 0, otlpGrpc: 0, otlpHttp: 0, zipkin: 0 };
  /** Set when the child exits (the child being npm for `via: 'npm'`). */
  exit: Exit | undefined;
  exitedAt: number | undefined;
  readonly exited: Promise<Exit>;
  private out = '';
  private err = '';

  constructor(
    child: ChildProcess,
    dataDir: string,
    readonly target: Target = 'all',
  ) {
    this.child = child;
    this.dataDir = dataDir;
    child.stdout?.on('data', (b: Buffer) => (this.out = (this.out + b.toString()).slice(-TAIL)));
    child.stderr?.on('data', (b: Buffer) => (this.err = (this.err + b.toString()).slice(-TAIL)));
    this.exited = new Promise((resolveExit) => {
      child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        this.exitedAt = Date.now();
        resolveExit(this.exit);
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  get base(): string {
    return `http://127.0.0.1:${this.ports.http}`;
  }

  get otlpHttpBase(): string {
    return `http://127.0.0.1:${this.ports.otlpHttp}`;
  }

  get zipkinBase(): string {
    return `http://127.0.0.1:${this.ports.zipkin}`;
  }

  stdout(): string {
    return this.out;
  }

  /** The last lines of stdout and stderr, for failure messages. */
  logs(): string {
    const exit = this.exit ? ` (exited: code ${String(this.exit.code)}, signal ${String(this.exit.signal)})` : '';
    return `--- meshlens pid ${this.pid}${exit}, stdout tail:\n${this.out.slice(-4000)}\n--- stderr tail:\n${this.err.slice(-4000)}`;
  }

  /** Polls the banner until every port it prints is known. */
  async waitForBanner(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ports = parseBanner(this.out, this.target);
      if (ports) {
        this.ports = ports;
        return;
      }
      if (!this.running) throw new Error(`meshlens exited before printing its ports\n${this.logs()}`);
      if (Date.now() > deadline) throw new Error(`meshlens printed no banner within ${timeoutMs} ms\n${this.logs()}`);
      await sleep(50);
    }
  }

  /** `GET /readyz` until `want` (200 by default), or throws with the logs. */
  async waitReady(timeoutMs = 30_000, want = 200): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      if (!this.running) throw new Error(`meshlens exited while waiting for /readyz ${want}\n${this.logs()}`);
      try {
        const res = await request(`${this.base}/readyz`, { timeoutMs: 5_000 });
        if (res.status === want) return;
        last = `${res.status} ${res.text().slice(0, 300)}`;
      } catch (err) {
        last = String(err);
      }
      if (Date.now() > deadline) throw new Error(`/readyz was not ${want} within ${timeoutMs} ms (last: ${last})\n${this.logs()}`);
      await sleep(100);
    }
  }

  /**
   * Sends `signal` to the process (npm's own pid for `via: 'npm'`) and waits for it to exit; `ms` is the
   * time from the signal to the exit. Past `timeoutMs` the child is killed so no test leaves it behind.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 60_000): Promise<Exit & { ms: number }> {
    const t0 = Date.now();
    if (this.running) {
      this.child.kill(signal);
      const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
      await this.exited;
      clearTimeout(timer);
    }
    const exit = this.exit as Exit;
    return { ...exit, ms: (this.exitedAt ?? Date.now()) - t0 };
  }

  /** `kill -9`: no handler runs, nothing is flushed. */
  async kill9(): Promise<Exit> {
    if (this.running) this.child.kill('SIGKILL');
    return this.exited;
  }
}

const BANNER = {
  http: /^\s*http\s+https?:\/\/\S+:(\d+)\b/m,
  otlpGrpc: /^\s*otlp grpc\s+\S+:(\d+)\s*$/m,
  otlpHttp: /^\s*otlp http\s+https?:\/\/\S+:(\d+)\b/m,
  zipkin: /^\s*zipkin\s+https?:\/\/\S+:(\d+)\b/m,
};

/**
 * The ports of a banner (JSON log lines may be interleaved); undefined until every port the target serves is
 * there: all four for `all` and `ingest`, HTTP only for the others (their receiver ports stay 0).
 */
export function parseBanner(stdout: string, target: Target = 'all'): Ports | undefined {
  const port = (re: RegExp): number | undefined => {
    const m = re.exec(stdout);
    return m ? Number(m[1]) : undefined;
  };
  if (target !== 'all' && target !== 'ingest') {
    const http = port(BANNER.http);
    return http ? { http, otlpGrpc: 0, otlpHttp: 0, zipkin: 0 } : undefined;
  }
  const ports = { http: port(BANNER.http), otlpGrpc: port(BANNER.otlpGrpc), otlpHttp: port(BANNER.otlpHttp), zipkin: port(BANNER.zipkin) };
  if (Object.values(ports).some((p) => p === undefined || p === 0)) return undefined;
  return ports as Ports;
}

/**
 * The environment of a meshlens child: the test runner's own, less every MESHLENS_* variable (a developer's
 * shell or CI must not change what a test runs), plus free ports, a quiet log and the test's settings.
 */
function childEnv(dataDir: string, extra: Record<string, string> | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('MESHLENS_')) env[k] = v;
  return {
    ...env,
    MESHLENS_HTTP_PORT: '0',
    MESHLENS_OTLP_GRPC_PORT: '0',
    MESHLENS_OTLP_HTTP_PORT: '0',
    MESHLENS_ZIPKIN_PORT: '0',
    MESHLENS_LISTEN_HOST: '127.0.0.1',
    MESHLENS_DATA_DIR: dataDir,
    MESHLENS_LOG_LEVEL: 'warn',
    // npm's own chatter (update checks) has no place in a test's stdout.
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    ...extra,
  };
}

/** Spawns meshlens and returns once it printed its ports (and, by default, answers /readyz 200). */
export async function startMeshlens(opts: StartOptions = {}): Promise<Meshlens> {
  const dataDir = opts.dataDir ?? tempDir();
  const env = childEnv(dataDir, opts.env);
  const target = opts.target ?? 'all';
  const child = opts.launch
    ? opts.launch(env, target)
    : opts.via === 'npm'
      ? // Its own process group, so cleanup can end npm, its shell and node together whatever npm does.
        spawn('npm', ['start'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
      : spawn(process.execPath, ['bin/meshlens.js', target], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const m = new Meshlens(child, dataDir, target);
  children.set(m, opts.scope ?? 'test');
  const timeout = opts.startTimeoutMs ?? 60_000;
  await m.waitForBanner(timeout);
  if (opts.waitReady !== false) await m.waitReady(timeout);
  return m;
}

export interface ProcessInfo {
  pid: number;
  argv: string[];
}

/** Live processes of process group `pgid` whose command line mentions `needle` (Linux /proc). */
export function processesInGroup(pgid: number, needle: string): ProcessInfo[] {
  const out: ProcessInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // Fields after the parenthesised command: state ppid pgrp ...
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) !== pgid || fields[0] === 'Z') continue;
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
      if (argv.join(' ').includes(needle)) out.push({ pid: Number(name), argv });
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

/** True while `pid` is a live process (a zombie, exited but not yet reaped, counts as gone). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

const extraPids = new Set<number>();

/** A process the test found (npm's node grandchild) that cleanup must end if it is still there. */
export function trackPid(pid: number): void {
  extraPids.add(pid);
}

/**
 * Ends every child still running (SIGKILL, by pid or by the npm child's own group) and waits for it; with
 * `testScoped`, only those a test started (a file's shared process lives until afterAll).
 */
export async function killChildren(testScoped = false): Promise<void> {
  const waits: Promise<unknown>[] = [];
  for (const [m, scope] of children) {
    if (testScoped && scope === 'file') continue;
    if (m.child.spawnargs[0] === 'npm') {
      // npm leads its own process group: end each member (npm, its shell, node) by its pid, even after npm
      // itself exited, since a node it left behind is still in that group.
      for (const { pid } of processesInGroup(m.pid, '')) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
        trackPid(pid);
      }
    }
    if (m.running) {
      try {
        m.child.kill('SIGKILL');
      } catch {
        // already gone
      }
      waits.push(m.exited);
    }
    children.delete(m);
  }
  for (const pid of extraPids) {
    if (alive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
      const deadline = Date.now() + 5_000;
      waits.push((async () => {
        while (alive(pid) && Date.now() < deadline) await sleep(50);
      })());
    }
    extraPids.delete(pid);
  }
  await Promise.all(waits);
}

/** Removes the temporary data dirs (call once every child is gone). */
export function removeTempDirs(): void {
  for (const dir of tempDirs) {
    rmSync(dir, { recursive: true, force: true });
    tempDirs.delete(dir);
  }
}

/** afterEach: no child outlives its test; afterAll: no data dir outlives the file. */
export function useFaultHarness(): void {
  afterEach(() => killChildren(true), 30_000);
  afterAll(async () => {
    await killChildren(false);
    removeTempDirs();
  }, 30_000);
}

/** A TCP port nobody listens on right now (the OS picks it; another process could take it, rarely). */
export function unusedPort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

/** With MESHLENS_FAULT_VERBOSE=1, a test's figures on stderr even when it passes (for notes and reports). */
export function report(what: string, figures: unknown): void {
  if (process.env.MESHLENS_FAULT_VERBOSE === '1') process.stderr.write(`[fault] ${what}: ${typeof figures === 'string' ? figures : JSON.stringify(figures)}\n`);
}

/**
 * `expect(observed).toEqual(expected)`, with `context` (numbers behind the verdict, log tails) appended to the
 * failure message: jest's diff shows only what differs, and a fault test's failure needs the whole story.
 */
export function expectObserved(observed: unknown, expected: unknown, context: Record<string, unknown> | string): void {
  try {
    expect(observed).toEqual(expected);
  } catch (err) {
    const text = typeof context === 'string' ? context : JSON.stringify(context, null, 2);
    (err as Error).message += `\n\nContext:\n${text}`;
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------------------
// HTTP (node:http, one connection per request: no pooled socket can be closed under a request, so every
// network error a test sees is the server's doing)
// ---------------------------------------------------------------------------------------------------------

export interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** When the request was started and the reply fully read (ms since the epoch). */
  startedAt: number;
  endedAt: number;
  text(): string;
  json<T = Record<string, unknown>>(): T;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  timeoutMs?: number;
}

/** A network failure, with the errno code (`ECONNREFUSED`, `ECONNRESET`...) and when it happened. */
export class NetError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly startedAt: number,
    readonly endedAt: number,
  ) {
    super(message);
  }
}

export function request(url: string, opts: RequestOptions = {}): Promise<HttpResult> {
  const startedAt = Date.now();
  return new Promise((resolveReq, reject) => {
    const body = opts.body === undefined ? undefined : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body);
    const req = httpRequest(
      url,
      {
        method: opts.method ?? (body === undefined ? 'GET' : 'POST'),
        headers: { ...(body !== undefined ? { 'content-length': String(body.length) } : {}), ...opts.headers },
        agent: false,
        timeout: opts.timeoutMs ?? 60_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err: NodeJS.ErrnoException) => reject(new NetError(err.code ?? 'ERESPONSE', err.message, startedAt, Date.now())));
        res.on('end', () => {
          const buf = Buffer.concat(chunks);
          resolveReq({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: buf,
            startedAt,
            endedAt: Date.now(),
            text: () => buf.toString('utf8'),
            json: <T>() => JSON.parse(buf.toString('utf8')) as T,
          });
        });
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${opts.timeoutMs ?? 60_000} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => reject(new NetError(err.code ?? 'ENET', err.message, startedAt, Date.now())));
    req.end(body);
  });
}

export interface IngestReply {
  accepted: number;
  rejected: number;
  errors: { line: number; reason: string; message: string }[];
}

/** POST lines to `/v1/accesslogs` (NDJSON unless said otherwise). */
export function postLines(m: Meshlens, lines: readonly string[], headers: Record<string, string> = {}): Promise<HttpResult> {
  return request(`${m.base}/v1/accesslogs`, {
    body: lines.join('\n') + '\n',
    headers: { 'content-type': 'application/x-ndjson', ...headers },
  });
}

// ---------------------------------------------------------------------------------------------------------
// What is stored: the query API and /metrics
// ---------------------------------------------------------------------------------------------------------

export interface Period {
  fromMs: number;
  toMs: number;
}

/** The period of a set of event times, a minute wider on each side. */
export function periodOf(times: readonly number[]): Period {
  let min = Infinity;
  let max = -Infinity;
  for (const t of times) {
    if (t < min) min = t;
    if (t > max) max = t;
  }
  return { fromMs: min - 60_000, toMs: max + 60_000 };
}

/**
 * Requests stored for `service` as the query API counts them: `/api/v1/subsets` over the period with
 * `reporter=source`, summing `requests` over the service's subsets.
 */
export async function storedRequests(m: Meshlens, service: string, period: Period, headers: Record<string, string> = {}): Promise<number> {
  const q = new URLSearchParams({ from: String(period.fromMs), to: String(period.toMs), reporter: 'source', service });
  const res = await request(`${m.base}/api/v1/subsets?${q.toString()}`, { headers });
  if (res.status !== 200) throw new Error(`/api/v1/subsets answered ${res.status}: ${res.text().slice(0, 500)}`);
  const body = res.json<SubsetsAnswer>();
  return body.subsets.filter((s) => s.service === service).reduce((n, s) => n + s.requests, 0);
}

/**
 * Polls `read` until it returns `want` or the deadline passes; returns the last value. Used where the old code
 * stored records only some time after acknowledging them, so a failure is about what is stored, not when.
 */
export async function settle(read: () => Promise<number>, want: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = await read();
  while (last !== want && Date.now() < deadline) {
    await sleep(250);
    last = await read();
  }
  return last;
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition (the lines meshlens's /metrics serves). */
export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    let l: RegExpExecArray | null;
    while ((l = re.exec(m[3] ?? '')) !== null) labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    out.push({ name: m[1]!, labels, value: Number(m[4]) });
  }
  return out;
}

export async function scrape(m: Meshlens): Promise<Sample[]> {
  const res = await request(`${m.base}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parseMetrics(res.text());
}

/** Sum of the samples of `name` whose labels include `match`. */
export function sum(samples: readonly Sample[], name: string, match: Record<string, string> = {}): number {
  let n = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) n += s.value;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------------------------

export interface LineOptions {
  requestId: string;
  startMs: number;
  /** Destination service in namespace `default` (default `reviews`). */
  service?: string;
  subset?: string;
  responseCode?: number;
  responseFlags?: string;
}

/**
 * One Istio access-log line in the JSON encoding Istio 1.9+ prints (typed values; the 24 keys of
 * `EnvoyJSONLogFormatIstio`, as in test/fixtures/accesslogs/istio-json-typed.ndjson), written by the
 * client's sidecar: the cluster is `outbound|9080|<subset>|<service>.default.svc.cluster.local`, so
 * reporter=source and the subset is known.
 */
export function istioJsonLine(o: LineOptions): string {
  const service = o.service ?? 'reviews';
  return JSON.stringify({
    start_time: new Date(o.startMs).toISOString(),
    method: 'GET',
    path: `/${service}/0`,
    protocol: 'HTTP/1.1',
    response_code: o.responseCode ?? 200,
    response_flags: o.responseFlags ?? '-',
    response_code_details: 'via_upstream',
    connection_termination_details: null,
    upstream_transport_failure_reason: null,
    bytes_received: 0,
    bytes_sent: 358,
    duration: 23,
    upstream_service_time: '21',
    x_forwarded_for: null,
    user_agent: 'curl/8.5.0',
    request_id: o.requestId,
    authority: `${service}:9080`,
    upstream_host: '10.1.4.22:9080',
    upstream_cluster: `outbound|9080|${o.subset ?? 'v1'}|${service}.default.svc.cluster.local`,
    upstream_local_address: '10.1.3.15:48812',
    downstream_local_address: '10.1.200.14:9080',
    downstream_remote_address: '10.1.3.15:48800',
    requested_server_name: null,
    route_name: 'default',
  });
}

/**
 * The same request as Istio's default TEXT format prints it (Istio 1.9+ layout, as in
 * test/fixtures/accesslogs/istio-1.9-text.log): what Envoy's OpenTelemetry access-log sink puts in a log body.
 */
export function istioTextLine(o: LineOptions): string {
  const service = o.service ?? 'reviews';
  return (
    `[${new Date(o.startMs).toISOString()}] "GET /${service}/0 HTTP/1.1" ${o.responseCode ?? 200} ${o.responseFlags ?? '-'} via_upstream - "-" 0 358 23 21 ` +
    `"-" "curl/8.5.0" "${o.requestId}" "${service}:9080" "10.1.4.22:9080" outbound|9080|${o.subset ?? 'v1'}|${service}.default.svc.cluster.local ` +
    `10.1.3.15:48812 10.1.200.14:9080 10.1.3.15:48800 - default`
  );
}

let idCounter = 0;
const RUN = `${process.pid.toString(36)}-${Date.now().toString(36)}`;

/** A request id no other test, run or process has used (like Envoy's x-request-id, unique per request). */
export function requestId(tag = 'req'): string {
  return `${tag}-${RUN}-${(idCounter++).toString(36)}`;
}

// ---------------------------------------------------------------------------------------------------------
// Senders: bodies of 500 lines, with the count of lines each acknowledgement covers
// ---------------------------------------------------------------------------------------------------------

export const LINES_PER_BODY = 500;

export interface Outcome {
  /** HTTP status, or the network error code (`ECONNREFUSED`, `ECONNRESET`...). */
  status: number | string;
  retryAfter: string | undefined;
  /** Lines the reply acknowledged (200 and its `accepted`); 0 for anything else. */
  acknowledged: number;
  startedAt: number;
  endedAt: number;
}

/** Tally of a sender: every reply, the lines acknowledged and the event times sent. */
export class Tally {
  outcomes: Outcome[] = [];
  acknowledged = 0;
  times: number[] = [];

  record(o: Outcome): void {
    this.outcomes.push(o);
    this.acknowledged += o.acknowledged;
  }

  statuses(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const o of this.outcomes) out[String(o.status)] = (out[String(o.status)] ?? 0) + 1;
    return out;
  }
}

/** A body of `n` current Istio JSON lines for `service` (default reviews; their event times are recorded in `tally`). */
export function currentBody(tally: Tally, n = LINES_PER_BODY, tag = 'load', service?: string): string {
  const now = Date.now();
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const t = now - (n - i); // distinct, current, within the last second
    tally.times.push(t);
    lines.push(istioJsonLine({ requestId: requestId(tag), startMs: t, service }));
  }
  return lines.join('\n') + '\n';
}

/**
 * POSTs `body` once and records the outcome: a 200 acknowledges the reply's `accepted` lines; anything else
 * (a retry status, a refused or cut connection) acknowledges nothing.
 */
export async function sendOnce(m: Meshlens, body: string, tally: Tally): Promise<Outcome> {
  let o: Outcome;
  try {
    const res = await request(`${m.base}/v1/accesslogs`, { body, headers: { 'content-type': 'application/x-ndjson' }, timeoutMs: 120_000 });
    let acknowledged = 0;
    if (res.status === 200) acknowledged = res.json<IngestReply>().accepted;
    const ra = res.headers['retry-after'];
    o = { status: res.status, retryAfter: Array.isArray(ra) ? ra[0] : ra, acknowledged, startedAt: res.startedAt, endedAt: res.endedAt };
  } catch (err) {
    const e = err as NetError;
    o = { status: e.code ?? String(err), retryAfter: undefined, acknowledged: 0, startedAt: e.startedAt ?? Date.now(), endedAt: e.endedAt ?? Date.now() };
  }
  tally.record(o);
  return o;
}

export interface SendAllOptions {
  senders: number;
  /** Bodies of LINES_PER_BODY lines each sender posts, one after another. */
  bodies: number;
  tag?: string;
  /** Runs synchronously in the tick the last acknowledgement arrives (kill -9 "the moment the last 200 arrives"). */
  onLastAck?: () => void;
}

/**
 * `senders` clients posting `bodies` bodies each, as a log shipper does: a 429 or 503 is retried with the same
 * lines after its Retry-After; any other answer stops the run with an error. Every acknowledgement is in `tally`.
 */
/**
 * POSTs `body` until it is acknowledged, as a log shipper does: a 429 or 503 is retried with the same lines after its
 * Retry-After; any other answer throws.
 */
export async function deliverBody(m: Meshlens, body: string, tally: Tally): Promise<void> {
  for (;;) {
    const o = await sendOnce(m, body, tally);
    if (o.status === 200) return;
    if ((o.status === 429 || o.status === 503) && o.retryAfter !== undefined) {
      await sleep(Math.min(5_000, Math.max(100, Number(o.retryAfter) * 1000 || 1000)));
      continue;
    }
    throw new Error(`POST /v1/accesslogs answered ${String(o.status)} while sending\n${m.logs()}`);
  }
}

export async function sendAll(m: Meshlens, tally: Tally, opts: SendAllOptions): Promise<void> {
  let finished = 0;
  const sender = async (): Promise<void> => {
    for (let b = 0; b < opts.bodies; b++) await deliverBody(m, currentBody(tally, LINES_PER_BODY, opts.tag), tally);
    if (++finished === opts.senders) opts.onLastAck?.();
  };
  await Promise.all(Array.from({ length: opts.senders }, sender));
}

// ---------------------------------------------------------------------------------------------------------
// OTLP/gRPC: the two Export methods with raw bytes, as services/ingest/receivers/otlp-grpc.ts serves them, so
// a test can send bytes the OTLP schema does not allow.
// ---------------------------------------------------------------------------------------------------------

const identity = (b: Buffer): Buffer => b;
const GRPC_PATHS = {
  logs: '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
  traces: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
} as const;

export interface GrpcResult {
  /** gRPC status code (0 = OK). */
  code: number;
  details: string;
  response: Buffer | undefined;
}

export const GRPC = grpcStatus;

/** One unary Export call with `body` as the serialized request. */
export async function grpcExport(
  port: number,
  service: keyof typeof GRPC_PATHS,
  body: Buffer,
  opts: { authorization?: string; gzip?: boolean; timeoutMs?: number } = {},
): Promise<GrpcResult> {
  const Ctor = makeGenericClientConstructor(
    {
      Export: {
        path: GRPC_PATHS[service],
        requestStream: false,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
        originalName: 'export',
      },
    },
    service,
  );
  // gzip as a client option: grpc-js compresses every message it sends on this channel (grpc.Compression gzip = 2).
  const client: Client = new Ctor(`127.0.0.1:${port}`, credentials.createInsecure(), opts.gzip ? { 'grpc.default_compression_algorithm': 2 } : {});
  const md = new Metadata();
  if (opts.authorization !== undefined) md.set('authorization', opts.authorization);
  try {
    return await new Promise<GrpcResult>((resolveCall) => {
      const deadline = new Date(Date.now() + (opts.timeoutMs ?? 20_000));
      (client as unknown as {
        Export: (b: Buffer, md: Metadata, o: { deadline: Date }, cb: (e: ServiceError | null, r?: Buffer) => void) => void;
      }).Export(body, md, { deadline }, (err, res) => {
        resolveCall(err ? { code: err.code, details: err.details, response: undefined } : { code: 0, details: '', response: res });
      });
    });
  } finally {
    client.close();
  }
}
