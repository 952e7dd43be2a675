/**
 * The pipeline's depth as Prometheus sees it (CONTRACT.md §5): per topic, the records taken in and not yet
 * stored, and how long the oldest of them has waited. Read from the bus at scrape time, never per record.
 * A depth that only grows, or an age past a few seconds, says storage is behind or down.
 */
import { Gauge, type Registry } from 'prom-client';
import type { Bus } from './types';

export function registerPipelineGauges(registry: Registry, bus: Bus, now: () => number = Date.now): void {
  new Gauge({
    name: 'meshlens_pipeline_pending_records',
    help: 'Records acknowledged or taken in but not yet stored, per bus topic (memory bus: its depth; Kafka: this consumer\'s lag, estimated in records).',
    labelNames: ['topic'],
    registers: [registry],
    collect() {
      this.reset();
      for (const p of bus.pending()) this.set({ topic: p.topic }, p.records);
    },
  });
  new Gauge({
    name: 'meshlens_pipeline_oldest_pending_seconds',
    help: 'Age of the oldest record not yet stored, per bus topic; 0 when none waits.',
    labelNames: ['topic'],
    registers: [registry],
    collect() {
      this.reset();
      const t = now();
      for (const p of bus.pending()) this.set({ topic: p.topic }, p.oldestMs === undefined ? 0 : Math.max(0, (t - p.oldestMs) / 1000));
    },
  });
}
