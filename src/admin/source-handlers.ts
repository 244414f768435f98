/**
 * lists.refresh and includes.refresh: fetch (or read) one list or rule subscription of the policy
 * now, as its refresh interval would (docs/policy.md). A refresh already under way is joined, not
 * doubled. The answer waits for the attempt at most REFRESH_WAIT_MS (a download may take up to its
 * deadline) and then says whether it is done; engine.status tells the rest.
 */
import { ErrorCode, WardenError } from '../errors.js';
import type { IncludeStatus, ListStatus } from '../protocol/methods.js';
import type { Caller, HandlerContext } from './handler-context.js';

const REFRESH_WAIT_MS = 8000;

interface Sources<S> {
  refresh?(name: string): Promise<void>;
  states?(): readonly S[];
}

/** Refreshes `name` in `sources` and answers its state; NOT_FOUND when the policy does not name it. */
async function refreshOne<S extends { name: string }>(
  sources: Sources<S> | undefined,
  what: 'list' | 'rule subscription',
  name: string,
  audit: (caller: Caller, message: string) => void,
  caller: Caller,
): Promise<{ state: S; done: boolean }> {
  const known = sources?.states?.().find((s) => s.name === name);
  if (sources?.refresh === undefined || known === undefined)
    throw new WardenError(ErrorCode.NOT_FOUND, `the policy has no ${what} named "${name}"`, {
      suggestion: `See engine.status (warden ${what === 'list' ? 'lists' : 'includes'}) for the names.`,
    });
  audit(caller, `${what} ${name}: refresh asked for`);
  let timer: NodeJS.Timeout | undefined;
  const done = await Promise.race([
    sources.refresh(name).then(
      () => true,
      () => true, // the source records its own failure (lastError); the state says it
    ),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), REFRESH_WAIT_MS);
    }),
  ]);
  clearTimeout(timer);
  const state = sources.states?.().find((s) => s.name === name) ?? known;
  return { state, done };
}

export function sourceHandlers(ctx: HandlerContext, audit: (caller: Caller, message: string) => void) {
  return {
    listsRefresh: async ({ name }: { name: string }, caller: Caller) => {
      const r = await refreshOne<ListStatus>(ctx.lists, 'list', name, audit, caller);
      return { list: r.state, done: r.done };
    },
    includesRefresh: async ({ name }: { name: string }, caller: Caller) => {
      const r = await refreshOne<IncludeStatus>(ctx.includes, 'rule subscription', name, audit, caller);
      return { include: r.state, done: r.done };
    },
  };
}
