/**
 * The simulator's only source of randomness. `Math.random` cannot be seeded, and the simulator promises
 * byte-identical output for a seed, so every draw goes through this generator, in a fixed order.
 *
 * xoshiro128** (Blackman and Vigna, https://prng.di.unimi.it/xoshiro128starstar.c): 128 bits of state,
 * period 2^128 − 1, 32-bit integer arithmetic only (`Math.imul`), so it is fast in V8 and identical on every
 * platform. The state is seeded from the 32-bit seed through splitmix32, as the authors recommend, so
 * neighbouring seeds give unrelated streams.
 */

const TWO_POW_32 = 4294967296;
// Bound once: under jest's vm context every `Math.` lookup goes through the sandbox's global, ~100× slower.
const { imul } = Math;
/** Two lowercase hex digits per byte value: ids are built from table lookups, not number formatting. */
const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function hex32(w: number): string {
  return HEX_BYTE[w >>> 24]! + HEX_BYTE[(w >>> 16) & 0xff]! + HEX_BYTE[(w >>> 8) & 0xff]! + HEX_BYTE[w & 0xff]!;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** @param seed an integer in [0, 2^32) */
  constructor(seed: number) {
    if (!Number.isInteger(seed) || seed < 0 || seed >= TWO_POW_32) {
      throw new RangeError(`seed must be an integer in [0, 2^32), got ${seed}`);
    }
    let s = seed | 0;
    const next = (): number => {
      // splitmix32 (the 32-bit variant of Steele, Lea and Flood's splitmix64 finalizer).
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = imul(z ^ (z >>> 16), 0x85ebca6b);
      z = imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) | 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    // An all-zero state would stay zero forever; splitmix32 cannot produce four zeros in a row, but be explicit.
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  /** A uniformly distributed unsigned 32-bit integer. */
  u32(): number {
    const result = imul(rotl(imul(this.b, 5), 7), 9);
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.u32() / TWO_POW_32;
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** Uniform integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** Exponentially distributed with the given mean: the gaps of a Poisson arrival process. */
  exponential(mean: number): number {
    return -Math.log(1 - this.next()) * mean;
  }

  /** Standard normal (Box-Muller; the second variate is dropped so every call consumes exactly two draws). */
  normal(): number {
    const u = 1 - this.next(); // (0, 1]: log(0) would be -Infinity
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Log-normal with the given median and shape `sigma`: service latencies are skewed to the right like this. */
  logNormal(median: number, sigma: number): number {
    return median * Math.exp(sigma * this.normal());
  }

  /** `words` × 8 lowercase hex digits, never all zeros (W3C and Zipkin treat an all-zero id as invalid). */
  hex(words: number): string {
    let out = '';
    let any = 0;
    for (let i = 0; i < words; i++) {
      const w = this.u32();
      any |= w;
      out += hex32(w);
    }
    return any === 0 ? out.slice(0, -1) + '1' : out;
  }

  /** A version-4 UUID (RFC 9562 §5.4: version nibble 4, variant bits 10), as Envoy generates `x-request-id`. */
  uuid(): string {
    const a = this.u32();
    const b = (this.u32() & 0xffff0fff) | 0x00004000;
    const c = (this.u32() & 0x3fffffff) | 0x80000000;
    const d = this.u32();
    const hb = hex32(b >>> 0);
    const hc = hex32(c >>> 0);
    return `${hex32(a)}-${hb.slice(0, 4)}-${hb.slice(4)}-${hc.slice(0, 4)}-${hc.slice(4)}${hex32(d)}`;
  }
}
