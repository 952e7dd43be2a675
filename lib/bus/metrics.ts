/**
 * The pipeline's depth as Prometheus sees it (CONTRACT.md §5): per topic, the records taken in and not yet
 * stored, and how long the oldest of them has waited. Read from the bus at scrape time, never per record.
 * A depth that only grows, or an age past a few seconds, says storage is behind or down.
 */
import { Gauge, type Registry } from 'prom-client';
import { LABELS, METRICS } from '../catalogue';
import type { Bus } from './types';

const { pipelinePendingRecords: PENDING, pipelineOldestPendingSeconds: OLDEST } = METRICS;
const TOPIC = LABELS.topic;

export function registerPipelineGauges(registry: Registry, bus: Bus, now: () => number = Date.now): void {
  new Gauge({
    name: PENDING.name,
    help: PENDING.help,
    labelNames: PENDING.labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const p of bus.pending()) this.set({ [TOPIC]: p.topic }, p.records);
    },
  });
  new Gauge({
    name: OLDEST.name,
    help: OLDEST.help,
    labelNames: OLDEST.labelNames,
    registers: [registry],
    collect() {
      this.reset();
      const t = now();
      for (const p of bus.pending()) this.set({ [TOPIC]: p.topic }, p.oldestMs === undefined ? 0 : Math.max(0, (t - p.oldestMs) / 1000));
    },
  });
}
