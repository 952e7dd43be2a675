/**
 * The load generator: request bodies of `linesPerRequest` lines, sent by `concurrency` keep-alive HTTP
 * clients, each taking the next body when its previous one was answered. 429/503 (the bus is full) are
 * waited out per Retry-After and the same body is sent again, as a log shipper would; they are counted.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';

export interface Body {
  buf: Buffer;
  lines: number;
}

/** Bodies of `perRequest` lines, each line ending in `\n` (as a shipper writes NDJSON). */
export function makeBodies(lines: readonly string[], perRequest: number): Body[] {
  const out: Body[] = [];
  for (let i = 0; i < lines.length; i += perRequest) {
    const chunk = lines.slice(i, i + perRequest);
    out.push({ buf: Buffer.from(chunk.join('\n') + '\n', 'utf8'), lines: chunk.length });
  }
  return out;
}

export interface SendResult {
  requests: number;
  lines: number;
  accepted: number;
  rejected: number;
  /** Answers 429/503 that were waited out and retried. */
  retries: number;
  wallMs: number;
  /** Per-request latency (send to answer), ms, of the requests that were accepted. */
  latencyMs: { p50: number; p99: number; max: number };
}

export interface SendOptions {
  port: number;
  host: string;
  path: string;
  contentType: string;
  concurrency: number;
}

export interface Answer {
  status: number;
  body: string;
  retryAfter: string | undefined;
}

export function post(agent: http.Agent, o: Pick<SendOptions, 'host' | 'port' | 'path' | 'contentType'>, buf: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        agent,
        host: o.host,
        port: o.port,
        path: o.path,
        method: 'POST',
        headers: { 'content-type': o.contentType, 'content-length': buf.length },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const ra = res.headers['retry-after'];
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), retryAfter: Array.isArray(ra) ? ra[0] : ra });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(buf);
  });
}

export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

export async function sendAll(bodies: readonly Body[], o: SendOptions): Promise<SendResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.concurrency });
  const result: SendResult = { requests: 0, lines: 0, accepted: 0, rejected: 0, retries: 0, wallMs: 0, latencyMs: { p50: 0, p99: 0, max: 0 } };
  const latencies: number[] = [];
  let next = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (next < bodies.length) {
      const body = bodies[next++] as Body;
      for (;;) {
        const t = performance.now();
        const a = await post(agent, o, body.buf);
        if (a.status === 429 || a.status === 503) {
          result.retries++;
          const seconds = Number(a.retryAfter);
          await new Promise((r) => setTimeout(r, Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 1000));
          continue;
        }
        if (a.status !== 200) throw new Error(`POST ${o.path} answered ${a.status}: ${a.body.slice(0, 500)}`);
        latencies.push(performance.now() - t);
        const reply = JSON.parse(a.body) as { accepted: number; rejected: number };
        result.requests++;
        result.lines += body.lines;
        result.accepted += reply.accepted;
        result.rejected += reply.rejected;
        break;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: o.concurrency }, worker));
  } finally {
    agent.destroy();
  }
  result.wallMs = performance.now() - t0;
  latencies.sort((a, b) => a - b);
  result.latencyMs = { p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), max: latencies[latencies.length - 1] ?? 0 };
  return result;
}

/** GET `path` `times` times, one after the other; wall time per answer, ms. */
export async function timeGets(port: number, host: string, path: string, times: number): Promise<{ ms: number[]; bytes: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const ms: number[] = [];
  let bytes = 0;
  try {
    for (let i = 0; i < times; i++) {
      const t = performance.now();
      bytes = await new Promise<number>((resolve, reject) => {
        http
          .get({ agent, host, port, path }, (res) => {
            let n = 0;
            res.on('data', (c: Buffer) => (n += c.length));
            res.on('end', () => (res.statusCode === 200 ? resolve(n) : reject(new Error(`GET ${path} answered ${res.statusCode}`))));
            res.on('error', reject);
          })
          .on('error', reject);
      });
      ms.push(performance.now() - t);
    }
  } finally {
    agent.destroy();
  }
  return { ms, bytes };
}
