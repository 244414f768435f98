/**
 * The engine's settings with their defaults: one object, units beside each
 * value. A settings file only needs the keys it changes.
 */
export const DEFAULT_SETTINGS = {
  /** TCP and UDP port of the administration protocol (the reference's "application port"). */
  applicationPort: 44334,
  remoteAdministration: {
    /** false: only consoles on this host may connect (localhost). */
    enabled: false,
  },
  dns: {
    /** IP addresses of the resolvers the engine and console may query; empty = any DNS server. */
    resolvers: [] as string[],
  },
  crashReports: {
    /** The user allowed the crash assistant to upload crash reports. */
    sendingAllowed: false,
    /** Where crash reports go (HTTPS URL). */
    server: 'https://crashes.warden.example/reports',
  },
  updates: {
    /** Check a release feed for newer versions. */
    enabled: false,
    /** The release feed (HTTPS URL). */
    feedUrl: 'https://updates.warden.example/releases.json',
    /** Time between checks, in hours. */
    intervalHours: 24,
  },
  registration: {
    /** Enrol this engine with a registration server. */
    enabled: false,
    /** The registration server (HTTPS URL). */
    server: 'https://register.warden.example/enrol',
  },
  syslog: {
    /** Forward log items to a syslog receiver (RFC 5424). */
    enabled: false,
    /** Receiver host name or IP address. */
    host: '127.0.0.1',
    /** Receiver port (514 for UDP/TCP, 6514 for TLS by convention). */
    port: 514,
    transport: 'udp' as 'udp' | 'tcp' | 'tls',
  },
  proxy: {
    /** auto: from https_proxy/http_proxy/no_proxy and /etc/environment; direct: no proxy; manual: `url` below. */
    mode: 'auto' as 'auto' | 'direct' | 'manual',
    /** Proxy URL for manual mode, e.g. http://proxy.example:3128. */
    url: '',
  },
  enforcement: {
    /** NFQUEUE queue number for connections the engine decides in userspace (0-65535). */
    queue: 0,
    /** When the engine is not there to decide a queued connection: open lets it through, closed drops it. */
    onEngineFailure: 'open' as 'open' | 'closed',
    /** Seconds a connection waits for a console to answer an `ask` before the default action decides. */
    askTimeoutSeconds: 30,
    /** On a clean stop: keep Warden's ruleset in the kernel, or remove it. */
    onStop: 'keep' as 'keep' | 'remove',
    /** NFLOG group through which kernel-decided blocks and logged allows reach the engine as log items. */
    logGroup: 4334,
    /**
     * The cgroup (a path under the cgroup2 mount; `/` its root: every process) whose sockets the
     * attribution BPF programs record; '' turns them off (attribution then reads /proc).
     */
    bpfCgroup: '/',
    /**
     * With BPF attribution: outgoing TCP connections the engine allowed by a decision that depends only
     * on the executable, uid, remote address and port are allowed again in the kernel, logged and counted
     * from the BPF ring buffer (docs/attribution.md, "Verdict cache"). Read at start.
     */
    verdictCache: true,
    /**
     * Flood limits before the queue: new connections that need the engine, per second, per local
     * user (uid) going out. Over the limit they are dropped (a SYN is sent again later), counted and
     * logged as a security item. 0 turns the limit off.
     */
    floodOutgoingPerUid: 100,
    /** The same per source address (IPv6: per /64) coming in. 0 turns the limit off. */
    floodIncomingPerSource: 50,
    /** Connections a uid or source may open at once above its rate. */
    floodBurst: 200,
  },
  blockedPopups: {
    /** Localhost-only TCP port that receives reports of blocked pop-ups. */
    port: 44501,
  },
  metrics: {
    /** Serve Prometheus metrics at http://127.0.0.1:PORT/metrics (localhost only). */
    enabled: false,
    /** TCP port of the metrics endpoint on 127.0.0.1 (9464, as Prometheus exporters commonly use). */
    port: 9464,
  },
} as const;
