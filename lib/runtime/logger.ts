import pino, { type Logger } from 'pino';

export type { Logger };

/** JSON logs to stdout (the platform ships them); `service` names the target in distributed mode. */
export function createLogger(level: string, service: string): Logger {
  return pino({ level, base: { service }, redact: ['req.headers.authorization', 'headers.authorization'] });
}
