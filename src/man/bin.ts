#!/usr/bin/env node
/**
 * `npm run man [-- DIR]`: writes warden.1 and wardend.8 (default into dist/man), generated from the
 * command trees of the console and the engine. scripts/setup.sh runs it after each TypeScript build
 * and the Debian package installs the pages.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildProgram, CONSOLE_VERSION } from '../console/program.js';
import { buildWardendProgram } from '../engine/cli.js';
import { DEFAULT_DIRS, VERSION } from '../engine/daemon.js';
import { manPage } from './roff.js';

const dir = process.argv[2] ?? join(import.meta.dirname, '../../man');
mkdirSync(dir, { recursive: true });
const silent = { out: () => {}, err: () => {} };

writeFileSync(
  join(dir, 'warden.1'),
  manPage(
    buildProgram(() => {}, silent),
    {
      name: 'warden',
      section: 1,
      version: CONSOLE_VERSION,
      description: [
        'warden is the Administration Console of the Warden application firewall: it checks, explains, ' +
          'lints, imports and exports policy files offline, and manages one or many engines (wardend(8)) ' +
          'over the TLS administration protocol: rules, settings, versions with rollback, the log, ask ' +
          'prompts and users. `warden console` serves the web console on 127.0.0.1.',
        'Every command writes results to stdout and errors to stderr (each with a hint), takes --json ' +
          'where it prints data, and exits 0 (success, valid, allowed), 1 (failure, invalid, blocked) or 2 ' +
          '(usage error).',
      ],
      files: [
        ['~/.config/warden/engines.json', 'the remembered engines (warden engines list)'],
        ['~/.config/warden/known-hosts.json', 'the pinned certificate fingerprints of engines'],
        [`${DEFAULT_DIRS.state}/local-token`, "the engine's local administrator token (root only; --local)"],
      ],
      seeAlso: ['wardend(8)', 'nft(8)', 'ufw(8)', 'firewall-cmd(1)'],
    },
  ),
);
writeFileSync(
  join(dir, 'wardend.8'),
  manPage(
    buildWardendProgram(() => {}),
    {
      name: 'wardend',
      section: 8,
      version: VERSION,
      description: [
        "wardend is the engine of the Warden application firewall: it filters each application's " +
          'traffic through nftables and NFQUEUE, stores log items in SQLite and serves the ' +
          'administration protocol for consoles (warden(1)) on one application port (TLS over TCP, UDP ' +
          'for live log items). SIGHUP re-reads the configuration files (a broken edit is refused and ' +
          'the configuration in force stays); SIGTERM and SIGINT stop it cleanly.',
        'Its own log lines go to stderr: human lines on a terminal, JSON (one object per line) when ' +
          'stderr is not a terminal or under systemd (JOURNAL_STREAM); --log-format or ' +
          'WARDEN_LOG_FORMAT choose explicitly.',
      ],
      files: [
        [`${DEFAULT_DIRS.config}/policy.yaml`, 'the policy (absent: the safe defaults)'],
        [`${DEFAULT_DIRS.config}/settings.yaml`, 'the settings (mode 0600; absent: the defaults)'],
        [`${DEFAULT_DIRS.config}/users.json`, 'console users and password hashes (mode 0600)'],
        [`${DEFAULT_DIRS.state}/`, 'TLS identity, local token, logs.db, history (mode 0700)'],
      ],
      seeAlso: ['warden(1)', 'systemctl(1)', 'nft(8)'],
    },
  ),
);
process.stdout.write(`man pages written to ${dir}: warden.1, wardend.8\n`);
