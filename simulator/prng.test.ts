import { Rng } from './prng';

describe('Rng', () => {
  it('gives the same stream for the same seed and another for another seed', () => {
    const draw = (seed: number) => {
      const r = new Rng(seed);
      return Array.from({ length: 8 }, () => r.u32());
    };
    expect(draw(1)).toEqual(draw(1));
    expect(draw(1)).not.toEqual(draw(2));
    expect(draw(0)).not.toEqual(draw(1));
    expect(draw(0xffffffff)).toHaveLength(8);
  });

  it('refuses seeds outside [0, 2^32)', () => {
    for (const bad of [-1, 2 ** 32, 0.5, Number.NaN]) expect(() => new Rng(bad)).toThrow(RangeError);
  });

  it('draws uniform floats, integers in range, and a plausible normal', () => {
    const r = new Rng(7);
    const n = 50_000;
    let sum = 0;
    let sumNormal = 0;
    let sumSquares = 0;
    const ints = new Set<number>();
    for (let i = 0; i < n; i++) {
      const x = r.next();
      expect(x >= 0 && x < 1).toBe(true);
      sum += x;
      const k = r.int(3, 5);
      ints.add(k);
      const z = r.normal();
      sumNormal += z;
      sumSquares += z * z;
    }
    expect(sum / n).toBeCloseTo(0.5, 2);
    expect([...ints].sort()).toEqual([3, 4, 5]);
    expect(sumNormal / n).toBeCloseTo(0, 1);
    expect(sumSquares / n).toBeCloseTo(1, 1);
  });

  it('makes lowercase hex ids and version-4 UUIDs', () => {
    const r = new Rng(3);
    for (let i = 0; i < 1000; i++) {
      expect(r.hex(4)).toMatch(/^[0-9a-f]{32}$/);
      expect(r.hex(2)).toMatch(/^[0-9a-f]{16}$/);
      expect(r.uuid()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    }
  });
});
