/**
 * The live log's rows, drawn without a framework: the newest MAX_ITEMS items
 * are kept in memory and only the rows that fit the scroll box (plus a few)
 * exist in the DOM, a fixed pool of row elements whose text is replaced. A
 * frame with new items therefore costs a few hundred text updates in a
 * size-contained box, however many items arrived. Items are kept once each
 * (by seq): an item that comes both from history and live is one row.
 */
import type { LogItem } from './api.js';

/** Items kept for scrolling back (the DOM holds only the visible rows). */
export const MAX_ITEMS = 500;
export const ROW_PX = 22;

/** The columns: heading, and the text of an item in it. */
export const COLUMNS: readonly { id: string; label: string; text: (i: LogItem) => string }[] = [
  { id: 'time', label: 'Time', text: (i) => i.time.slice(11, 19) },
  { id: 'verdict', label: 'Verdict', text: (i) => i.verdict ?? i.kind },
  {
    id: 'direction',
    label: 'Dir',
    text: (i) => (i.direction === 'incoming' ? 'in' : i.direction ? 'out' : ''),
  },
  { id: 'protocol', label: 'Proto', text: (i) => i.protocol ?? '' },
  { id: 'application', label: 'Application', text: (i) => baseName(i.application) },
  { id: 'user', label: 'User', text: (i) => i.user ?? '' },
  { id: 'remote', label: 'Remote host and port', text: (i) => remoteText(i) },
  { id: 'rule', label: 'Rule', text: (i) => i.rule ?? '' },
  {
    id: 'message',
    label: 'Message',
    text: (i) => (i.count && i.count > 1 ? `x${i.count}  ${i.message}` : i.message),
  },
];

export function baseName(path?: string): string {
  return path === undefined ? '' : path.slice(path.lastIndexOf('/') + 1) || path;
}

/** "[v6]:port" or "v4:port" -> { address, port }. */
export function splitEnd(end?: string): { address?: string; port?: number } {
  if (end === undefined) return {};
  const m = /^\[(.*)\]:(\d+)$/.exec(end) ?? /^([^:]+):(\d+)$/.exec(end);
  return m ? { address: m[1]!, port: Number(m[2]) } : { address: end.replace(/^\[(.*)\]$/, '$1') };
}

/** The remote end as a person reads it: the first host name known for it, else its address; then the port. */
export function remoteText(i: LogItem): string {
  const { address, port } = splitEnd(i.remote ?? i.source);
  const name = i.host?.split(',')[0]?.trim() || address;
  if (name === undefined) return '';
  return port === undefined ? name : `${name.includes(':') ? `[${name}]` : name}:${port}`;
}

export class LogView {
  /** Newest first. */
  #items: LogItem[] = [];
  readonly #seqs = new Set<number>();
  readonly #scroll: HTMLElement;
  readonly #spacer: HTMLElement;
  readonly #rows: HTMLElement;
  readonly #pool: HTMLElement[] = [];
  #first = 0;
  #selected = 0;

