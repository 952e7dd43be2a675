import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import pino from 'pino';
import { Registry } from 'prom-client';
import { BodyBudget, wholeBody, type BodyChunks } from './body';
import { Health } from './health';
import { addOpsRoutes, bearerAuth, checkBearer, createHttpServer, tokenDigest } from './http';

const logger = pino({ level: 'silent' });

function echoServer(maxBodyBytes: number, token?: string) {
  const app = createHttpServer({ logger, maxBodyBytes });
  app.post('/echo', { onRequest: bearerAuth(token) }, async (request) => ({ bytes: wholeBody(request.body as BodyChunks).length, text: wholeBody(request.body as BodyChunks).toString() }));
  return app;
}

describe('createHttpServer bodies', () => {
  it('decompresses gzip bodies', async () => {
    const app = echoServer(1024);
    const res = await app.inject({ method: 'POST', url: '/echo', headers: { 'content-type': 'text/plain', 'content-encoding': 'gzip' }, payload: gzipSync('hello mesh') });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ bytes: 10, text: 'hello mesh' });
  });

  it('counts the limit after decompression: a small gzip bomb gets 413', async () => {
    const app = echoServer(64 * 1024);
    const bomb = gzipSync(Buffer.alloc(1024 * 1024, 0x61));
    expect(bomb.length).toBeLessThan(64 * 1024);
    const res = await app.inject({ method: 'POST', url: '/echo', headers: { 'content-type': 'text/plain', 'content-encoding': 'gzip' }, payload: bomb });
    expect(res.statusCode).toBe(413);
    expect(res.json().error).toBe('body_too_large');
  });

  it('answers 413 for a plain body over the limit', async () => {
    const app = echoServer(1024);
    const res = await app.inject({ method: 'POST', url: '/echo', headers: { 'content-type': 'text/plain' }, payload: Buffer.alloc(2048, 0x61) });
    expect(res.statusCode).toBe(413);
  });

  it('answers 400 for a corrupt gzip body and 415 for an unknown encoding', async () => {
    const app = echoServer(1024);
    const corrupt = await app.inject({ method: 'POST', url: '/echo', headers: { 'content-type': 'text/plain', 'content-encoding': 'gzip' }, payload: Buffer.from('not gzip at all') });
    expect(corrupt.statusCode).toBe(400);
    expect(corrupt.json().error).toBe('bad_encoding');
    const br = await app.inject({ method: 'POST', url: '/echo', headers: { 'content-type': 'text/plain', 'content-encoding': 'br' }, payload: 'x' });
    expect(br.statusCode).toBe(415);
  });

  it('requires the bearer token when one is configured', async () => {
    const app = echoServer(1024, 't0ken');
    const none = await app.inject({ method: 'POST', url: '/echo', headers: { 'content-type': 'text/plain' }, payload: 'x' });
    expect(none.statusCode).toBe(401);
    const wrong = await app.inject({ method: 'POST', url: '/echo', headers: { 'content-type': 'text/plain', authorization: 'Bearer t0kem' }, payload: 'x' });
    expect(wrong.statusCode).toBe(401);
    const right = await app.inject({ method: 'POST', url: '/echo', headers: { 'content-type': 'text/plain', authorization: 'Bearer t0ken' }, payload: 'x' });
    expect(right.statusCode).toBe(200);
  });

  it('takes the Bearer scheme in any case (RFC 7235), and nothing but the exact token', () => {
    const expected = tokenDigest('s3cret');
    for (const header of ['Bearer s3cret', 'bearer s3cret', 'BEARER s3cret', 'bEaReR   s3cret']) expect(checkBearer(header, expected)).toBe(true);
    for (const header of [undefined, '', 's3cret', 'Bearer', 'Bearer ', 'Basic s3cret', 'Bearer s3cre', 'Bearer s3cret!', 'Bearer s3cret x', 'Bearers3cret'])
      expect(checkBearer(header, expected)).toBe(false);
  });

  it('compares digests of equal length, so a token of another length takes the same path', () => {
    // The comparison is on SHA-256 digests: whatever the sent token's length, timingSafeEqual sees 32 bytes on
    // both sides (it throws on unequal lengths, which a length-leaking early return used to avoid).
    expect(tokenDigest('x')).toHaveLength(32);
    expect(tokenDigest('a much longer token than the expected one')).toHaveLength(32);
    expect(checkBearer('Bearer a much longer token than the expected one', tokenDigest('s3cret'))).toBe(false);
  });

  it('bounds the bytes of bodies in flight: beyond the budget a request gets 503 with Retry-After, and the bytes come back after the response', async () => {
    const budget = new BodyBudget(1000);
    const app = createHttpServer({ logger, maxBodyBytes: 800, budget });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    app.post('/hold', async (request) => {
      await gate;
      return { bytes: wholeBody(request.body as BodyChunks).length };
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/hold`;
      const post = (n: number) => fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x'.repeat(n) });
      const first = post(700);
      while (budget.inUse < 700) await new Promise((r) => setTimeout(r, 5));
      const second = await post(400);
      expect(second.status).toBe(503);
      expect(second.headers.get('retry-after')).toBe('1');
      expect(((await second.json()) as { error: string }).error).toBe('pipeline_busy');
      expect(budget.inUse).toBe(700);
      release();
      expect((await first).status).toBe(200);
      while (budget.inUse > 0) await new Promise((r) => setTimeout(r, 5));
      expect((await post(800)).status).toBe(200);
      while (budget.inUse > 0) await new Promise((r) => setTimeout(r, 5));
    } finally {
      await app.close();
    }
  });
});

describe('body budget when clients go away', () => {
  it('gives back the bytes of a body whose client left while it was being decompressed', async () => {
    const budget = new BodyBudget(64 * 1024 * 1024);
    const app = createHttpServer({ logger, maxBodyBytes: 32 * 1024 * 1024, budget });
    app.post('/hold', async (request) => ({ bytes: wholeBody(request.body as BodyChunks).length }));
    await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const port = (app.server.address() as { port: number }).port;
      // ~10 KiB on the wire, 10 MiB once inflated: the upload ends long before the inflating does.
      const body = gzipSync(Buffer.alloc(10 * 1024 * 1024, 0x61));
      for (let i = 0; i < 5; i++) {
        const socket = connect(port, '127.0.0.1');
        await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
        socket.write(
          `POST /hold HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\ncontent-encoding: gzip\r\ncontent-length: ${body.length}\r\n\r\n`,
        );
        socket.write(body);
        await new Promise((r) => setTimeout(r, i)); // leave at several points of the inflating
        socket.destroy();
      }
      const deadline = Date.now() + 5_000;
      while (budget.inUse > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(budget.inUse).toBe(0);
    } finally {
      await app.close();
    }
  });
});

describe('ops routes', () => {
  it('reports readiness from the registered checks', async () => {
    const app = createHttpServer({ logger, maxBodyBytes: 1024 });
    const health = new Health();
    let busReady = true;
    health.register('bus', () => busReady);
    addOpsRoutes(app, health, new Registry());
    expect((await app.inject('/readyz')).statusCode).toBe(503); // not started yet
    health.markStarted();
    expect((await app.inject('/readyz')).statusCode).toBe(200);
    busReady = false;
    const down = await app.inject('/readyz');
    expect(down.statusCode).toBe(503);
    expect(down.json().checks.bus).toBe(false);
    expect((await app.inject('/livez')).statusCode).toBe(200);
    health.markStopping();
    busReady = true;
    expect((await app.inject('/readyz')).statusCode).toBe(503);
  });
});
