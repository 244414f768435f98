/**
 * The top of the Rules page: the mode and the defaults per direction (what happens when no rule
 * decides), and the address groups, shown and changed through policy.* and groups.* with the same
 * confirmed apply as rule changes. Auditors see them read-only.
 */
import { useEffect, useState } from 'preact/hooks';
import { errorText } from '../api.js';
import { type Ctx, confirmParam, useEngine, useLoad } from '../context.js';
import './policy.css';

type DefaultJson = { action: string; log: boolean };
export interface PolicyHeaderJson {
  mode: 'enforce' | 'learning' | 'monitor';
  defaults: { incoming: DefaultJson; outgoing: DefaultJson };
  addressGroups: Record<string, string[]>;
  groupUsers: Record<string, string[]>;
  version: number;
}

const MODE_TEXT: Record<string, string> = {
  enforce: 'rules and defaults decide',
  learning: 'what no rule decides is allowed and proposed as a rule',
  monitor: 'nothing is blocked; what would be is logged',
};

const members = (text: string) =>
  text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);

function GroupRow({
  ctx,
  name,
  list,
  users,
  admin,
  apply,
}: {
  ctx: Ctx;
  name: string;
  list: string[];
  users: string[];
  admin: boolean;
  apply: (method: string, params: Record<string, unknown>) => Promise<boolean>;
}) {
  const [text, setText] = useState(list.join(', '));
  const changed = text !== list.join(', ');
  return (
    <tr data-group={name}>
      <th scope="row">@{name}</th>
      <td>
        {admin ? (
          <input
            class="members"
            aria-label={`members of ${name}`}
            value={text}
            onInput={(e) => setText(e.currentTarget.value)}
          />
        ) : (
          list.join(', ') || <em>(empty)</em>
        )}
      </td>
      <td class="users">{users.length > 0 ? users.join(', ') : <span class="muted">no rule</span>}</td>
      {admin && (
        <td class="buttons">
          <button
            type="button"
            disabled={!changed}
            onClick={() => apply('groups.set', { name, members: members(text), ...confirmParam(ctx) })}
          >
            Save
          </button>
          <button
            type="button"
            disabled={users.length > 0}
            title={users.length > 0 ? `used by ${users.join(', ')}` : undefined}
            onClick={() =>
              confirm(`Remove the address group @${name}?`) &&
              apply('groups.remove', { name, ...confirmParam(ctx) })
            }
          >
            Remove
          </button>
        </td>
      )}
    </tr>
  );
}

