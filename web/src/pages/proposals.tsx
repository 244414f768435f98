/**
 * Proposals: the rules learning mode proposed, grouped by application with how often each was seen;
 * accept (it becomes a rule, through the same confirmed apply as every change) or reject (never
 * proposed again), one by one, the ones ticked, or all of one application.
 */
import { useState } from 'preact/hooks';
import { errorText } from '../api.js';
import { confirmParam, useEngine, useLoad } from '../context.js';
import type { PolicyHeaderJson } from './policy-header.js';
import './policy.css';

interface Proposal {
  id: string;
  application: string;
  direction: 'incoming' | 'outgoing';
  protocol: string;
  port?: number;
  remote?: string;
  rule: Record<string, unknown>;
  count: number;
  firstSeen: string;
  lastSeen: string;
}

interface ListResult {
  proposals: Proposal[];
  cap: number;
  notStored: number;
  rejected: number;
}

const when = (iso: string) => new Date(iso).toLocaleString();
const destination = (p: Proposal) =>
  `${p.direction === 'incoming' ? 'from' : 'to'} ${p.remote ?? 'any'} · ${p.protocol}${p.port !== undefined ? ` ${p.port}` : ''}`;

export function ProposalsPage() {
  const ctx = useEngine();
  const admin = ctx.role === 'administrator';
  const [list, loadError, reload] = useLoad(() => ctx.call<ListResult>('proposals.list'), [ctx]);
  const [policy, , reloadPolicy] = useLoad(() => ctx.call<PolicyHeaderJson>('policy.get'), [ctx]);
  const [ticked, setTicked] = useState<Set<string>>(new Set());
  const [error, setError] = useState('');
  const [note, setNote] = useState('');
  const act = (method: 'proposals.accept' | 'proposals.reject', params: Record<string, unknown>) =>
    ctx
      .call<{ accepted?: unknown[]; rejected?: unknown[]; pending?: unknown }>(method, {
        ...params,
        ...(method === 'proposals.accept' ? confirmParam(ctx) : {}),
      })
      .then(
        (r) => {
          ctx.notePending(r.pending as never);
          const n = (r.accepted ?? r.rejected ?? []).length;
          setNote(
            method === 'proposals.accept'
              ? `${n} ${n === 1 ? 'rule' : 'rules'} added at the end of the rules.`
              : `${n} rejected: they are not proposed again.`,
          );
          setError('');
          setTicked(new Set());
          reload();
        },
        (x) => setError(errorText(x)),
      );
  const proposals = list?.proposals ?? [];
  const apps = [...new Set(proposals.map((p) => p.application))];
  const tick = (id: string, on: boolean) => {
    const next = new Set(ticked);
    if (on) next.add(id);
    else next.delete(id);
    setTicked(next);
  };
  return (
    <>
      <h1>Proposals</h1>
      <p class="muted">
        In learning mode, connections no rule decides are allowed and a rule is proposed for each application
        and destination. Accept the ones you want as rules; rejected ones are not proposed again.
      </p>
      {policy && policy.mode !== 'learning' && (
        <p class="banner" data-testid="not-learning">
          The engine is in <strong>{policy.mode}</strong> mode: no new proposals are made.{' '}
          {admin && (
            <button
              type="button"
              onClick={() =>
                ctx.call('policy.setMode', { mode: 'learning', ...confirmParam(ctx) }).then(
                  (r) => {
                    ctx.notePending(r.pending as never);
                    reloadPolicy();
                  },
                  (x) => setError(errorText(x)),
                )
              }
            >
              Switch to learning
            </button>
          )}
        </p>
      )}
      {loadError && <p class="error">{loadError}</p>}
      {error && <p class="error">{error}</p>}
      {note && (
        <p class="note" role="status">
          {note}
        </p>
      )}
      {list && list.notStored > 0 && (
        <p class="banner">
          {list.notStored} more were seen while {list.cap} proposals were waiting: accept or reject some to
          make room.
        </p>
      )}
      {admin && proposals.length > 0 && (
        <div class="row bulk">
          <button
            type="button"
            class="allow"
            disabled={ticked.size === 0}
            onClick={() => act('proposals.accept', { ids: [...ticked] })}
          >
            Accept selected ({ticked.size})
          </button>
          <button
            type="button"
            disabled={ticked.size === 0}
            onClick={() => act('proposals.reject', { ids: [...ticked] })}
          >
            Reject selected
          </button>
          <button type="button" onClick={() => setTicked(new Set(proposals.map((p) => p.id)))}>
            Select all
          </button>
        </div>
      )}
      {list && proposals.length === 0 && (
        <p class="card empty" data-testid="no-proposals">
          No proposals waiting.
          {list.rejected > 0 ? ` ${list.rejected} rejected ones are remembered.` : ''}
        </p>
      )}
      {apps.map((app) => {
        const mine = proposals.filter((p) => p.application === app);
        const seen = mine.reduce((n, p) => n + p.count, 0);
        return (
          <section key={app} class="card proposals" data-app={app} aria-label={`proposals for ${app}`}>
            <div class="app-head">
              <h2>{app === 'any' ? 'Unknown application' : app}</h2>
              <span class="muted">
                {mine.length} {mine.length === 1 ? 'proposal' : 'proposals'}, seen {seen}×
              </span>
              {admin && (
                <span class="buttons">
                  <button
                    type="button"
                    class="allow"
                    onClick={() => act('proposals.accept', { all: true, application: app })}
                  >
                    Accept all
                  </button>
                  <button
                    type="button"
                    onClick={() => act('proposals.reject', { all: true, application: app })}
                  >
                    Reject all
                  </button>
                </span>
              )}
            </div>
            <div class="scroll">
              <table class="proposals">
                <thead>
                  <tr>
                    {admin && (
                      <th scope="col">
                        <span class="sr-only">select</span>
                      </th>
                    )}
                    <th scope="col">Direction</th>
                    <th scope="col">Destination</th>
                    <th scope="col" class="num">
                      Seen
                    </th>
                    <th scope="col">First seen</th>
                    <th scope="col">Last seen</th>
                    {admin && <th scope="col">Decide</th>}
                  </tr>
                </thead>
                <tbody>
                  {mine.map((p) => (
                    <tr key={p.id} data-proposal={p.id}>
                      {admin && (
                        <td class="sel">
                          <input
                            type="checkbox"
                            aria-label={`select ${destination(p)}`}
                            checked={ticked.has(p.id)}
                            onChange={(e) => tick(p.id, e.currentTarget.checked)}
                          />
                        </td>
                      )}
                      <td class="dir">{p.direction}</td>
                      <td class="dest" title={String(p.rule.name)}>
                        {destination(p)}
                      </td>
                      <td class="num">{p.count}</td>
                      <td class="first">{when(p.firstSeen)}</td>
                      <td class="last">{when(p.lastSeen)}</td>
                      {admin && (
                        <td class="buttons decide">
                          <button
                            type="button"
                            class="allow"
                            onClick={() => act('proposals.accept', { ids: [p.id] })}
                          >
                            Accept
                          </button>
                          <button type="button" onClick={() => act('proposals.reject', { ids: [p.id] })}>
                            Reject
                          </button>
                        </td>
                      )}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </section>
        );
      })}
    </>
  );
}
