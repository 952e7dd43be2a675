/**
 * `npm start` and SIGTERM (CONTRACT §1 `npm start`, issue 9 "Ordered, bounded shutdown"): what a supervisor
 * or an operator's `kill <pid>` does to the process they started, which is npm, not node.
 *
 * npm must exit only after its node child has stopped: at npm's exit no `node bin/meshlens.js` of its
 * process group is left, the HTTP port refuses connections, and a new start on the same data dir succeeds
 * (chDB locks its directory, so a node left behind would make it fail) and still holds what was
 * acknowledged before the stop.
 *
 * Baseline 2bc1333: npm and its `sh -c` exited at once; node was re-parented and kept serving (/readyz 200
 * after npm had gone).
 */
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import {
  alive,
  expectObserved,
  istioJsonLine,
  periodOf,
  postLines,
  processesInGroup,
  request,
  requestId,
  sleep,
  startMeshlens,
  storedRequests,
  trackPid,
  useFaultHarness,
  type IngestReply,
} from './support';

useFaultHarness();

describe('npm start and SIGTERM', () => {
  it('SIGTERM to npm: npm exits only after node has stopped; the port is closed; a new start on the data dir works', async () => {
    const m = await startMeshlens({ via: 'npm' });
    // npm's own group holds npm, its shell (if any) and node; node is the one whose program is node and whose
    // script is the CLI (the shell's command line mentions the CLI too).
    const group = processesInGroup(m.pid, 'bin/meshlens.js');
    group.forEach((p) => trackPid(p.pid));
    const nodes = group.filter((p) => /(^|\/)node$/.test(p.argv[0] ?? '') && p.argv.some((a) => a.endsWith('bin/meshlens.js')));
    expect(nodes.map((p) => p.argv.join(' '))).toEqual([expect.stringContaining('bin/meshlens.js')]);
    const node = nodes[0]!.pid;

    const t = Date.now();
    const res = await postLines(m, [istioJsonLine({ requestId: requestId('npm'), startMs: t })]);
    expect(res.status).toBe(200);
    expect(res.json<IngestReply>().accepted).toBe(1);

    const stop = await m.stop('SIGTERM', 60_000);
    // Looked at in the same moment npm's exit is seen: node must already be gone.
    const nodeAliveWhenNpmExited = alive(node);
    let port: string;
    try {
      const r = await request(`${m.base}/readyz`, { timeoutMs: 5_000 });
      port = `answers ${r.status}`;
    } catch (err) {
      port = (err as { code?: string }).code ?? String(err);
    }

    let restart: string;
    let stored = -1;
    if (nodeAliveWhenNpmExited) {
      restart = 'not tried: the old node still holds the data dir';
    } else {
      try {
        const again = await startMeshlens({ dataDir: m.dataDir });
        restart = 'ready';
        stored = await storedRequests(again, 'reviews', periodOf([t]));
      } catch (err) {
        restart = String(err).slice(0, 400);
      }
    }

    expectObserved(
      { nodeAliveWhenNpmExited, port, restart, stored },
      { nodeAliveWhenNpmExited: false, port: 'ECONNREFUSED', restart: 'ready', stored: 1 },
      `npm exited with code ${String(stop.code)}, signal ${String(stop.signal)}, ${stop.ms} ms after SIGTERM\n${m.logs()}`,
    );
  }, 120_000);

  it('Ctrl-C (SIGINT to the whole process group, which npm also forwards): one graceful stop, not a forced one', async () => {
    const m = await startMeshlens({ via: 'npm' });
    const t = Date.now();
    expect((await postLines(m, [istioJsonLine({ requestId: requestId('ctrl-c'), startMs: t })])).status).toBe(200);
    const node = processesInGroup(m.pid, 'bin/meshlens.js').find((p) => /(^|\/)node$/.test(p.argv[0] ?? ''))!.pid;
    // A sender still uploading its body: the stop waits for it, so the second signal below lands mid-stop.
    const slow = connect(m.ports.http, '127.0.0.1');
    await new Promise<void>((resolve) => slow.once('connect', () => resolve()));
    slow.write('POST /v1/accesslogs HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\ncontent-length: 100000\r\n\r\n[2026');
    await sleep(200);
    // What a terminal does on Ctrl-C: the signal goes to every process of the foreground group at once, and
    // npm forwards its own copy to its child. Two SIGINTs pending together merge into one, so the second copy
    // is sent a moment later, as npm's does when meshlens has already begun to stop.
    process.kill(-m.pid, 'SIGINT');
    await sleep(200);
    const stoppingWhenSecondSent = alive(node);
    if (stoppingWhenSecondSent) process.kill(node, 'SIGINT');
    await m.exited;
    slow.destroy();
    // Released at the end of a graceful stop only; a forced exit leaves it behind.
    const pidFileLeft = existsSync(join(m.dataDir, 'meshlens.pid'));
    const again = await startMeshlens({ dataDir: m.dataDir });
    expectObserved(
      { stoppingWhenSecondSent, forced: /stopping at once/.test(m.logs()), pidFileLeft, stored: await storedRequests(again, 'reviews', periodOf([t])) },
      { stoppingWhenSecondSent: true, forced: false, pidFileLeft: false, stored: 1 },
      m.logs(),
    );
  }, 120_000);
});
