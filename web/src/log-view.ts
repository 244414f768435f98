/**
 * The live log's rows, drawn without a framework: the newest MAX_ITEMS items
 * are kept in memory and only the rows that fit the scroll box (plus a few)
 * exist in the DOM, a fixed pool of row elements whose text is replaced. A
 * frame with new items therefore costs a few hundred text updates in a
 * size-contained box, however many items arrived.
 */
import type { LogItem } from './api.js';

/** Items kept for scrolling back (the DOM holds only the visible rows). */
export const MAX_ITEMS = 500;
export const ROW_PX = 22;
export const CELLS = ['seq', 'time', 'kind', 'verdict', 'application', 'remote', 'rule', 'message'] as const;

function cellText(i: LogItem, c: (typeof CELLS)[number]): string {
  const v = c === 'time' ? i.time.slice(11, 23) : c === 'remote' ? (i.host ?? i.remote) : i[c];
  return v === undefined ? '' : String(v);
}

export class LogView {
  /** Newest first. */
  #items: LogItem[] = [];
  readonly #scroll: HTMLElement;
  readonly #spacer: HTMLElement;
  readonly #rows: HTMLElement;
  readonly #pool: HTMLElement[] = [];

  constructor(scroll: HTMLElement) {
    this.#scroll = scroll;
    this.#spacer = document.createElement('div');
    this.#rows = document.createElement('div');
    this.#rows.className = 'log-rows';
    this.#rows.dataset.testid = 'log-rows';
    this.#spacer.appendChild(this.#rows);
    scroll.replaceChildren(this.#spacer);
    scroll.addEventListener('scroll', () => this.draw(), { passive: true });
  }

  get size(): number {
    return this.#items.length;
  }

  /** Adds items (oldest first, as they arrive); a reader scrolled down keeps looking at the same rows. */
  add(items: LogItem[]): void {
    if (items.length === 0) return;
    const fresh = items.length > MAX_ITEMS ? items.slice(-MAX_ITEMS) : items;
    this.#items = fresh.reverse().concat(this.#items);
    if (this.#items.length > MAX_ITEMS) this.#items.length = MAX_ITEMS;
    // The new items went in above what the reader looks at.
    if (this.#scroll.scrollTop > 0) this.#scroll.scrollTop += fresh.length * ROW_PX;
    this.draw();
  }

  /** Replaces every item (history search results, oldest first). */
  replace(items: LogItem[]): void {
    this.#items = items.slice(-MAX_ITEMS).reverse();
    this.#scroll.scrollTop = 0;
    this.draw();
  }

  /** Puts the visible items into the row pool. */
  draw(): void {
    const total = this.#items.length;
    this.#spacer.style.height = `${total * ROW_PX}px`;
    const first = Math.min(Math.floor(this.#scroll.scrollTop / ROW_PX), Math.max(0, total - 1));
    const count = Math.min(total - first, Math.ceil(this.#scroll.clientHeight / ROW_PX) + 2);
    while (this.#pool.length < count) {
      const row = document.createElement('div');
      for (let c = 0; c < CELLS.length; c++) {
        row.appendChild(document.createElement('span'));
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
      row.className = item.verdict ? `log-row v-${item.verdict}` : 'log-row';
      const cells = row.children;
      for (let c = 0; c < CELLS.length; c++) {
        const text = cellText(item, CELLS[c]!);
        const cell = cells[c] as HTMLElement;
        if (cell.textContent !== text) cell.textContent = text;
      }
    }
  }

  /** Rows in the DOM (the benchmark's bound). */
  get rowsInDom(): number {
    return this.#rows.childElementCount;
  }
}
