/**
 * The live log: new items on top. Items are queued as they arrive and handed
 * to the LogView once per animation frame, which keeps the newest 500 and
 * puts only the visible rows in the DOM, so 10,000 items a second cost one
 * redraw of a few dozen rows per frame. The filters apply to everything shown:
 * the items already on the page, the stored history (searched again when a
 * filter changes) and live items as they arrive. Each item is one row (by
 * seq), however it came. A row opens its details.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, errorText, type LogItem } from '../api.js';
import { useEngine } from '../context.js';
import { COLUMNS, LogView, MAX_ITEMS as MAX_ROWS } from '../log-view.js';
import { LogDetails } from './log-details.js';

export interface Filters {
  kind: string;
  verdict: string;
  application: string;
  address: string;
  text: string;
}
const NO_FILTERS: Filters = { kind: '', verdict: '', application: '', address: '', text: '' };
/** Items kept to filter again without asking the engine (the rows show the newest 500 that match). */
const STORE_MAX = 4 * MAX_ROWS;
const FILTERS_KEY = 'warden-log-filters';

const hostOf = (end?: string) => end?.replace(/^\[(.*)\](:\d+)?$/, '$1').replace(/^([^:]+):\d+$/, '$1');

export function matches(i: LogItem, f: Filters): boolean {
  if (f.kind && i.kind !== f.kind) return false;
  if (f.verdict && i.verdict !== f.verdict) return false;
  if (f.application && i.application !== f.application) return false;
  if (f.address && hostOf(i.local) !== f.address && hostOf(i.remote ?? i.source) !== f.address) return false;
  if (f.text) {
    const t = [i.message, i.application, i.host, i.rule, i.remote].join(' ').toLowerCase();
    if (!t.includes(f.text.toLowerCase())) return false;
  }
  return true;
}

const anyFilter = (f: Filters) => Object.values(f).some((v) => v !== '');

function savedFilters(): Filters {
  try {
    return { ...NO_FILTERS, ...JSON.parse(sessionStorage.getItem(FILTERS_KEY) ?? '{}') };
  } catch {
    return NO_FILTERS;
  }
}

/**
 * The newest stored items that match the filters (at most `want`): logs.query answers oldest
 * first, so start far enough back and page forward (searchedTo: a search stopped at its budget).
 */
export async function searchStored(
  call: <T>(method: string, params?: Record<string, unknown>) => Promise<T>,
  filters: Partial<Filters> & { since?: string },
  want = MAX_ROWS,
): Promise<LogItem[]> {
  const q: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(filters)) if (v) q[k] = v;
  const status = await call<{ lastLogSeq: number }>('engine.status');
  if (status.lastLogSeq === 0) return [];
  let from = Math.max(1, status.lastLogSeq - 20 * want);
  const found: LogItem[] = [];
  for (let page = 0; page < 20; page++) {
    const r = await call<{ items: LogItem[]; searchedTo?: number }>('logs.query', {
      ...q,
      fromSeq: from,
      limit: 10_000,
    });
    found.push(...r.items);
    if (r.searchedTo !== undefined) from = r.searchedTo + 1;
    else if (r.items.length < 10_000) break;
    else from = r.items[r.items.length - 1]!.seq + 1;
  }
  return found.slice(-want);
}

