/**
 * Start-up errors of the real CLI (`node bin/meshlens.js`), as an operator meets them: one line on stderr
 * naming what to change, exit code 1, and no secret echoed.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EPHEMERAL_PORTS } from './support/meshlens';

const CLI = join(__dirname, '..', 'bin', 'meshlens.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI until it exits, or until `until(stdout)` holds (then it is left running and returned). */
function cli(args: string[], env: Record<string, string>, until?: (stdout: string) => boolean): Promise<Run & { kill?: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', MESHLENS_LOG_LEVEL: 'warn', ...EPHEMERAL_PORTS, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the CLI did not finish in time; stderr: ${stderr}`));
    }, 60_000);
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
      if (until?.(stdout)) {
        clearTimeout(timer);
        const exited = new Promise<void>((r) => child.once('exit', () => r()));
        resolve({ code: null, stdout, stderr, kill: () => (child.kill('SIGTERM'), exited) });
      }
    });
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const lines = (text: string): string[] => text.split('\n').filter((l) => l.trim() !== '');

describe('meshlens CLI start-up errors', () => {
  const dirs: string[] = [];
  const dataDir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'meshlens-cli-'));
    dirs.push(d);
    return d;
  };
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it.each(['ingest', 'aggregator'])('refuses the %s target without Kafka, naming MESHLENS_KAFKA_BROKERS', async (target) => {
    const run = await cli([target], { MESHLENS_DATA_DIR: dataDir() });
    expect(run.code).toBe(1);
    const err = lines(run.stderr);
    expect(err).toHaveLength(2); // "invalid configuration:" and the one problem under it
    expect(err[1]).toMatch(/MESHLENS_KAFKA_BROKERS is not set: the .* target/);
    expect(run.stdout).not.toMatch(/ready/);
  });

  it('refuses the tracer target without an endpoint, in one line naming MESHLENS_JAEGER_ENDPOINT', async () => {
    const run = await cli(['tracer'], { MESHLENS_DATA_DIR: dataDir(), MESHLENS_KAFKA_BROKERS: '127.0.0.1:1' });
    expect(run.code).toBe(1);
    expect(lines(run.stderr)).toEqual([expect.stringMatching(/^meshlens: MESHLENS_JAEGER_ENDPOINT is not set: the tracer target exports spans to it/)]);
    expect(run.stdout).not.toMatch(/ready/);
  });

  it('refuses the tracer target without Kafka, naming MESHLENS_KAFKA_BROKERS', async () => {
    const run = await cli(['tracer'], { MESHLENS_DATA_DIR: dataDir(), MESHLENS_JAEGER_ENDPOINT: 'http://127.0.0.1:1' });
    expect(run.code).toBe(1);
    expect(lines(run.stderr)[1]).toMatch(/MESHLENS_KAFKA_BROKERS is not set: the tracer target/);
  });

  it('names a bad ClickHouse URL without its password', async () => {
    const run = await cli(['all'], { MESHLENS_DATA_DIR: dataDir(), MESHLENS_CLICKHOUSE_URL: 'clickhouse://meshlens:hunter2@db:9000/meshlens' });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('MESHLENS_CLICKHOUSE_URL');
    expect(run.stderr).toContain('meshlens:***@db');
    expect(run.stderr + run.stdout).not.toContain('hunter2');
  });

  it('says which variable to change when a port is taken', async () => {
    const taken: Server = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as { port: number }).port;
    try {
      const run = await cli(['all'], { MESHLENS_DATA_DIR: dataDir(), MESHLENS_HTTP_PORT: String(port) });
      expect(run.code).toBe(1);
      expect(lines(run.stderr)).toEqual([`meshlens: cannot listen on port ${port}: it is in use by another process; stop that process or set MESHLENS_HTTP_PORT to another port`]);
    } finally {
      await new Promise<void>((r) => taken.close(() => r()));
    }
  });

  it('says to set MESHLENS_DATA_DIR when another meshlens holds the data directory', async () => {
    const dir = dataDir();
    const first = await cli(['all'], { MESHLENS_DATA_DIR: dir }, (out) => out.includes('zipkin'));
    try {
      const second = await cli(['all'], { MESHLENS_DATA_DIR: dir });
      expect(second.code).toBe(1);
      const err = lines(second.stderr);
      expect(err).toHaveLength(1);
      expect(err[0]).toMatch(/^meshlens: the data directory .* is in use by another meshlens .*set MESHLENS_DATA_DIR/);
    } finally {
      await first.kill?.();
    }
  });
});

describe('meshlens CLI usage', () => {
  const TARGETS = ['all', 'ingest', 'aggregator', 'tracer', 'provisioner', 'demo'];

  it('--help exits 0 and lists every target with what it runs', async () => {
    const run = await cli(['--help'], {});
    expect(run.code).toBe(0);
    const listed = lines(run.stdout)
      .map((l) => /^ {2}(\S+) +\S/.exec(l)?.[1])
      .filter((t): t is string => t !== undefined);
    expect(listed).toEqual(TARGETS);
    expect(run.stderr).toBe('');
  });

  it('--version prints the package version', async () => {
    const run = await cli(['--version'], {});
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`meshlens ${(JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version}\n`);
  });

  it('an unknown target exits 2 naming every target, demo included', async () => {
    const run = await cli(['nope'], {});
    expect(run.code).toBe(2);
    expect(lines(run.stderr)).toEqual([`meshlens: "nope" is not a meshlens target; available: ${TARGETS.join(', ')} (meshlens --help)`]);
  });
});
