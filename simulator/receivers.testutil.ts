/**
 * Test helper: meshlens's real ingest receivers on ephemeral ports with an in-memory bus, and a count of what
 * reached the bus. Test code only (services do not import each other).
 */
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { Registry } from 'prom-client';
import { createMemoryBus, TOPICS } from '../lib/bus';
import type { Flow, MeshRequest, Span } from '../lib/model';
import { createHttpServer } from '../lib/runtime';
import { createIngest } from '../services/ingest';

export interface Receivers {
  httpBaseUrl: string;
  zipkinBaseUrl: string;
  /** Records published on the bus so far. */
  seen: { requests: number; flows: number; spans: number };
  /** Resolves once `pred` holds (polling), or after 10 s. */
  until(pred: () => boolean): Promise<void>;
  close(): Promise<void>;
}

export async function startReceivers(ingestToken?: string): Promise<Receivers> {
  const logger = pino({ level: 'silent' });
  const bus = createMemoryBus();
  const seen = { requests: 0, flows: 0, spans: 0 };
  const count = (k: keyof typeof seen) => async (ms: { value: unknown[] }[]) => void ms.forEach((m) => (seen[k] += m.value.length));
  await bus.subscribe<MeshRequest[]>(TOPICS.requests, 'simulator-test', count('requests'));
  await bus.subscribe<Flow[]>(TOPICS.flows, 'simulator-test', count('flows'));
  await bus.subscribe<Span[]>(TOPICS.spans, 'simulator-test', count('spans'));
  const ingest = createIngest({
    bus,
    registry: new Registry(),
    logger,
    ingestToken,
    maxBodyBytes: 16 << 20,
    maxInflightBytes: 64 << 20,
    // The tests simulate fixed days (reproducible output), so the event-time bound reaches back ten years.
    bounds: { maxAgeMs: 3650 * 86_400_000, maxAheadMs: 3_600_000 },
  });
  const http = createHttpServer({ logger, maxBodyBytes: 16 << 20, budget: ingest.budget });
  ingest.registerHttpRoutes(http);
  await http.listen({ host: '127.0.0.1', port: 0 });
  await ingest.zipkin.listen({ host: '127.0.0.1', port: 0 });
  return {
    httpBaseUrl: `http://127.0.0.1:${(http.server.address() as AddressInfo).port}`,
    zipkinBaseUrl: `http://127.0.0.1:${(ingest.zipkin.server.address() as AddressInfo).port}`,
    seen,
    async until(pred) {
      const deadline = Date.now() + 10_000;
      while (!pred() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    },
    async close() {
      await http.close();
      await ingest.zipkin.close();
      await bus.close();
    },
  };
}
