/**
 * Examples for the `--help` pages of commands that do not add their own (commands may add theirs with
 * `examples()` from commands/options.ts instead; test/shape/help-examples checks that every command
 * has exactly one Examples: section). Keyed by the command's path under `warden`.
 */
import type { Command } from 'commander';
import { examples } from './commands/options.js';

const EXAMPLES: Readonly<Record<string, readonly string[]>> = {
  '': [
    'sudo warden connect 127.0.0.1 --local          # the engine on this host',
    'warden connect fw1.example.net --user alice --name office',
    'warden status --all',
    "warden rules add '{ name: ssh, direction: incoming, protocol: tcp, localPorts: 22, action: allow }'",
    'warden logs --follow --verdict deny',
    'warden policy check /etc/warden/policy.yaml',
    'warden completion bash > /etc/bash_completion.d/warden',
  ],
  'groups list': ['warden groups list', 'warden groups list --json'],
  'groups set': [
    'warden groups set lan 192.168.0.0/16 10.0.0.0/8',
    'warden groups set lan          # an empty group',
  ],
  'proposals list': ['warden proposals list', 'warden proposals list --app /usr/bin/curl'],
  'proposals accept': [
    'warden proposals accept 3f2a9c01b7d4',
    'warden proposals accept --all --app /usr/bin/curl --confirm 60',
  ],
  'proposals reject': [
    'warden proposals reject 3f2a9c01b7d4',
    'warden proposals reject --all --app /usr/bin/telnet',
  ],
  'policy lint': ['warden policy lint /etc/warden/policy.yaml', 'warden policy lint policy.yaml --json'],
  status: ['warden status', 'warden status --all', 'warden status --engine office --json'],
  rules: [
    'warden rules list',
    "warden rules add '{ name: web, direction: outgoing, protocol: tcp, remotePorts: [80, 443], action: allow }'",
    'warden rules move web 1',
    'warden rules disable web',
  ],
  'rules list': [
    'warden rules list',
    'warden rules list --internal',
    'warden rules list --engine office --json',
  ],
  'rules show': ['warden rules show ssh', 'warden rules show ssh --json'],
  'rules unused': [
    'warden rules unused --since 30d         # never matched, or not in the last 30 days',
    'warden rules unused --since 12h --internal',
    'warden rules unused --since 2w --engine office --json',
  ],
  'rules add': [
    "warden rules add '{ name: ssh, direction: incoming, protocol: tcp, localPorts: 22, action: allow }'",
    "warden rules add '{ name: no-telnet, direction: outgoing, protocol: tcp, remotePorts: 23, action: deny }' --position 1",
    "warden rules add '{ name: lan, direction: incoming, remote: 192.168.0.0/16, action: allow }' --confirm 60",
    "warden rules add '{ name: curl, direction: outgoing, application: /usr/bin/curl, action: allow }' --pin",
  ],
  'rules update': [
    "warden rules update ssh '{ name: ssh, direction: incoming, protocol: tcp, localPorts: 2222, action: allow }'",
  ],
  'rules remove': ['warden rules remove ssh', 'warden rules remove ssh --confirm 60'],
  'rules move': ['warden rules move ssh 1        # first: it decides before every other rule'],
  'rules enable': ['warden rules enable ssh'],
  'rules disable': ['warden rules disable ssh'],
  settings: ['warden settings get', 'warden settings set syslog.enabled=true syslog.host=192.0.2.10'],
  'settings get': ['warden settings get', 'warden settings get syslog.host', 'warden settings get --json'],
  'settings set': [
    'warden settings set syslog.enabled=true syslog.host=192.0.2.10',
    'warden settings set remoteAdministration.enabled=true --confirm 120',
  ],
  config: [
    'warden config history',
    'warden config diff 3 4',
    'warden config rollback 3',
    'warden config confirm 5',
    'warden config undo 5',
  ],
  'config history': ['warden config history', 'warden config history --json'],
  'config diff': ['warden config diff 3 4'],
  'config rollback': ['warden config rollback 3', 'warden config rollback 3 --confirm 60'],
  'config confirm': ['warden config confirm 5'],
  'config undo': ['warden config undo 5'],
  lists: ['warden lists', 'warden lists --json --engine lab'],
  'lists refresh': ['warden lists refresh ads'],
  includes: ['warden includes', 'warden includes --json'],
  'includes refresh': ['warden includes refresh corp'],
  'asks list': ['warden asks list', 'warden asks list --json'],
  'asks answer': [
    'warden asks answer 3f2a9c01d4e5b6a7 --allow --always --scope port',
    'warden asks answer 3f2a9c01d4e5b6a7 --deny --for 60 --scope host',
  ],
  'asks watch': ['warden asks watch', 'warden asks watch --engine office'],
  users: ['warden users list', 'warden users add bob --role auditor', 'warden users passwd bob'],
  'users list': ['warden users list', 'warden users list --json'],
  'users add': ['warden users add bob --role auditor', 'WARDEN_NEW_PASSWORD=... warden users add carol'],
  'users remove': ['warden users remove bob'],
  'users role': ['warden users role bob administrator'],
  'users passwd': ['warden users passwd bob'],
  engines: ['warden engines list', 'warden engines forget office'],
  'engines list': ['warden engines list', 'warden engines list --json'],
  'engines forget': ['warden engines forget office', 'warden engines forget 192.0.2.10:44334'],
  'engines group': ['warden engines group add web web1 web2 web3', 'warden engines group list'],
  'engines group add': ['warden engines group add web web1 web2 web3'],
  'engines group remove': [
    'warden engines group remove web web3   # web3 leaves the group',
    'warden engines group remove web        # the group goes, its engines stay',
  ],
  'engines group list': ['warden engines group list', 'warden engines group list --json'],
  fleet: [
    'warden fleet status --group web',
    'warden fleet apply policy.yaml --group web --canary 1 --confirm 120',
  ],
  'fleet apply': [
    'warden fleet apply policy.yaml --group web --canary 1 --confirm 120',
    'warden fleet apply policy.yaml --group web --wave 5 --bake 30 --allow-unreachable',
  ],
  'fleet status': ['warden fleet status', 'warden fleet status --group web --json'],
  console: ['warden console', 'warden console --port 8080'],
};

/** Adds the examples above to the commands of the tree they name. */
export function addHelpExamples(program: Command): void {
  const walk = (c: Command, path: string) => {
    const lines = EXAMPLES[path];
    if (lines !== undefined) examples(c, lines);
    for (const sub of c.commands) walk(sub, path === '' ? sub.name() : `${path} ${sub.name()}`);
  };
  walk(program, '');
}
