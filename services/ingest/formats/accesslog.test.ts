/**
 * The per-line dispatcher and the robustness properties of every access-log parser: no input makes any of
 * them throw, and every rejection names a catalogued reason with a message.
 */
import fc from 'fast-check';
import { readdirSync } from 'node:fs';
import { REJECT_REASONS } from '../../../lib/model';
import { MAX_LINE_BYTES, parseAccessLogLine, parseAccessLogObject } from './accesslog';
import { FIXTURES, accepted, fixtureLine, fixtureLines, isSaneRecord, isWellFormedRejection, rejection } from './accesslog.testutil';
import { parseEnvelope } from './envelope';
import { parseIstioJson } from './istio-json';
import { parseIstioText } from './istio-text';

/** Every fixture line of every access-log fixture file. */
const ALL_LINES = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.log') || f.endsWith('.ndjson'))
  .flatMap((f) => fixtureLines(f));

describe('parseAccessLogLine', () => {
  it('routes TEXT, Istio JSON and envelopes and labels the format', () => {
    expect(parseAccessLogLine(fixtureLine('istio-1.9-text.log', 0))).toMatchObject({ format: 'istio_text', result: { ok: true } });
    expect(parseAccessLogLine(fixtureLine('istio-json-typed.ndjson', 0))).toMatchObject({ format: 'istio_json', result: { ok: true } });
    expect(parseAccessLogLine(fixtureLine('fluentbit-envelope.ndjson', 0))).toMatchObject({ format: 'envelope', result: { ok: true } });
    expect(parseAccessLogLine(fixtureLine('fluentbit-envelope.ndjson', 4))).toMatchObject({ format: 'envelope', result: { ok: true } }); // Merge_Log
    expect(parseAccessLogLine(fixtureLine('vector-envelope.ndjson', 2))).toMatchObject({ format: 'envelope', result: { ok: true } }); // dotted keys
    expect(parseAccessLogLine('  \t{"start_time":"2020-10-29T03:22:16.126Z"}')).toMatchObject({ format: 'istio_json', result: { ok: true } });
  });

  it('sees a JSON line behind a kubectl --timestamps prefix', () => {
    const json = fixtureLine('istio-json-strings.ndjson', 2);
    const prefixed = parseAccessLogLine(`2020-03-07T16:06:58.481234567Z ${json}`);
    expect(prefixed).toMatchObject({ format: 'istio_json', result: { ok: true } });
    expect(prefixed.result).toEqual(parseIstioJson(json));
    // An application line behind the prefix is still no access log.
    expect(parseAccessLogLine(fixtureLine('wrapped-text.log', 4)).result).toMatchObject({ ok: false, reason: 'not_an_access_log' });
  });

  it('gives the same records as the format parsers', () => {
    const text = fixtureLine('denials.log', 1);
    expect(parseAccessLogLine(text).result).toEqual(parseIstioText(text));
    const json = fixtureLine('istio-json-strings.ndjson', 5);
    expect(parseAccessLogLine(json).result).toEqual(parseIstioJson(json));
    const env = fixtureLine('vector-envelope.ndjson', 1);
    expect(parseAccessLogLine(env).result).toEqual(parseEnvelope(env));
  });

  it('ignores a UTF-8 byte order mark before the line (the first line of a body a Windows tool wrote)', () => {
    for (const line of [fixtureLine('istio-1.9-text.log', 0), fixtureLine('istio-json-typed.ndjson', 0), fixtureLine('fluentbit-envelope.ndjson', 0)]) {
      expect(parseAccessLogLine('\uFEFF' + line)).toEqual(parseAccessLogLine(line));
    }
  });

  it('rejects with the reason of the layer that failed', () => {
    expect(parseAccessLogLine('{"start_time": ')).toMatchObject({ format: 'istio_json', result: { ok: false, reason: 'malformed_json' } });
    expect(parseAccessLogLine(fixtureLine('rejected-json.ndjson', 1))).toMatchObject({ format: 'istio_json', result: { ok: false, reason: 'missing_field' } });
    expect(parseAccessLogLine(fixtureLine('vector-envelope.ndjson', 3))).toMatchObject({ format: 'envelope', result: { ok: false, reason: 'not_an_access_log' } });
    expect(parseAccessLogLine(fixtureLine('rejected-text.log', 0))).toMatchObject({ format: 'istio_text', result: { ok: false, reason: 'not_an_access_log' } });
    expect(parseAccessLogLine('garbage that is no access log')).toMatchObject({ format: 'istio_text', result: { ok: false, reason: 'unknown_layout' } });
  });

  it('rejects lines over MAX_LINE_BYTES (UTF-8 bytes), and accepts a line just under it', () => {
    expect(MAX_LINE_BYTES).toBe(64 * 1024);
    const base = fixtureLine('istio-1.9-text.log', 0);
    const pad = (n: number, ch: string) => base.replace('"GET /status/418 ', `"GET /status/418?q=${ch.repeat(n)} `);
    const fits = pad(MAX_LINE_BYTES - Buffer.byteLength(pad(0, 'a')), 'a');
    expect(Buffer.byteLength(fits)).toBe(MAX_LINE_BYTES);
    expect(accepted(parseAccessLogLine(fits).result).path.length).toBeGreaterThan(60000);
    expect(rejection(parseAccessLogLine(fits + 'a').result).reason).toBe('line_too_long');
    // Counted in bytes: 22k three-byte characters are 66k bytes although the string is shorter than the limit.
    const wide = pad(22000, '€');
    expect(wide.length).toBeLessThan(MAX_LINE_BYTES);
    expect(parseAccessLogLine(wide)).toMatchObject({ format: 'istio_text', result: { ok: false, reason: 'line_too_long' } });
    expect(parseAccessLogLine(`{"x":"${'a'.repeat(MAX_LINE_BYTES)}"}`)).toMatchObject({ format: 'istio_json', result: { reason: 'line_too_long' } });
  });

  it('every fixture line is accepted or rejected the way its file says', () => {
    const rejectedFiles = new Set(['rejected-text.log', 'rejected-json.ndjson']);
    for (const f of readdirSync(FIXTURES).filter((n) => n.endsWith('.log') || n.endsWith('.ndjson'))) {
      fixtureLines(f).forEach((line, i) => {
        const { result } = parseAccessLogLine(line);
        expect(isWellFormedRejection(result)).toBe(true);
        if (rejectedFiles.has(f)) expect({ f, i, ok: result.ok }).toEqual({ f, i, ok: false });
        if (result.ok) expect(isSaneRecord(result.value)).toBe(true);
      });
    }
  });
});