  /** `open` is called with the item of a row that was clicked (or chosen with Enter). */
  constructor(scroll: HTMLElement, open: (item: LogItem) => void) {
    this.#scroll = scroll;
    this.#spacer = document.createElement('div');
    this.#rows = document.createElement('div');
    this.#rows.className = 'log-rows';
    this.#rows.dataset.testid = 'log-rows';
    this.#spacer.appendChild(this.#rows);
    scroll.replaceChildren(this.#spacer);
    scroll.addEventListener('scroll', () => this.draw(), { passive: true });
    const itemOf = (target: EventTarget | null) => {
      const row = (target as HTMLElement | null)?.closest?.('.log-row') as HTMLElement | null;
      const k = row ? this.#pool.indexOf(row) : -1;
      return k < 0 ? undefined : this.#items[this.#first + k];
    };
    this.#rows.addEventListener('click', (e) => {
      const item = itemOf(e.target);
      if (item) open(item);
    });
    this.#rows.addEventListener('keydown', (e) => {
      if (e.key !== 'Enter' && e.key !== ' ') return;
      const item = itemOf(e.target);
      if (item) {
        e.preventDefault();
        open(item);
      }
    });
  }

  get size(): number {
    return this.#items.length;
  }

  /** The items kept, newest first. */
  get items(): readonly LogItem[] {
    return this.#items;
  }

  /** Marks the row of an item as the one whose details are open. */
  select(seq: number): void {
    this.#selected = seq;
    this.draw();
  }

  /** Adds new items (oldest first, as they arrive); a reader scrolled down keeps looking at the same rows. */
  add(items: LogItem[]): void {
    const fresh = items.filter((i) => !this.#seqs.has(i.seq));
    if (fresh.length === 0) return;
    const newest = this.#items[0]?.seq ?? 0;
    if (fresh.some((i) => i.seq < newest)) {
      this.replace([...this.#items, ...fresh]); // older items (read back after a gap) go in their place
      return;
    }
    const kept = fresh.length > MAX_ITEMS ? fresh.slice(-MAX_ITEMS) : fresh;
    for (const i of kept) this.#seqs.add(i.seq);
    this.#items = kept.reverse().concat(this.#items);
    this.#trim();
    // The new items went in above what the reader looks at.
    if (this.#scroll.scrollTop > 0) this.#scroll.scrollTop += kept.length * ROW_PX;
    this.draw();
  }

  /** Replaces every item (any order; each seq once, newest first). */
  replace(items: readonly LogItem[]): void {
    const bySeq = new Map<number, LogItem>();
    for (const i of items) bySeq.set(i.seq, i);
    this.#items = [...bySeq.values()].sort((a, b) => b.seq - a.seq);
    this.#seqs.clear();
    this.#trim();
    for (const i of this.#items) this.#seqs.add(i.seq);
    this.#scroll.scrollTop = 0;
    this.draw();
  }

  #trim(): void {
    if (this.#items.length <= MAX_ITEMS) return;
    for (const i of this.#items.slice(MAX_ITEMS)) this.#seqs.delete(i.seq);
    this.#items.length = MAX_ITEMS;
  }

  /** Puts the visible items into the row pool. */
  draw(): void {
    const total = this.#items.length;
    this.#spacer.style.height = `${total * ROW_PX}px`;
    const first = Math.min(Math.floor(this.#scroll.scrollTop / ROW_PX), Math.max(0, total - 1));
    this.#first = first;
    const count = Math.min(total - first, Math.ceil(this.#scroll.clientHeight / ROW_PX) + 2);
    while (this.#pool.length < count) {
      const row = document.createElement('div');
      row.tabIndex = 0;
      row.setAttribute('role', 'button');
      for (const c of COLUMNS) {
        const cell = document.createElement('span');
        cell.className = `c-${c.id}`;
        row.appendChild(cell);
      }
      this.#pool.push(row);
      this.#rows.appendChild(row);
    }
    this.#rows.style.transform = `translateY(${first * ROW_PX}px)`;
    for (let k = 0; k < this.#pool.length; k++) {
      const row = this.#pool[k]!;
      const item = k < count ? this.#items[first + k] : undefined;
      if (item === undefined) {
        if (!row.hidden) {
          row.hidden = true;
          for (const cell of row.children) cell.textContent = '';
        }
        continue;
      }
      row.hidden = false;
      const cls = `log-row ${item.verdict ? `v-${item.verdict}` : `k-${item.kind}`}${item.seq === this.#selected ? ' selected' : ''}`;
      if (row.className !== cls) row.className = cls;
      row.dataset.seq = String(item.seq);
      const cells = row.children;
      for (let c = 0; c < COLUMNS.length; c++) {
        const text = COLUMNS[c]!.text(item);
        const cell = cells[c] as HTMLElement;
        if (cell.textContent !== text) cell.textContent = text;
      }
      // What a narrow cell may cut off is in its tooltip: the application's path, the whole message.
      const app = cells[4] as HTMLElement;
      if (app.title !== (item.application ?? '')) app.title = item.application ?? '';
      const message = cells[COLUMNS.length - 1] as HTMLElement;
      if (message.title !== item.message) message.title = item.message;
    }
  }

  /** Rows in the DOM (the benchmark's bound). */
  get rowsInDom(): number {
    return this.#rows.childElementCount;
  }
}
