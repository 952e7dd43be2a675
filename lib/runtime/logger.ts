import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * JSON logs to stdout (the platform ships them); `service` names the target in distributed mode. The demo
 * logs to stderr because its summary owns stdout.
 */
export function createLogger(level: string, service: string, destination: NodeJS.WritableStream = process.stdout): Logger {
  return pino({ level, base: { service }, redact: ['req.headers.authorization', 'headers.authorization'] }, destination);
}
