/** Test helper shared by the whole-body parsers' property tests (OTLP logs/traces, Zipkin). */
import { REJECT_REASONS, type Result } from '../../../lib/model';
import type { Batch } from './batch';

const REASONS = new Set<string>(REJECT_REASONS);

/**
 * Asserts what every caller relies on: a rejected body, and every rejected record in an accepted one,
 * carries a reason from REJECT_REASONS and a message, and a rejected record says where it stood.
 */
export function expectWellFormedBatch(r: Result<Batch<unknown>>): void {
  if (!r.ok) {
    expect(REASONS.has(r.reason)).toBe(true);
    expect(r.message.length).toBeGreaterThan(0);
    return;
  }
  for (const rej of r.value.rejects) {
    expect(REASONS.has(rej.reason)).toBe(true);
    expect(rej.message.length).toBeGreaterThan(0);
    expect(typeof rej.raw).toBe('string');
    expect(rej.index).toBeGreaterThan(0);
  }
}
