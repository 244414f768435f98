/**
 * One log item's details: every field, the process (pid from the item; command line while the
 * process still holds a connection), the rule that decided it, what the policy says now (explain),
 * and "allow/deny this from now on": a rule made from the item, shown before it is added with
 * rules.add like any other (with the header's confirmed apply).
 */
import { useEffect, useState } from 'preact/hooks';
import { errorText, type LogItem } from '../api.js';
import { appHref, confirmParam, useEngine, useLoad } from '../context.js';
import { baseName, remoteText, splitEnd } from '../log-view.js';

interface Explanation {
  decision: { verdict: string; ruleName: string; mode: string; source: string };
}
interface OpenConnection {
  pid?: number;
  application?: string;
  commandLine?: string[];
  remote: string;
  local: string;
  state: string;
}

const pidOf = (i: LogItem) => Number(/\(pid (\d+)\)/.exec(i.message)?.[1] ?? 0) || undefined;

/** The connection as policy.explain takes it. */
function factsOf(i: LogItem): Record<string, unknown> | undefined {
  if (i.kind !== 'connection' || (i.direction !== 'incoming' && i.direction !== 'outgoing')) return undefined;
  const remote = splitEnd(i.remote);
  const local = splitEnd(i.local);
  const p: Record<string, unknown> = {
    direction: i.direction,
    protocol: ['tcp', 'udp', 'icmp'].includes(i.protocol ?? '') ? i.protocol : 'other',
  };
  if (i.application) p.application = i.application;
  if (remote.address) p.remoteAddress = remote.address;
  if (remote.port) p.remotePort = remote.port;
  if (local.port) p.localPort = local.port;
  if (i.user && !/^\d+$/.test(i.user)) p.user = i.user;
  else if (i.user) p.uid = Number(i.user);
  const hosts = i.host
    ?.split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  if (hosts?.length) p.hosts = hosts;
  return p;
}

/** The rule "allow/deny this from now on" adds: this program, this protocol, this destination (or, incoming, this local port). */
export function ruleFor(i: LogItem, action: 'allow' | 'deny'): Record<string, unknown> {
  const remote = splitEnd(i.remote);
  const local = splitEnd(i.local);
  const host = i.host?.split(',')[0]?.trim();
  const rule: Record<string, unknown> = { direction: i.direction ?? 'outgoing', action, enabled: true };
  if (i.application) rule.application = i.application;
  if (i.protocol === 'tcp' || i.protocol === 'udp') rule.protocol = i.protocol;
  if (i.direction === 'incoming') {
    if (local.port) rule.localPorts = local.port;
    if (remote.address) rule.remote = [remote.address];
  } else {
    if (host || remote.address) rule.remote = [host ?? remote.address];
    if (remote.port) rule.remotePorts = remote.port;
  }
  const who = i.application ? baseName(i.application) : 'any program';
  const where =
    i.direction === 'incoming'
      ? `from ${remote.address ?? 'anywhere'} to port ${local.port ?? 'any'}`
      : `to ${remoteText(i)}`;
  rule.name = `${action} ${who} ${where}`.slice(0, 120);
  return rule;
}

function Field({ label, value }: { label: string; value: unknown }) {
  if (value === undefined || value === '') return null;
  return (
    <>
      <dt>{label}</dt>
      <dd>{String(value)}</dd>
    </>
  );
}