describe('parseAccessLogObject (an element of a JSON-array body)', () => {
  it('gives every JSON fixture record what its line gets', () => {
    for (const line of ALL_LINES.filter((l) => l.trimStart().startsWith('{'))) {
      let obj: unknown;
      try {
        obj = JSON.parse(line);
      } catch {
        continue;
      }
      expect(parseAccessLogObject(obj as Record<string, unknown>)).toEqual(parseAccessLogLine(JSON.stringify(obj)));
    }
  });

  it('holds the line limit on the JSON text of the element, in UTF-8 bytes, to the byte', () => {
    const typed = JSON.parse(fixtureLine('istio-json-typed.ndjson', 0)) as Record<string, unknown>;
    const sized = (bytes: number, ch: string): Record<string, unknown> => {
      const bare = Buffer.byteLength(JSON.stringify({ ...typed, path: '' }));
      const unit = Buffer.byteLength(JSON.stringify(ch)) - 2; // an escaped quote is 2 bytes, a euro sign 3
      return { ...typed, path: ch.repeat(Math.floor((bytes - bare) / unit)) };
    };
    for (const ch of ['a', '€', '"', '\u0001']) {
      for (const bytes of [MAX_LINE_BYTES - 6, MAX_LINE_BYTES - 1, MAX_LINE_BYTES, MAX_LINE_BYTES + 1, MAX_LINE_BYTES + 6]) {
        const obj = sized(bytes, ch);
        const line = JSON.stringify(obj);
        const viaLine = parseAccessLogLine(line);
        expect(parseAccessLogObject(obj)).toEqual(viaLine);
        expect(viaLine.result.ok).toBe(Buffer.byteLength(line) <= MAX_LINE_BYTES);
      }
    }
  });

  it('any object of Istio, envelope and other keys gets what its JSON text gets as a line (fast-check)', () => {
    const keys = fc.constantFrom('start_time', 'response_code', 'upstream_cluster', 'path', 'log', 'message', 'kubernetes', 'duration', 'x');
    const value = fc.oneof(fc.jsonValue(), fc.constantFrom('2026-03-14T09:26:53.589Z', 'outbound|9080|v1|reviews.default.svc.cluster.local', fixtureLine('istio-1.9-text.log', 0)));
    fc.assert(
      fc.property(fc.dictionary(keys, value), (obj) => {
        expect(parseAccessLogObject(obj)).toEqual(parseAccessLogLine(JSON.stringify(obj)));
      }),
      { numRuns: 500 },
    );
  });
});

