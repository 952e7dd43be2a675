/**
 * Real `prometheus` and `promtool` for tests (DESIGN.md "Real components in tests"). The binaries come from the
 * Debian package `prometheus`, not from npm: tests look them up on PATH and skip loudly when missing, except
 * under `CI=true` (CONTRACT.md §1: `.ci/run` installs them, so CI never skips).
 *
 *   const bin = binaryOrSkip('prometheus');
 *   (bin ? describe : describe.skip)('...', () => {
 *     const prom = await startPrometheus({ binary: bin, scrapeConfigs: [...], ruleFiles: { 'a.yml': text } });
 *     await prom.waitFor(async () => (await prom.targets()).some((t) => t.health === 'up'));
 *     await prom.stop();
 *   });
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { stringify } from 'yaml';

/** The executable `name` on PATH, or undefined. */
export function findBinary(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * The binary's path; when it is missing, a loud warning and undefined (skip the tests), or with `CI=true` an
 * error (CI must never skip them). `debianPackage` is named in the message (`amtool`: prometheus-alertmanager).
 */
export function binaryOrSkip(name: string, what = 'these tests', debianPackage = 'prometheus'): string | undefined {
  const p = findBinary(name);
  if (p !== undefined) return p;
  const message = `${name} is not on PATH (Debian/Ubuntu: apt-get install ${debianPackage})`;
  if (process.env.CI === 'true') throw new Error(`${message}; CI=true, so ${what} must not be skipped`);
  process.stderr.write(`\n${'!'.repeat(100)}\n!!! SKIPPED: ${name} not on PATH: ${what} did not run. ${message}.\n${'!'.repeat(100)}\n\n`);
  return undefined;
}

/** A TCP port free right now on `host` (the OS picks it; a race with other processes is possible but rare). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface ToolResult {
  /** The exit code; -1 when the tool was killed (the 60 s bound) or could not start. */
  status: number;
  stdout: string;
  stderr: string;
}

