/**
 * The engine's metrics in the Prometheus text exposition format 0.0.4: counters, gauges read at scrape
 * time, and histograms. Deliberately small rather than prom-client: the hot paths (a packet judged, a log
 * item pushed) only add to a number field — no label lookup, no allocation — and the few fixed metrics
 * need nothing else. Rendering happens at scrape time only.
 */

/** A count that only goes up. */
export class Counter {
  value = 0;
  inc(n = 1): void {
    this.value += n;
  }
}

/** Buckets (upper bounds, seconds) and the running sum and count of what was observed. */
export class Histogram {
  readonly bounds: readonly number[];
  /** counts[i]: observations in (bounds[i-1], bounds[i]]; the last slot: above every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[]) {
    this.bounds = [...bounds].sort((a, b) => a - b);
    this.counts = new Float64Array(this.bounds.length + 1);
  }

  observe(value: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

type Labels = Readonly<Record<string, string>>;
type Sample = { labels?: Labels; value: number | (() => number) };
type Family =
  | { kind: 'counter' | 'gauge'; name: string; help: string; samples: Sample[] }
  | { kind: 'histogram'; name: string; help: string; histogram: Histogram };

const escapeHelp = (s: string) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const escapeLabel = (s: string) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const formatLabels = (labels: Labels | undefined, extra?: [string, string]) => {
  const pairs = Object.entries(labels ?? {});
  if (extra) pairs.push(extra);
  return pairs.length === 0 ? '' : `{${pairs.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}`;
};
const formatNumber = (n: number) =>
  Number.isNaN(n) ? 'NaN' : n === Infinity ? '+Inf' : n === -Infinity ? '-Inf' : String(n);

/** Metric families by name, rendered in registration order. */
export class MetricsRegistry {
  readonly #families = new Map<string, Family>();

  /** A counter; with `labels`, one more series of the family `name`. */
  counter(name: string, help: string, labels?: Labels): Counter {
    const c = new Counter();
    this.#sample('counter', name, help, { ...(labels ? { labels } : {}), value: () => c.value });
    return c;
  }

  /** A gauge whose value is read when scraped. */
  gauge(name: string, help: string, read: () => number, labels?: Labels): void {
    this.#sample('gauge', name, help, { ...(labels ? { labels } : {}), value: read });
  }

  /** A counter whose value is read when scraped (a total kept elsewhere). */
  counterFrom(name: string, help: string, read: () => number): void {
    this.#sample('counter', name, help, { value: read });
  }

  histogram(name: string, help: string, bounds: readonly number[]): Histogram {
    if (this.#families.has(name)) throw new Error(`metric ${name} is registered already`);
    const histogram = new Histogram(bounds);
    this.#families.set(name, { kind: 'histogram', name, help, histogram });
    return histogram;
  }

  /** The text exposition format 0.0.4 (Content-Type: text/plain; version=0.0.4). */
  render(): string {
    const out: string[] = [];
    for (const f of this.#families.values()) {
      out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.kind}`);
      if (f.kind === 'histogram') {
        const h = f.histogram;
        let cumulative = 0;
        h.bounds.forEach((b, i) => {
          cumulative += h.counts[i]!;
          out.push(`${f.name}_bucket${formatLabels(undefined, ['le', formatNumber(b)])} ${cumulative}`);
        });
        out.push(
          `${f.name}_bucket{le="+Inf"} ${h.count}`,
          `${f.name}_sum ${h.sum}`,
          `${f.name}_count ${h.count}`,
        );
        continue;
      }
      for (const s of f.samples) {
        const v = typeof s.value === 'function' ? s.value() : s.value;
        out.push(`${f.name}${formatLabels(s.labels)} ${formatNumber(v)}`);
      }
    }
    return `${out.join('\n')}\n`;
  }

  #sample(kind: 'counter' | 'gauge', name: string, help: string, sample: Sample): void {
    const f = this.#families.get(name);
    if (f === undefined) this.#families.set(name, { kind, name, help, samples: [sample] });
    else if (f.kind === kind) f.samples.push(sample);
    else throw new Error(`metric ${name} is registered as a ${f.kind}`);
  }
}
