/**
 * Summary statistics for repeated measurements.
 *
 * @module
 */

/** Median and spread of a sample. */
export interface Summary {
  /** Median value. */
  median: number;
  /** Smallest value. */
  min: number;
  /** Largest value. */
  max: number;
  /** Number of samples. */
  n: number;
}

/** The q-quantile (0..1) of `values` by linear interpolation. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** Median, min and max of `values`. */
export function summarize(values: number[]): Summary {
  return {
    median: quantile(values, 0.5),
    min: Math.min(...values),
    max: Math.max(...values),
    n: values.length,
  };
}

/** Runs `fn` `runs` times (after `warmup` unrecorded runs) and summarises the results. */
export async function repeat(
  runs: number,
  fn: () => Promise<number>,
  warmup = 0,
): Promise<Summary> {
  for (let i = 0; i < warmup; i++) await fn();
  const values: number[] = [];
  for (let i = 0; i < runs; i++) values.push(await fn());
  return summarize(values);
}
