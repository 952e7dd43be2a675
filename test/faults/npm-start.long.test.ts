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
import {
  alive,
  expectObserved,
  istioJsonLine,
  periodOf,
  postLines,
  processesInGroup,
  request,
  requestId,
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
});