/** Mode, defaults and groups; `onChange` after a change (the caller may reload what depends on them). */
export function PolicyHeader({ onChange }: { onChange?: () => void }) {
  const ctx = useEngine();
  const admin = ctx.role === 'administrator';
  const [p, loadError, reload] = useLoad(() => ctx.call<PolicyHeaderJson>('policy.get'), [ctx]);
  const [error, setError] = useState('');
  const [note, setNote] = useState('');
  const [newName, setNewName] = useState('');
  const [newMembers, setNewMembers] = useState('');
  // A log box shows its click at once, not only once the engine answered and the policy was read
  // again (a render in between put the old state back); forgotten when the policy comes anew.
  const [logShown, setLogShown] = useState<Partial<Record<'incoming' | 'outgoing', boolean>>>({});
  useEffect(() => setLogShown({}), [p]);
  const apply = (method: string, params: Record<string, unknown>, done?: string) =>
    ctx.call(method, params).then(
      (r) => {
        ctx.notePending(r.pending as never);
        setError('');
        setNote(done ?? '');
        reload();
        onChange?.();
        return true;
      },
      (x) => {
        setError(errorText(x));
        return false;
      },
    );
  if (!p) return loadError ? <p class="error">{loadError}</p> : null;
  const defaultControl = (direction: 'incoming' | 'outgoing') => {
    const d = p.defaults[direction];
    return (
      <div class="default" data-default={direction}>
        <label>
          {direction === 'incoming' ? 'Incoming' : 'Outgoing'} default (no rule decides)
          <select
            aria-label={`default ${direction} action`}
            value={d.action}
            disabled={!admin}
            onChange={(e) =>
              apply(
                'policy.setDefault',
                { direction, action: e.currentTarget.value, ...confirmParam(ctx) },
                `Default ${direction}: ${d.action} → ${e.currentTarget.value}`,
              )
            }
          >
            {['allow', 'deny', 'reject', 'ask'].map((a) => (
              <option key={a}>{a}</option>
            ))}
          </select>
        </label>
        <label class="check">
          <input
            type="checkbox"
            aria-label={`log ${direction} default`}
            checked={logShown[direction] ?? d.log}
            disabled={!admin}
            onChange={(e) => {
              const log = e.currentTarget.checked;
              setLogShown((shown) => ({ ...shown, [direction]: log }));
              void apply('policy.setDefault', { direction, log, ...confirmParam(ctx) }).then((ok) => {
                if (!ok) setLogShown((shown) => ({ ...shown, [direction]: undefined }));
              });
            }}
          />{' '}
          log
        </label>
      </div>
    );
  };
  const groups = Object.keys(p.addressGroups);
  return (
    <section class="card policy-header" aria-label="policy">
      <div class="policy-line">
        <fieldset class="mode">
          <legend>Mode</legend>
          {(['enforce', 'learning', 'monitor'] as const).map((m) => (
            <button
              key={m}
              type="button"
              aria-pressed={p.mode === m}
              disabled={!admin && p.mode !== m}
              onClick={() =>
                admin &&
                p.mode !== m &&
                apply('policy.setMode', { mode: m, ...confirmParam(ctx) }, `Mode: ${p.mode} → ${m}`)
              }
            >
              {m}
            </button>
          ))}
          <span class="muted mode-text">{MODE_TEXT[p.mode]}</span>
        </fieldset>
        {defaultControl('incoming')}
        {defaultControl('outgoing')}
      </div>
      {p.mode === 'learning' && (
        <p class="muted">
          Learning: review what was proposed on the <a href="#/proposals">Proposals</a> page.
        </p>
      )}
      {note && (
        <p class="note" role="status">
          {note}
        </p>
      )}
      {error && <p class="error">{error}</p>}
      <div class="groups-box">
        <h2>
          Address groups <span class="muted">use them in rules as @name</span>
        </h2>
        <div class="scroll">
          <table class="groups" data-testid="groups">
            <thead>
              <tr>
                <th scope="col">Group</th>
                <th scope="col">Members: addresses, CIDRs, ranges, host names</th>
                <th scope="col">Used by</th>
                {admin && <th scope="col">Change</th>}
              </tr>
            </thead>
            <tbody>
              {groups.length === 0 && (
                <tr>
                  <td colSpan={admin ? 4 : 3} class="muted">
                    No address groups yet.
                  </td>
                </tr>
              )}
              {groups.map((g) => (
                <GroupRow
                  key={`${g}:${p.addressGroups[g]!.join(',')}`}
                  ctx={ctx}
                  name={g}
                  list={p.addressGroups[g]!}
                  users={p.groupUsers[g] ?? []}
                  admin={admin}
                  apply={(m, params) => apply(m, params, `Group @${g} changed`)}
                />
              ))}
            </tbody>
          </table>
        </div>
        {admin && (
          <form
            class="row"
            aria-label="add a group"
            onSubmit={(e) => {
              e.preventDefault();
              apply(
                'groups.set',
                { name: newName.replace(/^@/, ''), members: members(newMembers), ...confirmParam(ctx) },
                `Group @${newName.replace(/^@/, '')} created`,
              ).then((ok) => {
                if (ok) {
                  setNewName('');
                  setNewMembers('');
                }
              });
            }}
          >
            <label>
              New group
              <input value={newName} placeholder="lan" onInput={(e) => setNewName(e.currentTarget.value)} />
            </label>
            <label class="grow">
              Members
              <input
                value={newMembers}
                placeholder="192.168.0.0/16, 10.0.0.0/8"
                onInput={(e) => setNewMembers(e.currentTarget.value)}
              />
            </label>
            <button type="submit" disabled={newName.trim() === ''}>
              Add group
            </button>
          </form>
        )}
      </div>
    </section>
  );
}
