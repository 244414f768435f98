/**
 * A stacked bar chart over time in plain SVG: a time axis under it (clock times), a scale beside it
 * (0, half, a round top) and a tooltip for the bar under the pointer or the keyboard focus.
 */
import { useState } from 'preact/hooks';

export interface Column {
  /** Start of the column's time span (ms since the epoch). */
  start: number;
  counts: Record<string, number>;
}

/** The smallest of 2, 5, 10, 20, 50 ... that is at least n (so that half of it is a whole number too). */
function roundUp(n: number): number {
  if (n <= 2) return 2;
  const p = 10 ** Math.floor(Math.log10(n));
  return [1, 2, 5, 10].map((m) => m * p).find((v) => v >= n)!;
}

const clock = (t: number) => new Date(t).toTimeString().slice(0, 5);

export function TimeChart(props: {
  columns: Column[];
  keys: readonly string[];
  /** Width of a column's span in ms (the tooltip says "14:05-14:06"). */
  spanMs: number;
  /** A label every this many columns. */
  labelEvery: number;
  /** "decisions per minute" and the like, for the scale and screen readers. */
  unit: string;
}) {
  const { columns, keys } = props;
  const [hover, setHover] = useState<number>();
  const totals = columns.map((c) => keys.reduce((n, k) => n + (c.counts[k] ?? 0), 0));
  const top = roundUp(Math.max(1, ...totals));
  const n = columns.length;
  const h = 100;
  const at = (x: number) => `${(x / n) * 100}%`;
  const shown = hover === undefined ? undefined : columns[hover];
  return (
    <figure class="tchart">
      <div class="tchart-scale" aria-hidden="true">
        <span style={{ top: '0%' }}>{top}</span>
        <span style={{ top: '50%' }}>{top / 2}</span>
        <span style={{ top: '100%' }}>0</span>
      </div>
      <div
        class="tchart-plot"
        onMouseMove={(e) => {
          const r = (e.currentTarget as HTMLElement).getBoundingClientRect();
          setHover(Math.max(0, Math.min(n - 1, Math.floor(((e.clientX - r.left) / r.width) * n))));
        }}
        onMouseLeave={() => setHover(undefined)}
        role="slider"
        aria-label={`${props.unit}; arrow keys step through the bars`}
        aria-valuemin={0}
        aria-valuemax={n - 1}
        aria-valuenow={hover ?? n - 1}
        aria-valuetext={
          shown ? `${clock(shown.start)}: ${keys.map((k) => `${shown.counts[k] ?? 0} ${k}`).join(', ')}` : ''
        }
        tabIndex={0}
        onFocus={() => setHover((h) => h ?? n - 1)}
        onBlur={() => setHover(undefined)}
        onKeyDown={(e) => {
          const step = e.key === 'ArrowLeft' ? -1 : e.key === 'ArrowRight' ? 1 : 0;
          if (step === 0) return;
          e.preventDefault();
          setHover((h) => Math.max(0, Math.min(n - 1, (h ?? n - 1) + step)));
        }}
      >
        <svg
          viewBox={`0 0 ${n * 10} ${h}`}
          preserveAspectRatio="none"
          role="img"
          aria-label={`${props.unit}: highest ${Math.max(0, ...totals)}`}
        >
          {[0, 0.5].map((f) => (
            <line key={f} x1={0} x2={n * 10} y1={f * h} y2={f * h} class="grid-line" />
          ))}
          {columns.map((c, k) => {
            let y = h;
            return (
              <g key={c.start} class={hover === k ? 'hover' : ''}>
                <title>
                  {clock(c.start)}: {keys.map((key) => `${c.counts[key] ?? 0} ${key}`).join(', ')}
                </title>
                {keys.map((key) => {
                  const bh = ((c.counts[key] ?? 0) / top) * h;
                  y -= bh;
                  return bh > 0 ? (
                    <rect key={key} x={k * 10 + 1} y={y} width={8} height={bh} class={`f-${key}`} />
                  ) : null;
                })}
              </g>
            );
          })}
        </svg>
        {shown && hover !== undefined && (
          <div
            class="tchart-tip"
            role="status"
            data-testid="chart-tip"
            style={{ left: at(hover + 0.5), transform: `translateX(${hover > n / 2 ? '-100%' : '0'})` }}
          >
            <strong>
              {clock(shown.start)}–{clock(shown.start + props.spanMs)}
            </strong>
            {keys.map((key) => (
              <span key={key} class={`v-${key}`}>
                {shown.counts[key] ?? 0} {key}
              </span>
            ))}
          </div>
        )}
      </div>
      <div class="tchart-axis" aria-hidden="true">
        {columns.map((c, k) =>
          k % props.labelEvery === 0 ? (
            <span key={c.start} style={{ left: at(k) }}>
              {clock(c.start)}
            </span>
          ) : null,
        )}
      </div>
      <figcaption class="muted">
        {props.unit}; the scale goes to {top}. Point at a bar for its numbers.
      </figcaption>
    </figure>
  );
}
