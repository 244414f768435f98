/**
 * The live log: new items on top. Items are queued as they arrive and handed
 * to the LogView once per animation frame, which keeps the newest 500 and
 * puts only the visible rows in the DOM, so 10,000 items a second cost one
 * redraw of a few dozen rows per frame. Filters apply to live items and to
 * history search.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, errorText, type LogItem } from '../api.js';
import { useEngine } from '../context.js';
import { CELLS, LogView, MAX_ITEMS as MAX_ROWS } from '../log-view.js';

interface Filters {
  kind: string;
  verdict: string;
  application: string;
  address: string;
  text: string;
}
const NO_FILTERS: Filters = { kind: '', verdict: '', application: '', address: '', text: '' };

const hostOf = (end?: string) => end?.replace(/^\[(.*)\](:\d+)?$/, '$1').replace(/^([^:]+):\d+$/, '$1');

function matches(i: LogItem, f: Filters): boolean {
  if (f.kind && i.kind !== f.kind) return false;
  if (f.verdict && i.verdict !== f.verdict) return false;
  if (f.application && i.application !== f.application) return false;
  if (f.address && hostOf(i.local) !== f.address && hostOf(i.remote) !== f.address) return false;
  if (f.text) {
    const t = [i.message, i.application, i.host, i.rule, i.remote].join(' ').toLowerCase();
    if (!t.includes(f.text.toLowerCase())) return false;
  }
  return true;
}

export function LiveLog() {
  const ctx = useEngine();
  const box = useRef<HTMLDivElement>(null);
  const counts = useRef<HTMLParagraphElement>(null);
  const view = useRef<LogView | null>(null);
  const [filters, setFilters] = useState<Filters>(NO_FILTERS);
  const [paused, setPaused] = useState(false);
  const [error, setError] = useState('');
  const state = useRef({
    queue: [] as LogItem[],
    paused: false,
    filters: NO_FILTERS,
    received: 0,
    dropped: 0,
    redraw: () => {},
    /** While the first stored items load, live items wait in the queue. */
    loading: true,
  });

  useEffect(() => {
    const s = state.current;
    // ?render=each (the benchmark's baseline): draw every item as it arrives instead of once per frame.
    const eachItem = new URLSearchParams(location.search).get('render') === 'each';
    const v = new LogView(box.current!);
    view.current = v;
    let frame = 0;
    // Counts are written straight into the DOM: a Preact render per frame would cost more than the rows.
    const showCounts = () => {
      if (!counts.current) return;
      counts.current.textContent =
        `${s.received} received, ${v.size} kept, ${v.rowsInDom} rows drawn` +
        (s.dropped > 0 ? `, ${s.dropped} skipped live (too fast; search history for them)` : '') +
        (s.paused ? ' — paused' : '');
    };
    const draw = () => {
      frame = 0;
      if (s.paused || s.loading) return showCounts();
      const q = s.queue;
      s.queue = [];
      v.add(q);
      showCounts();
    };
    s.redraw = draw;
    // Start with the newest stored items, so the page is not empty until the next connection.
    const backfill = async () => {
      const { lastLogSeq } = await ctx.call<{ lastLogSeq: number }>('engine.status');
      if (lastLogSeq === 0) return;
      const r = await ctx.call<{ items: LogItem[] }>('logs.query', {
        fromSeq: Math.max(1, lastLogSeq - 99),
        limit: 100,
      });
      const newest = r.items[r.items.length - 1]?.seq ?? 0;
      v.replace(r.items.filter((i) => matches(i, s.filters)));
      s.queue = s.queue.filter((i) => i.seq > newest);
    };
    backfill()
      .catch(() => {})
      .finally(() => {
        s.loading = false;
        draw();
      });
    const off = api.onPush((p) => {
      if (p.push !== 'log' || p.engine !== ctx.engine) return;
      s.received += p.items.length;
      s.dropped += p.dropped;
      for (const i of p.items) {
        if (!matches(i, s.filters)) continue;
        s.queue.push(i);
        if (eachItem) draw();
      }
      // While paused, keep only what could be shown on resume.
      if (s.queue.length > 4 * MAX_ROWS) s.queue = s.queue.slice(-MAX_ROWS);
      if (!frame && !eachItem) frame = requestAnimationFrame(draw);
    });
    return () => {
      off();
      if (frame) cancelAnimationFrame(frame);
    };
  }, [ctx.engine]);

  const setFilter = (k: keyof Filters, v: string) => {
    const f = { ...filters, [k]: v };
    setFilters(f);
    state.current.filters = f;
  };
  const togglePause = () => {
    state.current.paused = !paused;
    setPaused(!paused);
    requestAnimationFrame(() => state.current.redraw());
  };
  /** Replaces the rows with the newest stored items that match the filters; live items continue on top. */
  const searchHistory = async (e: Event) => {
    e.preventDefault();
    setError('');
    const q: Record<string, unknown> = { limit: MAX_ROWS };
    for (const [k, v] of Object.entries(filters)) if (v) q[k] = v;
    try {
      const status = await ctx.call<{ lastLogSeq: number }>('engine.status');
      // logs.query returns oldest first: start far enough back to fill the table, then page forward.
      let from = Math.max(1, status.lastLogSeq - 20 * MAX_ROWS);
      const found: LogItem[] = [];
      for (let page = 0; page < 20; page++) {
        const r = await ctx.call<{ items: LogItem[]; searchedTo?: number }>('logs.query', {
          ...q,
          fromSeq: from,
          limit: 10_000,
        });
        found.push(...r.items);
        // searchedTo: a text search stopped at the engine's work budget; go on after it.
        if (r.searchedTo !== undefined) from = r.searchedTo + 1;
        else if (r.items.length < 10_000) break;
        else from = r.items[r.items.length - 1]!.seq + 1;
      }
      view.current?.replace(found);
    } catch (x) {
      setError(errorText(x));
    }
  };

  const text = (k: keyof Filters, label: string, placeholder = '') => (
    <label>
      {label}{' '}
      <input
        name={k}
        value={filters[k]}
        placeholder={placeholder}
        onInput={(e) => setFilter(k, e.currentTarget.value)}
      />
    </label>
  );
  return (
    <>
      <h1>Live log</h1>
      <form class="row filters" onSubmit={searchHistory} aria-label="log filters">
        <label>
          Kind{' '}
          <select name="kind" value={filters.kind} onChange={(e) => setFilter('kind', e.currentTarget.value)}>
            <option value="">any</option>
            {['connection', 'security', 'admin', 'system'].map((k) => (
              <option key={k}>{k}</option>
            ))}
          </select>
        </label>
        <label>
          Verdict{' '}
          <select
            name="verdict"
            value={filters.verdict}
            onChange={(e) => setFilter('verdict', e.currentTarget.value)}
          >
            <option value="">any</option>
            {['allow', 'deny', 'reject', 'ask'].map((k) => (
              <option key={k}>{k}</option>
            ))}
          </select>
        </label>
        {text('application', 'Application', '/usr/bin/curl')}
        {text('address', 'Address', '192.0.2.1')}
        {text('text', 'Text')}
        <button type="submit">Search history</button>
        <button type="button" onClick={togglePause} aria-pressed={paused}>
          {paused ? 'Resume' : 'Pause'}
        </button>
        <button type="button" onClick={() => view.current?.replace([])}>
          Clear
        </button>
      </form>
      <p class="muted" data-testid="log-counts" ref={counts} aria-live="off">
        0 received
      </p>
      {error && <p class="error">{error}</p>}
      <section class="log-table" aria-label="log items, newest first">
        <div class="log-head" aria-hidden="true">
          {CELLS.map((c) => (
            <span key={c}>{c}</span>
          ))}
        </div>
        {/* biome-ignore lint/a11y/noNoninteractiveTabindex: the log scrolls with the keyboard */}
        <div class="log-scroll" ref={box} tabIndex={0} />
      </section>
    </>
  );
}
