/**
 * `meshlens demo` as a user runs it (the real CLI, in a directory of its own, no MESHLENS_DATA_DIR), issue 13:
 * - its data goes to ./data-demo, not to ./data, which `npm start` uses and locks;
 * - its screen shows the canaries' verdicts within its first minute (inconclusive counts), from the joined view.
 * Fails on the previous demo, which wrote into ./data and drew no canaries.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EPHEMERAL_PORTS } from './support/meshlens';

const CLI = join(__dirname, '..', 'bin', 'meshlens.js');
const FIRST_MINUTE_MS = 60_000;

/** A canary row of the screen: service, canary, baseline, share, requests, error %, verdict, ... */
const VERDICT_ROW = /^reviews\.default +v[23] +v1 +.* (PASS|FAIL|INCONCLUSIVE) +/m;

describe('meshlens demo (the real CLI, without MESHLENS_DATA_DIR)', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'meshlens-demo-cwd-'));
  afterAll(() => rmSync(cwd, { recursive: true, force: true }));

  it('keeps its data in ./data-demo, not ./data, and shows a verdict per canary within its first minute', async () => {
    const started = Date.now();
    const child = spawn(process.execPath, [CLI, 'demo', '--rps', '20'], {
      cwd,
      // No MESHLENS_DATA_DIR: the demo's default is under test.
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', MESHLENS_LOG_LEVEL: 'warn', ...EPHEMERAL_PORTS },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const seen = await new Promise<number | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), FIRST_MINUTE_MS);
      child.stdout.on('data', (b: Buffer) => {
        stdout += b.toString();
        if (VERDICT_ROW.test(stdout)) {
          clearTimeout(timer);
          resolve(Date.now() - started);
        }
      });
      void exited.then(() => {
        clearTimeout(timer);
        resolve(undefined);
      });
    });
    const dataDemo = existsSync(join(cwd, 'data-demo')) ? readdirSync(join(cwd, 'data-demo')) : [];
    child.kill('SIGTERM');
    expect(await exited).toBe(0);

    expect({ seen: seen !== undefined && seen < FIRST_MINUTE_MS, stderr }).toEqual({ seen: true, stderr: '' });
    const screen = stdout.slice(stdout.lastIndexOf('meshlens demo ·'));
    expect(screen).toMatch(/joined view: each request once/);
    expect(screen).toMatch(/^CANARIES \(judged over the last 10m/m);
    // The lock file of the running demo, and embedded ClickHouse's files, were in ./data-demo; nothing in ./data.
    expect(dataDemo).toContain('meshlens.pid');
    expect(dataDemo.length).toBeGreaterThan(1);
    expect(existsSync(join(cwd, 'data'))).toBe(false);
  }, 120_000);
});
