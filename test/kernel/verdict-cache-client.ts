/** What the verdict cache tests share: the perl client, a directory of scripts, and engine.status `verdictCache`. */
import { chmodSync, copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A directory readable by every uid (the checkout may be in a 0700 one) holding private copies of
 * perl (each copy is a program of its own to the engine: `perls` names them) and the scripts.
 */
export function perlScriptDir(
  prefix: string,
  scripts: Readonly<Record<string, string>>,
  perls: readonly string[] = ['perl'],
): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  for (const name of perls) {
    copyFileSync('/usr/bin/perl', join(dir, name));
    chmodSync(join(dir, name), 0o755);
  }
  for (const [name, text] of Object.entries(scripts)) writeFileSync(join(dir, name), text, { mode: 0o644 });
  return dir;
}

/** Connects once to ARGV[0]:ARGV[1] and prints ok or refused (a denied SYN times out in 2 s). */
export const PERL_CLIENT = `use Socket;
my ($host, $port) = @ARGV;
socket(my $s, PF_INET, SOCK_STREAM, 6) or die "socket: $!";
my $ok = eval { local $SIG{ALRM} = sub { die "timeout\\n" }; alarm 2;
  my $r = connect($s, pack_sockaddr_in($port, inet_aton($host))); alarm 0; $r };
print $ok ? "ok\\n" : "refused\\n";
`;

export interface VerdictCacheStatus {
  inUse: boolean;
  why?: string;
  hits?: number;
  misses?: number;
  generation?: number;
  inserted?: number;
  dropped?: number;
  carried?: number;
  notCarried?: number;
}
