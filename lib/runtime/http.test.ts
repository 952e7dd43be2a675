import { gzipSync } from 'node:zlib';
import pino from 'pino';
import { Registry } from 'prom-client';
import { Health } from './health';
import { addOpsRoutes, bearerAuth, createHttpServer } from './http';

const logger = pino({ level: 'silent' });

function echoServer(maxBodyBytes: number, token?: string) {
  const app = createHttpServer({ logger, maxBodyBytes });
  app.post('/echo', { onRequest: bearerAuth(token) }, async (request) => ({ bytes: (request.body as Buffer).length, text: (request.body as Buffer).toString() }));
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
