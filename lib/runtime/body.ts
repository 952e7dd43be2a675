/**
 * Request bodies for every HTTP receiver: optional gzip/deflate, and a size limit counted after
 * decompression (CONTRACT.md §9) so a small gzip bomb cannot expand past it.
 */
import type { Readable } from 'node:stream';
import { createGunzip, createInflate } from 'node:zlib';

export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export function readBody(payload: Readable, contentEncoding: string | undefined, limit: number): Promise<Buffer> {
  const encoding = (contentEncoding ?? 'identity').trim().toLowerCase();
  let source: Readable = payload;
  if (encoding === 'gzip' || encoding === 'x-gzip') source = payload.pipe(createGunzip());
  else if (encoding === 'deflate') source = payload.pipe(createInflate());
  else if (encoding !== 'identity' && encoding !== '') {
    payload.resume();
    return Promise.reject(new HttpError(415, 'unsupported_encoding', `Content-Encoding ${encoding} is not supported (gzip, deflate, identity)`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const fail = (err: HttpError): void => {
      if (done) return;
      done = true;
      if (source !== payload) source.destroy();
      payload.resume(); // drain the socket so the 413/400 reply can be read by the client
      reject(err);
    };
    source.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        fail(new HttpError(413, 'body_too_large', `request body exceeds ${limit} bytes after decompression`));
        return;
      }
      chunks.push(chunk);
    });
    source.on('error', (err: Error) => {
      fail(new HttpError(400, 'bad_encoding', `cannot decode ${encoding} body: ${err.message}`));
    });
    payload.on('error', (err: Error) => fail(new HttpError(400, 'bad_request', `body read failed: ${err.message}`)));
    source.on('end', () => {
      if (done) return;
      done = true;
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
  });
}
