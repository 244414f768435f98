/** What the verdict cache tests share: the perl client and engine.status `verdictCache`. */

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
}
