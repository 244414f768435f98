/** `warden settings get [KEY]` and `warden settings set KEY=VALUE...`: an engine's settings. */
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { closest } from '../../document.js';
import { ErrorCode, WardenError } from '../../errors.js';
import { Methods } from '../../protocol/methods.js';
import type { CommandIo, CommandStatus } from '../io.js';
import { openEngine, type RemoteOptions, remoteOptions } from '../remote.js';
import { confirmParam, pendingNote } from './config.js';

type Opts = RemoteOptions & { json?: boolean; confirm?: string };

function pick(settings: Record<string, unknown>, key: string | undefined): unknown {
  if (key === undefined) return settings;
  let cur: unknown = settings;
  for (const part of key.split('.')) {
    if (cur === null || typeof cur !== 'object' || !(part in cur)) {
      const near = cur !== null && typeof cur === 'object' ? closest(part, Object.keys(cur)) : undefined;
      throw new WardenError(
        ErrorCode.NOT_FOUND,
        `no setting "${key}"${near ? `; did you mean "${near}"?` : ''}`,
        {
          suggestion: 'See docs/settings.md, or `warden settings get`.',
        },
      );
    }
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** Turns ["syslog.enabled=true", "syslog.host=10.0.0.5"] into { syslog: { enabled: true, host: "10.0.0.5" } }. */
export function assignmentsToPatch(assignments: readonly string[]): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  for (const a of assignments) {
    const eq = a.indexOf('=');
    if (eq <= 0)
      throw new WardenError(ErrorCode.USAGE, `"${a}" is not KEY=VALUE`, {
        suggestion: 'e.g. warden settings set remoteAdministration.enabled=true',
      });
    const path = a.slice(0, eq).split('.');
    const raw = a.slice(eq + 1);
    let value: unknown = raw;
    try {
      value = parseYaml(raw);
    } catch {
      // Not YAML: keep the text as it is.
    }
    let cur = patch;
    path.slice(0, -1).forEach((p) => {
      cur[p] = (cur[p] as Record<string, unknown> | undefined) ?? {};
      cur = cur[p] as Record<string, unknown>;
    });
    cur[path[path.length - 1]!] = value ?? '';
  }
  return patch;
}

export function registerSettings(
  program: Command,
  run: (s: Promise<CommandStatus>) => void,
  io: CommandIo,
): void {
  const settings = program.command('settings').description("an engine's settings (docs/settings.md)");
  remoteOptions(
    settings
      .command('get')
      .description('show the settings, or one key')
      .argument('[key]', 'e.g. syslog or syslog.port'),
  )
    .option('--json', 'print as JSON')
    .action((key: string | undefined, o: Opts) =>
      run(
        (async () => {
          const { client } = await openEngine(o, io);
          try {
            const r = await client.call(Methods.settingsGet, {});
            const v = pick(r.settings, key);
            io.out(o.json || typeof v === 'object' ? JSON.stringify(v, null, 2) : String(v));
            return 0 as const;
          } finally {
            client.close();
          }
        })(),
      ),
    );
  remoteOptions(
    settings
      .command('set')
      .description('change settings')
      .argument('<key=value...>', 'e.g. syslog.enabled=true syslog.host=192.0.2.10'),
  )
    .option(
      '--confirm <seconds>',
      'roll back by itself unless `warden config confirm` comes within this time',
    )
    .option('--json', 'print the new settings as JSON')
    .action((assignments: string[], o: Opts) =>
      run(
        (async () => {
          const patch = assignmentsToPatch(assignments);
          const { client } = await openEngine(o, io);
          try {
            const r = await client.call(Methods.settingsSet, { settings: patch, ...confirmParam(o.confirm) });
            io.out(
              o.json
                ? JSON.stringify(r.settings, null, 2)
                : `Settings changed: ${assignments.join(' ')}${pendingNote(r.pending)}`,
            );
            return 0 as const;
          } finally {
            client.close();
          }
        })(),
      ),
    );
}
