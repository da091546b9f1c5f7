/**
 * Flag parsers for commander options. Each checks one value at the boundary and throws commander's
 * InvalidArgumentError, which commander reports as
 * `option '--chunk-size <Q>' argument 'x' is invalid. expected an integer in [1, 4096]`.
 */
import { InvalidArgumentError } from 'commander';

/** An integer parser for `[min, max]` (inclusive). Accepts plain decimal digits only. */
export function intFlag(min: number, max: number = Number.MAX_SAFE_INTEGER): (value: string) => number {
  const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `in [${min}, ${max}]`;
  return (value: string): number => {
    const n = Number(value);
    if (!/^[+-]?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer ${range}`);
    }
    return n;
  };
}

/** A finite number parser for `[min, max]` (inclusive): `1e-4`, `0.001`. */
export function floatFlag(min: number, max: number = Infinity): (value: string) => number {
  const range = max === Infinity ? `≥ ${min}` : `in [${min}, ${max}]`;
  return (value: string): number => {
    const n = value.trim() === '' ? NaN : Number(value);
    if (!Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`expected a finite number ${range}`);
    return n;
  };
}

/** Parser for a comma-separated list of names from `allowed` (`webgpu,cpu`), without duplicates. */
export function listFlag<T extends string>(allowed: readonly T[]): (value: string) => T[] {
  return (value: string): T[] => {
    const parts = value.split(',').map((s) => s.trim().toLowerCase());
    const out: T[] = [];
    for (const p of parts) {
      if (!(allowed as readonly string[]).includes(p)) {
        throw new InvalidArgumentError(`expected one or more of ${allowed.join(', ')} separated by commas`);
      }
      if (!out.includes(p as T)) out.push(p as T);
    }
    return out;
  };
}
