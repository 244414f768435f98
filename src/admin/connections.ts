/**
 * connections.list: the connections open on the engine's host now, with their processes. The
 * engine supplies the source (src/kernel/open-connections.ts reads the kernel's socket tables and
 * /proc); this layer only answers with it.
 */
import { ErrorCode, WardenError } from '../errors.js';
import type { ConnectionsListResult } from '../protocol/connections.js';

/** Where the open connections come from (the engine's ConnectionLister). */
export interface ConnectionSource {
  list(): Promise<ConnectionsListResult>;
}

/** The connections.list handler; without a source (an admin server alone, no engine) it says so. */
export function connectionsHandler(
  source: ConnectionSource | undefined,
): () => Promise<ConnectionsListResult> {
  return async () => {
    if (source === undefined)
      throw new WardenError(
        ErrorCode.NOT_FOUND,
        'this engine has no view of the connections open on its host',
        {
          suggestion:
            'This administration server runs without an engine; connect to the one wardend started.',
        },
      );
    return source.list();
  };
}
