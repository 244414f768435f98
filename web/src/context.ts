/** What every page gets: the engine it works on, the session's role and a way to call the engine. */
import { createContext } from 'preact';
import { useContext, useEffect, useState } from 'preact/hooks';
import { api } from './api.js';

export interface Pending {
  version: number;
  previous: number;
  deadline: string;
}

export interface Ctx {
  engine: string;
  user: string;
  role: 'administrator' | 'auditor';
  call<T = Record<string, unknown>>(method: string, params?: Record<string, unknown>): Promise<T>;
  /** A change applied with confirm: shows the countdown banner. */
  notePending(p: Pending | undefined): void;
  /** Seconds a confirmed apply waits (0: apply without confirm). */
  confirmSeconds: number;
}

export const EngineContext = createContext<Ctx | null>(null);

export function useEngine(): Ctx {
  const c = useContext(EngineContext);
  if (c === null) throw new Error('no engine');
  return c;
}

/** The confirm parameter for a change, when the administrator asked for confirmed apply. */
export function confirmParam(ctx: Ctx): Record<string, unknown> {
  return ctx.confirmSeconds > 0 ? { confirm: { seconds: ctx.confirmSeconds } } : {};
}

/** Re-renders every second (for countdowns). */
export function useNow(): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);
  return now;
}

/** Loads `load()` on mount and when `deps` change; returns [value, error, reload]. */
export function useLoad<T>(
  load: () => Promise<T>,
  deps: unknown[] = [],
): [T | undefined, string, () => void] {
  const [value, setValue] = useState<T>();
  const [error, setError] = useState('');
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    load().then(
      (v) => {
        if (!live) return;
        setValue(v);
        setError('');
      },
      (e) => {
        if (live) setError(e?.message ?? String(e));
      },
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return [value, error, () => setTick((t) => t + 1)];
}

export { api };

/** The address of an application's page. */
export function appHref(path: string): string {
  return `#/app/${encodeURIComponent(path)}`;
}
