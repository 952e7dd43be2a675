/**
 * Storage that stops taking inserts, and comes back, under the all-in-one on embedded ClickHouse. A real
 * ClickHouse refusal is used, not a fake: `parts_to_throw_insert = 1` makes every insert into `requests` fail
 * with TOO_MANY_PARTS ("merges are processing significantly slower than inserts"), the error a server sends
 * when storage cannot keep up. Expected (docs/guarantees.md, 7):
 * - a request taken before the failure was known waits, and is answered 200 only once its records are stored;
 * - once an insert failed, /readyz is 503 and every new request is answered 503 with Retry-After: no 2xx;
 * - when inserts work again, the waiting batch is stored once, readiness and intake come back.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { start, type Running } from '../bin/start';
import { loadConfig } from '../lib/runtime';
import { EPHEMERAL_PORTS } from './support/meshlens';

const logger = pino({ level: 'silent' });

let seq = 0;
/** `n` current Istio TEXT lines of outbound requests to reviews v1, each with its own request id. */
function body(n: number): string {
  const now = new Date().toISOString();
  return Array.from(
    { length: n },
    () =>
      `[${now}] "GET /reviews/0 HTTP/1.1" 200 - via_upstream - "-" 0 358 23 21 "-" "curl/8.5" "outage-${++seq}" "reviews:9080" "10.1.4.22:9080" outbound|9080|v1|reviews.default.svc.cluster.local 10.1.3.15:48812 10.1.200.14:9080 10.1.3.15:48800 - default`,
  ).join('\n');
}

async function until(what: string, predicate: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('all-in-one when ClickHouse stops taking inserts, and when it comes back', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'meshlens-outage-'));
  let running: Running;
  let base: string;

  beforeAll(async () => {
    running = await start({ config: loadConfig({ ...EPHEMERAL_PORTS, MESHLENS_DATA_DIR: dataDir }), target: 'all', logger, processMetrics: false });
    base = `http://127.0.0.1:${running.ports.http}`;
  });
  afterAll(async () => {
    await running?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const post = (lines: number) =>
    fetch(`${base}/v1/accesslogs`, { method: 'POST', body: body(lines), headers: { 'content-type': 'text/plain' } });
  const ready = async () => (await fetch(`${base}/readyz`)).status === 200;
  const stored = async (): Promise<number> => {
    const rs = await running.aggregator!.conn.client.query({ query: 'SELECT count() AS n FROM meshlens.requests', format: 'JSONEachRow' });
    return Number((await rs.json<{ n: number }>())[0]?.n);
  };
  const setPartsToThrow = (n: number) =>
    running.aggregator!.conn.client.command({ query: `ALTER TABLE meshlens.requests MODIFY SETTING parts_to_throw_insert = ${n}` });

  it('answers nothing 2xx while inserts fail, keeps what it took, and resumes', async () => {
    expect((await post(10)).status).toBe(200);
    expect(await stored()).toBe(10);

    // From now on every insert into `requests` is refused: a partition already holds one part.
    await setPartsToThrow(1);
    let answeredB: number | undefined;
    const b = post(20).then((r) => (answeredB = r.status));
    await until('/readyz to turn 503 after the failed insert', async () => !(await ready()));
    expect(answeredB).toBeUndefined(); // taken before the failure was known: waiting, not answered

    const refused = await post(5);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(((await refused.json()) as { error: string }).error).toBe('unavailable');
    const grpcOrHttp = await fetch(`http://127.0.0.1:${running.ports.zipkin}/api/v2/spans`, { method: 'POST', body: '[]', headers: { 'content-type': 'application/json' } });
    expect(grpcOrHttp.status).toBe(503);
    expect(await stored()).toBe(10);

    // Storage is back: the waiting batch is stored once and answered, readiness and intake return.
    await setPartsToThrow(3000);
    await b;
    expect(answeredB).toBe(200);
    await until('/readyz to turn 200 again', ready);
    expect((await post(7)).status).toBe(200);
    expect(await stored()).toBe(37);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(Number(/meshlens_store_insert_failures_total\{table="requests"\} (\d+)/.exec(metrics)?.[1])).toBeGreaterThan(0);
    expect(metrics).toMatch(/meshlens_ingest_retry_responses_total\{receiver="accesslog"\} 1/);
  }, 60_000);
});