export function LiveLog() {
  const ctx = useEngine();
  const box = useRef<HTMLDivElement>(null);
  const counts = useRef<HTMLParagraphElement>(null);
  const view = useRef<LogView | null>(null);
  const [filters, setFilters] = useState<Filters>(savedFilters);
  const [paused, setPaused] = useState(false);
  const [error, setError] = useState('');
  const [searching, setSearching] = useState(false);
  const [selected, setSelected] = useState<LogItem>();
  const state = useRef({
    queue: [] as LogItem[],
    /** Every item the page has (live and stored), by seq, to filter again at once. */
    store: new Map<number, LogItem>(),
    paused: false,
    filters: savedFilters(),
    received: 0,
    dropped: 0,
    redraw: () => {},
    /** Incremented by every new search: an older search's answer is dropped. */
    search: 0,
    /** While the first stored items load, live items wait in the queue. */
    loading: true,
  });

  const keep = (items: LogItem[]) => {
    const s = state.current;
    for (const i of items) s.store.set(i.seq, i);
    if (s.store.size > STORE_MAX) {
      const seqs = [...s.store.keys()].sort((a, b) => a - b);
      for (const seq of seqs.slice(0, s.store.size - STORE_MAX)) s.store.delete(seq);
    }
  };

  /** Shows what the filters let through of what the page has, then adds the stored items that match. */
  const applyFilters = async (f: Filters) => {
    const s = state.current;
    const v = view.current;
    if (!v) return;
    const run = ++s.search;
    s.queue = s.queue.filter((i) => matches(i, f));
    v.replace([...s.store.values()].filter((i) => matches(i, f)));
    s.redraw();
    if (!anyFilter(f)) return;
    setSearching(true);
    setError('');
    try {
      const found = await searchStored(ctx.call, f);
      if (run !== s.search) return;
      keep(found);
      // Live items that arrived meanwhile are in the view already; the merge keeps each seq once.
      v.replace([...v.items, ...found]);
      s.redraw();
    } catch (x) {
      if (run === s.search) setError(errorText(x));
    } finally {
      if (run === s.search) setSearching(false);
    }
  };

  useEffect(() => {
    const s = state.current;
    // ?render=each (the benchmark's baseline): draw every item as it arrives instead of once per frame.
    const eachItem = new URLSearchParams(location.search).get('render') === 'each';
    const v = new LogView(box.current!, (item) => {
      setSelected(item);
      v.select(item.seq);
    });
    view.current = v;
    let frame = 0;
    // Counts are written straight into the DOM: a Preact render per frame would cost more than the rows.
    const showCounts = () => {
      const el = counts.current;
      if (!el) return;
      el.dataset.received = String(s.received);
      el.dataset.skipped = String(s.dropped);
      const filtered = anyFilter(s.filters);
      el.textContent =
        `${v.size === 0 ? 'No items' : `${v.size} item${v.size === 1 ? '' : 's'}`}${filtered ? ' that match the filters' : ''}, newest first` +
        ` (at most ${MAX_ROWS}); ${s.received} new since this page opened.` +
        (s.dropped > 0
          ? ` ${s.dropped} came too fast to show live: they are stored, change a filter to search them.`
          : '') +
        (s.paused ? ` Paused: ${s.queue.length} new waiting.` : '');
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
      const items = await searchStored(ctx.call, {}, 100);
      keep(items);
      v.replace(items.filter((i) => matches(i, s.filters)));
    };
    backfill()
      .catch(() => {})
      .finally(() => {
        s.loading = false;
        if (anyFilter(s.filters)) void applyFilters(s.filters);
        draw();
      });
    const off = api.onPush((p) => {
      if (p.push !== 'log' || p.engine !== ctx.engine) return;
      s.received += p.items.length;
      s.dropped += p.dropped;
      keep(p.items);
      for (const i of p.items) {
        if (!matches(i, s.filters)) continue;
        s.queue.push(i);
        if (eachItem) draw();
      }
      // While paused, keep only what could be shown on resume.
      if (s.queue.length > 4 * MAX_ROWS) s.queue = s.queue.slice(-MAX_ROWS);
      if (!frame && !eachItem) frame = requestAnimationFrame(draw);
    });
    // Back after a lost connection or an engine restart: read what was stored meanwhile.
    const onResumed = () => {
      let newest = 0;
      for (const seq of s.store.keys()) if (seq > newest) newest = seq;
      if (newest === 0) return;
      ctx.call<{ items: LogItem[] }>('logs.query', { fromSeq: newest + 1, limit: 10_000 }).then(
        (r) => {
          keep(r.items);
          s.queue.push(...r.items.filter((i) => matches(i, s.filters)));
          if (!frame) frame = requestAnimationFrame(draw);
        },
        () => {},
      );
    };
    addEventListener('warden:resumed', onResumed);
    return () => {
      off();
      removeEventListener('warden:resumed', onResumed);
      if (frame) cancelAnimationFrame(frame);
    };
  }, [ctx.engine]);

  // A filter change applies after typing pauses (select changes at once).
  const timer = useRef<number>(0);
  const setFilter = (k: keyof Filters, value: string, wait = 300) => {
    const f = { ...filters, [k]: value };
    setFilters(f);
    state.current.filters = f;
    try {
      sessionStorage.setItem(FILTERS_KEY, JSON.stringify(f));
    } catch {
      // not kept over a reload then
    }
    clearTimeout(timer.current);
    timer.current = window.setTimeout(() => void applyFilters(f), wait);
  };
  const togglePause = () => {
    state.current.paused = !paused;
    setPaused(!paused);
    requestAnimationFrame(() => state.current.redraw());
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
  const choice = (k: keyof Filters, label: string, options: string[]) => (
    <label>
      {label}{' '}
      <select name={k} value={filters[k]} onChange={(e) => setFilter(k, e.currentTarget.value, 0)}>
        <option value="">any</option>
        {options.map((o) => (
          <option key={o}>{o}</option>
        ))}
      </select>
    </label>
  );
  return (
    <>
      <h1>Live log</h1>
      <form
        class="row filters"
        onSubmit={(e) => {
          e.preventDefault();
          clearTimeout(timer.current);
          void applyFilters(filters);
        }}
        aria-label="log filters"
      >
        {choice('kind', 'Kind', ['connection', 'security', 'admin', 'system'])}
        {choice('verdict', 'Verdict', ['allow', 'deny', 'reject', 'ask'])}
        {text('application', 'Application', '/usr/bin/curl')}
        {text('address', 'Address', '192.0.2.1')}
        {text('text', 'Text')}
        <button type="submit" disabled={searching}>
          {searching ? 'Searching…' : 'Search history'}
        </button>
        <button type="button" onClick={togglePause} aria-pressed={paused}>
          {paused ? 'Resume' : 'Pause'}
        </button>
        <button
          type="button"
          disabled={!anyFilter(filters)}
          onClick={() => {
            setFilters(NO_FILTERS);
            state.current.filters = NO_FILTERS;
            sessionStorage.removeItem(FILTERS_KEY);
            void applyFilters(NO_FILTERS);
          }}
        >
          Clear filters
        </button>
      </form>
      <p class="muted" data-testid="log-counts" ref={counts} aria-live="off">
        No items yet.
      </p>
      {error && <p class="error">{error}</p>}
      <div class={selected ? 'log-layout with-details' : 'log-layout'}>
        <section class="log-table" aria-label="log items, newest first; a row opens its details">
          <div class="log-head" aria-hidden="true">
            {COLUMNS.map((c) => (
              <span key={c.id} class={`c-${c.id}`}>
                {c.label}
              </span>
            ))}
          </div>
          {/* biome-ignore lint/a11y/noNoninteractiveTabindex: the log scrolls with the keyboard */}
          <div class="log-scroll" ref={box} tabIndex={0} />
        </section>
        {selected && (
          <LogDetails
            item={selected}
            onClose={() => {
              setSelected(undefined);
              view.current?.select(0);
            }}
          />
        )}
      </div>
    </>
  );
}
