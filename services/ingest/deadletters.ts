/**
 * The all-in-one's dead-letter sink: with the in-memory bus nothing else keeps rejected input, so it is
 * appended as NDJSON (one DeadLetter per line, raw bytes base64) to `<dataDir>/deadletters/<UTC day>.ndjson`.
 * Offsets are committed only after the append, so a crash loses nothing the bus handed over. In distributed
 * mode the Kafka topic `meshlens.deadletters` itself is the durable store.
 */
import { appendFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { TOPICS, type Bus, type Subscription } from '../../lib/bus/types';

export async function startDeadLetterFileSink(bus: Bus, dataDir: string): Promise<Subscription> {
  const dir = join(dataDir, 'deadletters');
  await mkdir(dir, { recursive: true });
  return bus.subscribe(TOPICS.deadLetters, 'meshlens-deadletter-file', async (messages) => {
    const byDay = new Map<string, string[]>();
    for (const m of messages) {
      for (const letter of m.value) {
        const day = new Date(letter.receivedAtMs).toISOString().slice(0, 10);
        const lines = byDay.get(day);
        const line = JSON.stringify(letter);
        if (lines) lines.push(line);
        else byDay.set(day, [line]);
      }
    }
    for (const [day, lines] of byDay) await appendFile(join(dir, `${day}.ndjson`), lines.join('\n') + '\n');
  });
}
