/**
 * The page's one connection to `warden console`: a WebSocket that carries
 * requests (answered by id) and pushes (log items, notifications, transport
 * changes). The console checks the access token cookie before it upgrades.
 */

export interface ApiError {
  code?: string;
  message: string;
  problems?: { path: (string | number)[]; message: string }[];
  suggestion?: string;
}

export type Push =
  | { push: 'log'; engine: string; items: LogItem[]; dropped: number }
  | { push: 'notify'; engine: string; method: string; params: unknown }
  | { push: 'transport'; engine: string; transport: string; reason: string }
  | { push: 'closed'; engine: string; reason: string }
  | { push: 'reconnecting'; engine: string; reason: string; inMs: number; attempt: number }
  | { push: 'reconnected'; engine: string; session: SessionJson };

export interface SessionJson {
  user: string;
  role: 'administrator' | 'auditor';
  transport: string;
  reconnecting?: boolean;
}

/** The console connection: `open` once the page's engine sessions are known (`sessions`), `retrying` while it waits to connect again. */
export type ConsoleState =
  | { state: 'open'; sessions: Record<string, SessionJson> }
  | { state: 'retrying'; inMs: number }
  | { state: 'connecting' };

/** sessionStorage key of the resume ticket (per tab, gone with the tab; never localStorage). */
const TICKET_KEY = 'warden-console-ticket';
const RETRY_FIRST_MS = 250;
const RETRY_MAX_MS = 8000;

export interface LogItem {
  seq: number;
  time: string;
  kind: string;
  verdict?: string;
  direction?: string;
  protocol?: string;
  application?: string;
  local?: string;
  remote?: string;
  host?: string;
  rule?: string;
  user?: string;
  source?: string;
  message: string;
  /**
   * How many attempts this item stands for (retransmits of one connection), or connections (the
   * verdict cache's hits), when more than one.
   */
  count?: number;
}

type Waiter = { ok: (v: unknown) => void; fail: (e: ApiError) => void };

export class Api {
  #ws: WebSocket | undefined;
  #ready = false;
  #next = 1;
  #retries = 0;
  readonly #waiting = new Map<number, Waiter>();
  readonly #listeners = new Set<(p: Push) => void>();
  readonly #queue: string[] = [];
  #onState: (s: ConsoleState) => void = () => {};

  /**
   * Opens the WebSocket and keeps it open: after a close it connects again, waiting longer after
   * each failure. The first message of every connection is `resume` with the ticket the console gave
   * this tab (kept in sessionStorage): the console hands back the engine sessions this tab had before
   * a reload or a lost connection, and a new ticket. Requests wait until then.
   */
  connect(onState: (s: ConsoleState) => void): void {
    this.#onState = onState;
    onState({ state: 'connecting' });
    const ws = new WebSocket(`ws://${location.host}/ws`);
    this.#ws = ws;
    const resumeId = this.#next++;
    ws.onopen = () => {
      let ticket = '';
      try {
        ticket = sessionStorage.getItem(TICKET_KEY) ?? '';
      } catch {
        // storage refused: no resume, a fresh start
      }
      ws.send(JSON.stringify({ id: resumeId, op: 'resume', ticket }));
    };
    ws.onclose = () => {
      for (const w of this.#waiting.values()) w.fail({ message: 'connection to the console closed' });
      this.#waiting.clear();
      this.#ready = false;
      if (this.#ws !== ws) return;
      const inMs = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** this.#retries++);
      this.#onState({ state: 'retrying', inMs });
      setTimeout(() => this.connect(this.#onState), inMs);
    };
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data as string);
      if (m.id === resumeId) {
        try {
          sessionStorage.setItem(TICKET_KEY, m.result.ticket);
        } catch {
          // as above
        }
        this.#retries = 0;
        this.#ready = true;
        for (const q of this.#queue.splice(0)) ws.send(q);
        this.#onState({ state: 'open', sessions: m.result.sessions });
      } else if (typeof m.id === 'number') {
        const w = this.#waiting.get(m.id);
        this.#waiting.delete(m.id);
        if (m.error) w?.fail(m.error);
        else w?.ok(m.result);
      } else for (const l of this.#listeners) l(m as Push);
    };
  }

  /** Sends one request to the console (op: engines, probe, trust, login, logout, call). */
  request<T = unknown>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.#next++;
    const text = JSON.stringify({ id, op, ...args });
    return new Promise<T>((ok, fail) => {
      this.#waiting.set(id, { ok: ok as (v: unknown) => void, fail });
      if (this.#ready && this.#ws?.readyState === WebSocket.OPEN) this.#ws.send(text);
      else this.#queue.push(text);
    });
  }

  /** Calls an administration-protocol method on an engine the page is logged in to. */
  call<T = Record<string, unknown>>(engine: string, method: string, params: Record<string, unknown> = {}) {
    return this.request<T>('call', { engine, method, params });
  }

  onPush(l: (p: Push) => void): () => void {
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  }
}

export const api = new Api();

/** A readable one-line message for an error from the console or an engine. */
export function errorText(e: unknown): string {
  const err = e as ApiError;
  return err?.message ? `${err.message}${err.suggestion ? ` — ${err.suggestion}` : ''}` : String(e);
}

/** Field name -> message, from an error's problems (the last named path segment names the field). */
export function fieldErrors(e: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of (e as ApiError)?.problems ?? []) {
    const field = [...p.path].reverse().find((s) => typeof s === 'string' && s !== 'rule' && s !== 'rules');
    out[String(field ?? '_')] = p.message;
  }
  return out;
}
