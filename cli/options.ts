import { UsageError } from './exit.js';

/** A commander option parser for an integer in [min, max]; UsageError naming the option otherwise. */
export function intOption(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${name} ${value}: expected an integer ${min}-${max}`);
    return n;
  };
}

/** A commander option parser for a number above 0, at most max. */
export function positiveNumber(name: string, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0 || n > max) throw new UsageError(`${name} ${value}: expected a number above 0, at most ${max}`);
    return n;
  };
}