/** A checking tool (`promtool`, `amtool`, `kubectl`, `docker-compose`) run synchronously, for at most 60 s. */
export function runTool(binary: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): ToolResult {
  const r = spawnSync(binary, args, { cwd: opts.cwd, env: opts.env, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

export interface PrometheusOptions {
  /** Default: `prometheus` on PATH. */
  binary?: string;
  /**
   * The whole configuration (YAML text or an object). When given, `scrapeConfigs`, `scrapeInterval`,
   * `evaluationInterval` and `alertmanagers` are not used; to load `ruleFiles`, list `RULE_FILE_GLOBS`
   * (relative paths resolve against the config file's folder, `RunningPrometheus.dir`).
   */
  config?: string | Record<string, unknown>;
  scrapeConfigs?: Record<string, unknown>[];
  /** Rule files by name (`alerts.yml`), written to `<dir>/rules/`, which `rule_files` globs (`RULE_FILE_GLOBS`). */
  ruleFiles?: Record<string, string>;
  /** Default `1s`, so tests see scrapes quickly. */
  scrapeInterval?: string;
  /** Default `1s`, so rules and alerts evaluate quickly. */
  evaluationInterval?: string;
  /** `host:port` of Alertmanagers (e.g. a test webhook server speaking the Alertmanager API). */
  alertmanagers?: string[];
  /** More command-line flags. */
  extraArgs?: string[];
  /** How long to wait for `/-/ready`. Default 30 s. */
  readyTimeoutMs?: number;
}

export interface PromTarget {
  labels: Record<string, string>;
  discoveredLabels: Record<string, string>;
  scrapePool: string;
  scrapeUrl: string;
  health: 'up' | 'down' | 'unknown';
  lastError: string;
}

export interface RunningPrometheus {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  port: number;
  /** Temporary folder: `prometheus.yml`, `rules/`, `data/`. Removed by `stop()`. */
  dir: string;
  process: ChildProcess;
  /** stdout and stderr so far (for failure messages). */
  logs(): string;
  /** GET `<url><path>` and the `data` of a Prometheus API answer; throws on `status: error`. */
  api<T = unknown>(path: string, params?: Record<string, string>): Promise<T>;
  /** Instant query: `data.result`. */
  query(expr: string, time?: Date): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  /** `/api/v1/targets` active targets. */
  targets(): Promise<PromTarget[]>;
  /** `/api/v1/rules` groups. */
  rules(): Promise<{ name: string; file: string; rules: Record<string, unknown>[] }[]>;
  /** `/api/v1/alerts`. */
  alerts(): Promise<{ labels: Record<string, string>; annotations: Record<string, string>; state: string; activeAt: string; value: string }[]>;
  /** Polls `check` until it resolves truthy. */
  waitFor(check: () => Promise<boolean> | boolean, timeoutMs?: number, intervalMs?: number): Promise<void>;
  /** Rewrites `prometheus.yml` (and rule files) and `POST /-/reload`s (`--web.enable-lifecycle`). */
  reload(config?: string | Record<string, unknown>, ruleFiles?: Record<string, string>): Promise<void>;
  /** SIGTERM (SIGKILL after 5 s), then removes `dir`. */
  stop(): Promise<void>;
}

/** Globs (relative to the config file) that pick up every file `ruleFiles` writes, now or at a reload. */
export const RULE_FILE_GLOBS = ['rules/*.yml', 'rules/*.yaml'];

function buildConfig(opts: PrometheusOptions): string {
  if (opts.config !== undefined) return typeof opts.config === 'string' ? opts.config : stringify(opts.config);
  const config: Record<string, unknown> = {
    global: { scrape_interval: opts.scrapeInterval ?? '1s', evaluation_interval: opts.evaluationInterval ?? '1s' },
    rule_files: RULE_FILE_GLOBS,
    scrape_configs: opts.scrapeConfigs ?? [],
  };
  if (opts.alertmanagers !== undefined && opts.alertmanagers.length > 0) {
    config.alerting = { alertmanagers: [{ static_configs: [{ targets: opts.alertmanagers }] }] };
  }
  return stringify(config);
}

function writeRules(dir: string, ruleFiles: Record<string, string> | undefined): void {
  const rulesDir = join(dir, 'rules');
  mkdirSync(rulesDir, { recursive: true });
  for (const [name, text] of Object.entries(ruleFiles ?? {})) writeFileSync(join(rulesDir, name), text);
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Starts Prometheus on a free 127.0.0.1 port with a temporary TSDB, and waits until `/-/ready`. */
export async function startPrometheus(opts: PrometheusOptions = {}): Promise<RunningPrometheus> {
  const binary = opts.binary ?? findBinary('prometheus');
  if (binary === undefined) throw new Error('prometheus is not on PATH');
  const dir = mkdtempSync(join(tmpdir(), 'meshlens-prometheus-'));
  const configFile = join(dir, 'prometheus.yml');
  writeRules(dir, opts.ruleFiles);
  writeFileSync(configFile, buildConfig(opts));

  let lastError: Error | undefined;
  // A port picked free can be taken before Prometheus binds it: try a few.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    let output = '';
    const child = spawn(
      binary,
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--web.enable-lifecycle',
        '--log.level=info',
        ...(opts.extraArgs ?? []),
      ],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout?.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr?.on('data', (b: Buffer) => (output += b.toString()));
    let exited: number | null | undefined;
    child.on('exit', (code) => (exited = code));

    const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
    let ready = false;
    while (Date.now() < deadline && exited === undefined) {
      try {
        const res = await fetch(`${url}/-/ready`);
        if (res.status === 200) {
          ready = true;
          break;
        }
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    if (!ready) {
      if (exited === undefined) child.kill('SIGKILL');
      lastError = new Error(`prometheus did not become ready (exit ${String(exited)}):\n${output.slice(-4000)}`);
      if (/address already in use/i.test(output)) continue;
      break;
    }
    return running(dir, configFile, port, url, child, () => output);
  }
  rmSync(dir, { recursive: true, force: true });
  throw lastError ?? new Error('prometheus did not start');
}

function running(dir: string, configFile: string, port: number, url: string, child: ChildProcess, logs: () => string): RunningPrometheus {
  const api = async <T>(path: string, params?: Record<string, string>): Promise<T> => {
    const q = params === undefined ? '' : `?${new URLSearchParams(params).toString()}`;
    const res = await fetch(`${url}${path}${q}`);
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`${path}: ${body.error ?? res.status}`);
    return body.data;
  };
  let stopping: Promise<void> | undefined;
  return {
    url,
    port,
    dir,
    process: child,
    logs,
    api,
    async query(expr, time) {
      const data = await api<{ result: { metric: Record<string, string>; value: [number, string] }[] }>('/api/v1/query', {
        query: expr,
        ...(time ? { time: String(time.getTime() / 1000) } : {}),
      });
      return data.result;
    },
    async targets() {
      return (await api<{ activeTargets: PromTarget[] }>('/api/v1/targets', { state: 'active' })).activeTargets;
    },
    async rules() {
      return (await api<{ groups: { name: string; file: string; rules: Record<string, unknown>[] }[] }>('/api/v1/rules')).groups;
    },
    async alerts() {
      return (await api<{ alerts: { labels: Record<string, string>; annotations: Record<string, string>; state: string; activeAt: string; value: string }[] }>('/api/v1/alerts')).alerts;
    },
    async waitFor(check, timeoutMs = 30_000, intervalMs = 200) {
      const deadline = Date.now() + timeoutMs;
      let last: unknown;
      for (;;) {
        try {
          if (await check()) return;
        } catch (err) {
          last = err;
        }
        if (Date.now() > deadline) {
          throw new Error(`condition not met within ${timeoutMs} ms${last ? ` (last error: ${String(last)})` : ''}\nprometheus log tail:\n${logs().slice(-3000)}`);
        }
        await sleep(intervalMs);
      }
    },
    async reload(config, ruleFiles) {
      writeRules(dir, ruleFiles);
      if (config !== undefined) writeFileSync(configFile, buildConfig({ config }));
      const res = await fetch(`${url}/-/reload`, { method: 'POST' });
      if (res.status !== 200) throw new Error(`reload failed: ${res.status} ${await res.text()}`);
    },
    stop() {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
          await exited;
          clearTimeout(timer);
        }
        rmSync(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}
