/**
 * Request bodies for every HTTP receiver: optional gzip/deflate, and a size limit counted after
 * decompression (CONTRACT.md §9) so a small gzip bomb cannot expand past it. Optionally a shared budget of
 * bytes in flight across every request of every receiver: memory stays bounded however many senders there are.
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

/** Seconds a client should wait before retrying when the pipeline is full or unavailable. */
export const RETRY_AFTER_SECONDS = 1;

/**
 * Decompressed body bytes every in-flight request holds together (MESHLENS_MAX_INFLIGHT_BYTES). A request's bytes
 * are given back when its response is over: in the all-in-one that is once its records are stored.
 */
export class BodyBudget {
  private used = 0;

  constructor(readonly limit: number) {}

  get inUse(): number {
    return this.used;
  }

  /** Takes `n` bytes if they fit; false (nothing taken) if not. */
  take(n: number): boolean {
    if (this.used + n > this.limit) return false;
    this.used += n;
    return true;
  }

  give(n: number): void {
    this.used -= n;
  }
}

/** The 503 a sender gets when the bytes in flight are at their bound: nothing was taken, retry later. */
function budgetExceeded(limit: number): HttpError {
  return new HttpError(503, 'pipeline_busy', `meshlens holds ${limit} bytes of request bodies in flight; retry later`, {
    'retry-after': String(RETRY_AFTER_SECONDS),
  });
}

/**
 * A request body as the decompressed chunks it arrived in, in order. The newline-delimited receivers read their
 * lines straight from the chunks: joining them first would allocate one buffer the size of the whole body, and a
 * fresh allocation that large costs more here than the copy (bench R1: 3.6 % of the main thread, for a body of
 * 500 lines). Whole-body formats (OTLP, Zipkin, JSON arrays) take `wholeBody`.
 */
export type BodyChunks = readonly Buffer[];

/** The body as one buffer; the chunk itself when there is one. */
export function wholeBody(body: BodyChunks | undefined): Buffer {
  if (body === undefined || body.length === 0) return Buffer.alloc(0);
  return body.length === 1 ? (body[0] as Buffer) : Buffer.concat(body as Buffer[]);
}

/**
 * Reads the whole body, as its chunks. With a `budget`, every decompressed chunk is taken from it as it arrives and `held`
 * reports how much this body holds (the caller gives it back when the response is over); a read that fails
 * gives back what it took.
 */
export function readBody(
  payload: Readable,
  contentEncoding: string | undefined,
  limit: number,
  budget?: BodyBudget,
  held?: (bytes: number) => void,
): Promise<BodyChunks> {
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
      budget?.give(size);
      if (source !== payload) source.destroy();
      payload.resume(); // drain the socket so the 413/400 reply can be read by the client
      reject(err);
    };
    source.on('data', (chunk: Buffer) => {
      if (done) return;
      if (size + chunk.length > limit) {
        fail(new HttpError(413, 'body_too_large', `request body exceeds ${limit} bytes after decompression`));
        return;
      }
      if (budget && !budget.take(chunk.length)) {
        fail(budgetExceeded(budget.limit));
        return;
      }
      size += chunk.length;
      chunks.push(chunk);
    });
    source.on('error', (err: Error) => {
      fail(new HttpError(400, 'bad_encoding', `cannot decode ${encoding} body: ${err.message}`));
    });
    payload.on('error', (err: Error) => fail(new HttpError(400, 'bad_request', `body read failed: ${err.message}`)));
    source.on('end', () => {
      if (done) return;
      done = true;
      held?.(size);
      resolve(chunks);
    });
  });
}
