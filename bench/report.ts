/**
 * The one way a benchmark states a result that `npm run bench` collects into its table.
 *
 * A benchmark keeps printing its own human lines; for each figure that a goal is about it also
 * calls `reportMeasure`, which prints one line `BENCH-RESULT {json}` on stdout. The runner
 * (bench/run-all.ts) reads those lines from every benchmark it starts and prints one table:
 * measure, goal, measured, baseline, ratio, met or not.
 *
 * A figure is measured against a baseline taken in the same run (machines here are noisy), so
 * `baseline` and `ratio` are filled whenever the benchmark has one; `met` is decided by the
 * benchmark that knows what its goal means (`null` when the measure has no goal, only a figure).
 */

export interface BenchMeasure {
  /** What is measured, e.g. "policy: decision at 100k rules, uniform". */
  measure: string;
  /** The goal in words, e.g. "<= 2x the 100-rule cost"; '' when there is none. */
  goal: string;
  /** The figure with its unit, e.g. "742 ns". */
  measured: string;
  /** The same-run baseline with its unit, e.g. "612 ns (100 rules)"; '' when there is none. */
  baseline: string;
  /** measured / baseline as printed, e.g. "1.21x"; '' when there is no baseline. */
  ratio: string;
  /** Whether the goal is met; null when the measure has no goal. */
  met: boolean | null;
}

export const BENCH_RESULT_PREFIX = 'BENCH-RESULT ';

/** Prints one result line for the runner's table (and leaves the human output as it is). */
export function reportMeasure(measure: BenchMeasure): void {
  process.stdout.write(`${BENCH_RESULT_PREFIX}${JSON.stringify(measure)}\n`);
}

/** Formats a ratio the same way in every benchmark. */
export function formatRatio(measured: number, baseline: number): string {
  if (!Number.isFinite(measured) || !Number.isFinite(baseline) || baseline === 0) return '';
  return `${(measured / baseline).toFixed(2)}x`;
}

/** The median of a list of figures (the upper one of an even count). */
export function median(xs: readonly number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
}
