/** connections.list's answer: the connections open on the engine's host (src/admin/connections.ts lists them). */

/** One open connection and, when it could be read, its process. */
export interface ConnectionJson {
  protocol: 'tcp' | 'udp';
  /** TCP state (`established`, `syn-sent`, ...); `connected` for UDP. */
  state: string;
  /** "address:port" of each end ("[v6]:port" for IPv6). */
  local: string;
  remote: string;
  /** Owner of the socket. */
  uid: number;
  user?: string;
  /** The process holding the socket (the first found when several share it). */
  pid?: number;
  application?: string;
  commandLine?: string[];
}

export interface ConnectionsListResult {
  connections: ConnectionJson[];
  /** True when more were open than one answer holds (it has the first ones). */
  truncated: boolean;
}