describe('no input crashes any parser (fast-check)', () => {
  const parsers: [string, (s: string) => unknown][] = [
    ['parseIstioText', parseIstioText],
    ['parseIstioJson', parseIstioJson],
    ['parseEnvelope', parseEnvelope],
    ['parseAccessLogLine', (s) => parseAccessLogLine(s).result],
  ];

  function check(line: string): void {
    for (const [, parse] of parsers) {
      const r = parse(line) as ReturnType<typeof parseIstioText>;
      expect(isWellFormedRejection(r)).toBe(true);
      if (r.ok) expect(isSaneRecord(r.value)).toBe(true);
    }
  }

  it('arbitrary strings, including every code point', () => {
    fc.assert(fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' })), check), { numRuns: 1500 });
  });

  it('strings built from the characters access logs are made of', () => {
    const alphabet = fc.constantFrom(...'[]"-| ;{}:,.0123456789TZ_\t\r\nGETPOST/HTTP/1.1outbound|9080||'.split(''), ' - ', '"-"', '"- - -"', '[2026-03-14T09:26:53.589Z]');
    fc.assert(fc.property(fc.array(alphabet, { maxLength: 120 }).map((a) => a.join('')), check), { numRuns: 1500 });
  });

  it('real lines with tokens deleted, duplicated, swapped and characters flipped', () => {
    const mutation = fc.record({
      line: fc.constantFrom(...ALL_LINES),
      ops: fc.array(
        fc.record({
          kind: fc.constantFrom('delete', 'duplicate', 'swap', 'flip', 'insert', 'truncate'),
          at: fc.nat(),
          ch: fc.oneof(fc.constantFrom('"', ' ', '[', ']', '-', '|', ';', '{', '}', ',', '\t', '\\', '\u0000', '€'), fc.string({ minLength: 1, maxLength: 1 })),
        }),
        { minLength: 1, maxLength: 4 },
      ),
    });
    fc.assert(
      fc.property(mutation, ({ line, ops }) => {
        let s = line;
        for (const op of ops) {
          const tokens = s.split(' ');
          const t = op.at % Math.max(tokens.length, 1);
          const c = op.at % Math.max(s.length, 1);
          if (op.kind === 'delete') tokens.splice(t, 1);
          else if (op.kind === 'duplicate') tokens.splice(t, 0, tokens[t] ?? '');
          else if (op.kind === 'swap') [tokens[t], tokens[(t + 1) % tokens.length]] = [tokens[(t + 1) % tokens.length]!, tokens[t]!];
          if (op.kind === 'delete' || op.kind === 'duplicate' || op.kind === 'swap') s = tokens.join(' ');
          else if (op.kind === 'flip') s = s.slice(0, c) + op.ch + s.slice(c + 1);
          else if (op.kind === 'insert') s = s.slice(0, c) + op.ch + s.slice(c);
          else s = s.slice(0, c);
        }
        check(s);
      }),
      { numRuns: 3000 },
    );
  });

  it('arbitrary JSON values and objects, bare and as envelopes', () => {
    const k8s = fc.record({ pod_name: fc.string(), namespace_name: fc.string(), container_name: fc.constantFrom('istio-proxy', 'app') }, { requiredKeys: [] });
    const objects = fc.oneof(
      fc.jsonValue(),
      fc.object(),
      fc.dictionary(fc.constantFrom('start_time', 'response_code', 'upstream_cluster', 'log', 'message', 'kubernetes', 'bytes_sent', 'protocol'), fc.jsonValue()),
      fc.record({ log: fc.oneof(fc.constantFrom(...ALL_LINES), fc.string(), fc.jsonValue()), kubernetes: k8s }),
      fc.record({ message: fc.oneof(fc.constantFrom(...ALL_LINES), fc.string()), 'kubernetes.pod_name': fc.string(), 'kubernetes.container_name': fc.constant('istio-proxy') }),
    );
    fc.assert(fc.property(objects, (v) => check(JSON.stringify(v) ?? 'undefined')), { numRuns: 1500 });
  });

  it('rejection reasons come from the catalogue', () => {
    // A sanity check on the helper itself, so the properties above cannot pass vacuously.
    expect(isWellFormedRejection({ ok: false, reason: 'no_such_reason' as (typeof REJECT_REASONS)[number], message: 'x' })).toBe(false);
    expect(isWellFormedRejection({ ok: false, reason: 'unknown_layout', message: '' })).toBe(false);
  });
});
