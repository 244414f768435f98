/**
 * `ask` prompts on the wire: a connection held by the engine while consoles are asked,
 * and the answer an administrator gives (allow or deny; once, for a while, or always;
 * for this application, this port or this host).
 */
import { z } from 'zod';

/** A held connection waiting for an answer. */
export interface AskPrompt {
  /** Hex, names the prompt in asks.answer. */
  readonly id: string;
  /** ISO 8601: when the connection was first held. */
  readonly time: string;
  /** ISO 8601: when the default action decides if nobody answers. */
  readonly expiresAt: string;
  /** What happens at expiresAt. */
  readonly defaultVerdict: 'allow' | 'deny' | 'reject';
  readonly direction: 'incoming' | 'outgoing';
  readonly protocol: 'tcp' | 'udp' | 'icmp' | 'other';
  /** Executable path; absent when the process could not be found. */
  readonly application?: string;
  readonly pid?: number;
  readonly commandLine?: readonly string[];
  readonly user?: string;
  readonly uid?: number;
  /** "address:port" (IPv6 in brackets). */
  readonly local: string;
  readonly remote: string;
  readonly remoteAddress: string;
  readonly remotePort?: number;
  /** Host names known for the remote address. */
  readonly hosts: readonly string[];
  /** The rule (or default) whose action is `ask`. */
  readonly rule: string;
  /** How many packets of this connection (retransmissions included) are waiting. */
  readonly waiting: number;
  /** SHA-256 of the application's executable when the engine could hash it: an answer "always" pins it. */
  readonly sha256?: string;
  /** A pinned rule that no longer holds for this program, e.g. "pinned sha256 abc… but /usr/bin/curl is now def…". */
  readonly change?: string;
}

export const ASK_DURATIONS = ['once', 'temporary', 'always'] as const;
export const ASK_SCOPES = ['application', 'port', 'host'] as const;

export const askAnswerSchema = z.strictObject({
  id: z.string().regex(/^[0-9a-f]{16,64}$/, 'id must be the hex id of a pending prompt'),
  verdict: z.enum(['allow', 'deny']),
  /** once: only the held connection; temporary: a rule that expires after `minutes`; always: a permanent rule. */
  duration: z.enum(ASK_DURATIONS).default('once'),
  minutes: z
    .number()
    .int()
    .min(1, 'minutes must be 1-43200')
    .max(43_200, 'minutes must be 1-43200')
    .default(60),
  /** What the new rule covers: the application, the application and remote port, or the application and remote host. */
  scope: z.enum(ASK_SCOPES).default('application'),
});

export type AskAnswer = z.output<typeof askAnswerSchema>;
/** asks.answer params as a console sends them (defaulted fields optional). */
export type AskAnswerParams = z.input<typeof askAnswerSchema>;

/** How a prompt ended. */
export interface AskResolution {
  readonly id: string;
  readonly verdict: 'allow' | 'deny' | 'reject';
  /** 'console' when answered, 'timeout' when the default decided, 'engine' when the engine dropped it (stop). */
  readonly by: 'console' | 'timeout' | 'engine';
  readonly user?: string;
  /** Name of the rule the answer added, when duration is not `once`. */
  readonly rule?: string;
}