export function LogDetails({ item, onClose }: { item: LogItem; onClose: () => void }) {
  const ctx = useEngine();
  const admin = ctx.role === 'administrator';
  const pid = pidOf(item);
  const facts = factsOf(item);
  const [proc] = useLoad(async () => {
    if (pid === undefined) return undefined;
    const r = await ctx.call<{ connections: OpenConnection[] }>('connections.list');
    return r.connections.filter((c) => c.pid === pid);
  }, [item.seq]);
  const [rule] = useLoad(
    () =>
      item.rule
        ? ctx.call<{ rule: Record<string, unknown>; position: number }>('rules.get', { name: item.rule })
        : Promise.resolve(undefined),
    [item.seq],
  );
  const [now, explainError] = useLoad(
    () => (facts ? ctx.call<Explanation>('policy.explain', facts) : Promise.resolve(undefined)),
    [item.seq],
  );
  const [proposal, setProposal] = useState<Record<string, unknown>>();
  const [done, setDone] = useState('');
  const [error, setError] = useState('');
  useEffect(() => {
    setProposal(undefined);
    setDone('');
    setError('');
  }, [item.seq]);
  const add = () =>
    ctx.call('rules.add', { rule: proposal, position: 0, ...confirmParam(ctx) }).then(
      (r) => {
        ctx.notePending(r.pending as never);
        setDone(`Rule "${String(proposal?.name)}" added at the top of the rules.`);
        setProposal(undefined);
      },
      (x) => setError(errorText(x)),
    );
  const running = proc?.[0];
  return (
    <div class="details card" role="dialog" aria-label="log item details" data-testid="log-details">
      <div class="details-head">
        <h2>
          <span class={`v-${item.verdict ?? ''}`}>{item.verdict ?? item.kind}</span>{' '}
          {item.application ? baseName(item.application) : item.kind} #{item.seq}
        </h2>
        <button type="button" onClick={onClose} aria-label="close the details">
          Close
        </button>
      </div>
      <dl>
        <Field label="Time" value={new Date(item.time).toLocaleString()} />
        <Field label="Kind" value={item.kind} />
        <Field label="Direction" value={item.direction} />
        <Field label="Protocol" value={item.protocol} />
        {item.application && (
          <>
            <dt>Application</dt>
            <dd>
              <a href={appHref(item.application)}>{item.application}</a>
            </dd>
          </>
        )}
        <Field label="User" value={item.user} />
        <Field label="Local end" value={item.local} />
        <Field label="Remote end" value={item.remote} />
        <Field label="Host names" value={item.host} />
        <Field label="From" value={item.source} />
        <Field label="Message" value={item.message} />
        {item.count && item.count > 1 ? (
          // Both kinds of the cache's items: its rule's, and an entry of an earlier policy.
          / by the verdict cache\b/.test(item.message) ? (
            <Field label="Connections" value={`${item.count} (decided by the verdict cache)`} />
          ) : (
            <Field label="Attempts" value={`${item.count} (retransmits of one connection attempt)`} />
          )
        ) : null}
        <Field label="Process id" value={pid} />
        {pid !== undefined && (
          <>
            <dt>Command line</dt>
            <dd data-testid="command-line">
              {running?.commandLine
                ? running.commandLine.join(' ')
                : proc === undefined
                  ? '…'
                  : 'not known: the process holds no connection now (it may have ended)'}
            </dd>
          </>
        )}
        <Field label="Deciding rule" value={item.rule} />
        {rule && (
          <>
            <dt>That rule now</dt>
            <dd>
              #{rule.position + 1}: {String(rule.rule.action)} {String(rule.rule.direction)}
              {rule.rule.application ? ` ${String(rule.rule.application)}` : ''}
              {rule.rule.enabled === false ? ' (disabled)' : ''}
            </dd>
          </>
        )}
        {now && (
          <>
            <dt>The policy now</dt>
            <dd data-testid="explain-now">
              <strong class={`v-${now.decision.verdict}`}>{now.decision.verdict}</strong> by{' '}
              {now.decision.ruleName} ({now.decision.source}, mode {now.decision.mode})
            </dd>
          </>
        )}
        {explainError && facts && (
          <>
            <dt>The policy now</dt>
            <dd class="error">{explainError}</dd>
          </>
        )}
      </dl>
      {admin && facts && !proposal && !done && (
        <p class="buttons">
          <button type="button" class="allow" onClick={() => setProposal(ruleFor(item, 'allow'))}>
            Allow this from now on
          </button>
          <button type="button" class="deny" onClick={() => setProposal(ruleFor(item, 'deny'))}>
            Deny this from now on
          </button>
        </p>
      )}
      {proposal && (
        <div class="card proposal" data-testid="rule-proposal">
          <p>
            This adds the rule <strong>{String(proposal.name)}</strong> at the top of the rules
            {ctx.confirmSeconds > 0 ? `, on probation for ${ctx.confirmSeconds} s until you keep it` : ''}:
          </p>
          <pre>{JSON.stringify(proposal, null, 1).replace(/[{}"]/g, '').trim()}</pre>
          <p class="buttons">
            <button type="button" class={String(proposal.action)} onClick={add}>
              Add rule
            </button>
            <button type="button" onClick={() => setProposal(undefined)}>
              Cancel
            </button>
          </p>
        </div>
      )}
      {done && (
        <p role="status" data-testid="rule-added">
          {done}
        </p>
      )}
      {error && <p class="error">{error}</p>}
    </div>
  );
}
