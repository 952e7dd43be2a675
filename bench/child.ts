/**
 * The meshlens child process of a bench phase (bench/server.ts runs in it) and the IPC calls the bench makes to
 * it. Every phase gets a fresh one: fresh data directory, ephemeral ports, in-memory bus, embedded ClickHouse,
 * plus whatever settings the phase is about (MESHLENS_RAW_REQUESTS, MESHLENS_MAX_SERIES, retention).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServerRequest } from './server';

export const HOST = '127.0.0.1';
/** How long the bench waits for the last line to be stored before it calls the run broken. */
export const STORE_TIMEOUT_MS = 180_000;

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

export class Server {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private exited = false;
  readonly ready: Promise<{ ports: { http: number } }>;

  private constructor(
    private readonly proc: ChildProcess,
    readonly dataDir: string,
  ) {
    let onReady!: Pending;
    this.ready = new Promise((resolve, reject) => (onReady = { resolve: resolve as (v: unknown) => void, reject }));
    this.pending.set(0, onReady);
    proc.on('message', (m: { id: number; ok: boolean; value?: unknown; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(new Error(`meshlens (bench child): ${m.error}`));
    });
    proc.on('exit', (code, signal) => {
      this.exited = true;
      for (const p of this.pending.values()) p.reject(new Error(`meshlens child exited (code ${code}, signal ${signal})`));
      this.pending.clear();
    });
  }

  /** `settings`: MESHLENS_* variables of this phase, on top of the bench's fixed ones. */
  static spawn(settings: Record<string, string> = {}): Server {
    const dataDir = mkdtempSync(join(tmpdir(), 'meshlens-bench-'));
    const env: NodeJS.ProcessEnv = { ...process.env };
    // Settings a developer's shell may carry would change what is measured: the phase alone decides them.
    for (const name of Object.keys(env)) if (name.startsWith('MESHLENS_')) delete env[name];
    const proc = fork(join(__dirname, 'run.js'), ['--server'], {
      env: {
        ...env,
        ...settings,
        MESHLENS_DATA_DIR: dataDir,
        MESHLENS_LISTEN_HOST: HOST,
        MESHLENS_HTTP_PORT: '0',
        MESHLENS_OTLP_GRPC_PORT: '0',
        MESHLENS_OTLP_HTTP_PORT: '0',
        MESHLENS_ZIPKIN_PORT: '0',
        MESHLENS_LOG_LEVEL: 'warn',
        MESHLENS_CLICKHOUSE_URL: '',
        MESHLENS_KAFKA_BROKERS: '',
      },
      execArgv: ['--expose-gc'],
      // The child's logs go to our stderr, keeping stdout for the table.
      stdio: ['ignore', 2, 2, 'ipc'],
    });
    return new Server(proc, dataDir);
  }

  call<T>(req: ServerRequest): Promise<T> {
    if (this.exited) return Promise.reject(new Error('meshlens child has exited'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.proc.send({ id, ...req });
    });
  }

  async stop(): Promise<void> {
    if (!this.exited) {
      const exited = new Promise((r) => this.proc.once('exit', r));
      await this.call({ op: 'stop' }).catch(() => undefined);
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (!this.exited) this.proc.kill('SIGKILL');
    }
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
