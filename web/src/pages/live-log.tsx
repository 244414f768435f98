/**
 * The live log: new items on top, at most MAX_ROWS rows in the DOM. Items are
 * queued as they arrive and drawn once per animation frame (only the newest
 * MAX_ROWS of a burst are drawn at all), so 10,000 items a second cost a few
 * row insertions per frame. Filters apply to live items and to history search.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, errorText, type LogItem } from '../api.js';
import { useEngine } from '../context.js';

export const MAX_ROWS = 500;

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

const CELLS = ['seq', 'time', 'kind', 'verdict', 'application', 'remote', 'rule', 'message'] as const;

function rowOf(i: LogItem): HTMLTableRowElement {
  const tr = document.createElement('tr');
  if (i.verdict) tr.className = `v-${i.verdict}`;
  for (const c of CELLS) {
    const td = document.createElement('td');
    const v = c === 'time' ? i.time.slice(11, 23) : c === 'remote' ? (i.host ?? i.remote) : i[c];
    td.textContent = v === undefined ? '' : String(v);
    tr.appendChild(td);
  }
  return tr;
}

/** Draws queued items into `body`, newest first, keeping at most MAX_ROWS rows. */
export function drawRows(body: HTMLElement, items: LogItem[]): void {
  const start = Math.max(0, items.length - MAX_ROWS);
  const frag = document.createDocumentFragment();
  for (let k = items.length - 1; k >= start; k--) frag.appendChild(rowOf(items[k]!));
  body.insertBefore(frag, body.firstChild);
  while (body.childElementCount > MAX_ROWS) body.lastElementChild!.remove();
}

export function LiveLog() {
  const ctx = useEngine();
  const body = useRef<HTMLTableSectionElement>(null);
  const [filters, setFilters] = useState<Filters>(NO_FILTERS);
  const [paused, setPaused] = useState(false);
  const [count, setCount] = useState({ received: 0, shown: 0, dropped: 0 });
  const [error, setError] = useState('');
  const state = useRef({
    queue: [] as LogItem[],
    paused: false,
    filters: NO_FILTERS,
    received: 0,
    dropped: 0,
  });

  useEffect(() => {
    const s = state.current;
    // ?render=each (benchmark baseline): draw every message at once instead of once per frame.
    const eachMessage = new URLSearchParams(location.search).get('render') === 'each';
    let frame = 0;
    const draw = () => {
      frame = 0;
      if (s.paused || !body.current) return;
      const q = s.queue;
      s.queue = [];
      drawRows(body.current, q);
      setCount({ received: s.received, shown: body.current.childElementCount, dropped: s.dropped });
    };
    const off = api.onPush((p) => {
      if (p.push !== 'log' || p.engine !== ctx.engine) return;
      s.received += p.items.length;
      s.dropped += p.dropped;
      for (const i of p.items) if (matches(i, s.filters)) s.queue.push(i);
      // While paused, keep only what could be shown on resume.
      if (s.queue.length > 4 * MAX_ROWS) s.queue = s.queue.slice(-MAX_ROWS);
      if (eachMessage) draw();
      else if (!frame) frame = requestAnimationFrame(draw);
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
    if (paused)
      requestAnimationFrame(() => body.current && drawRows(body.current, state.current.queue.splice(0)));
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
        const r = await ctx.call<{ items: LogItem[] }>('logs.query', { ...q, fromSeq: from, limit: 10_000 });
        found.push(...r.items);
        if (r.items.length < 10_000) break;
        from = r.items[r.items.length - 1]!.seq + 1;
      }
      if (body.current) {
        body.current.replaceChildren();
        drawRows(body.current, found.slice(-MAX_ROWS));
        setCount((c) => ({ ...c, shown: body.current!.childElementCount }));
      }
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
        <button type="button" onClick={() => body.current?.replaceChildren()}>
          Clear
        </button>
      </form>
      <p class="muted" data-testid="log-counts">
        {count.received} received, {count.shown} shown (at most {MAX_ROWS})
        {count.dropped > 0 && `, ${count.dropped} skipped live (too fast; search history for them)`}
        {paused && ' — paused'}
      </p>
      {error && <p class="error">{error}</p>}
      <div class="scroll">
        <table class="log">
          <thead>
            <tr>
              {CELLS.map((c) => (
                <th key={c} scope="col">
                  {c}
                </th>
              ))}
            </tr>
          </thead>
          <tbody ref={body} data-testid="log-rows" />
        </table>
      </div>
    </>
  );
}
