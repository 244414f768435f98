/**
 * The one registry of Warden's error codes. Codes are stable strings: once
 * published a code is never reused for another meaning, and a retired code
 * stays listed in RETIRED_CODES. docs/errors.md documents every code; a test
 * keeps the two in step.
 */
export const ErrorCode = {
  /** A policy (rules) file or value does not satisfy the schema. */
  POLICY_INVALID: 'WARDEN_E_POLICY_INVALID',
  /** A settings file or value does not satisfy the schema. */
  SETTINGS_INVALID: 'WARDEN_E_SETTINGS_INVALID',
  /** A file is not well-formed YAML. */
  YAML_SYNTAX: 'WARDEN_E_YAML_SYNTAX',
  /** A file could not be read or written. */
  FILE_IO: 'WARDEN_E_FILE_IO',
  /** A command line was wrong: unknown option, missing argument, bad value. */
  USAGE: 'WARDEN_E_USAGE',
  /** A connection description given to explain/decide is incomplete or wrong. */
  CONNECTION_INVALID: 'WARDEN_E_CONNECTION_INVALID',
  /** A peer broke the administration protocol: bad JSON, not JSON-RPC, an oversized or empty frame. */
  PROTOCOL: 'WARDEN_E_PROTOCOL',
  /** The method does not exist. */
  METHOD_UNKNOWN: 'WARDEN_E_METHOD_UNKNOWN',
  /** The method's params do not satisfy its schema. */
  PARAMS_INVALID: 'WARDEN_E_PARAMS_INVALID',
  /** The engine failed in a way the caller cannot fix; details are in the engine's log. */
  INTERNAL: 'WARDEN_E_INTERNAL',
  /** The method needs a logged-in session. */
  NOT_AUTHENTICATED: 'WARDEN_E_NOT_AUTHENTICATED',
  /** Wrong user name, password or local token. */
  AUTH_FAILED: 'WARDEN_E_AUTH_FAILED',
  /** Too many failed logins from this address; wait before the next attempt. */
  AUTH_THROTTLED: 'WARDEN_E_AUTH_THROTTLED',
  /** The caller's role may not do this (an auditor is read-only). */
  FORBIDDEN: 'WARDEN_E_FORBIDDEN',
  /** Remote administration is disabled on the engine: only consoles on the same host may connect. */
  REMOTE_DISABLED: 'WARDEN_E_REMOTE_DISABLED',
  /** The named rule, user or item does not exist. */
  NOT_FOUND: 'WARDEN_E_NOT_FOUND',
  /** Something with that name exists already. */
  ALREADY_EXISTS: 'WARDEN_E_ALREADY_EXISTS',
  /** The engine's certificate is not the one pinned for it: possibly an attack. */
  FINGERPRINT_MISMATCH: 'WARDEN_E_FINGERPRINT_MISMATCH',
  /** The engine is not known yet and its fingerprint was not accepted. */
  FINGERPRINT_UNKNOWN: 'WARDEN_E_FINGERPRINT_UNKNOWN',
  /** The engine could not be reached or the connection broke. */
  CONNECTION_FAILED: 'WARDEN_E_CONNECTION_FAILED',
  /** No answer came in time. */
  TIMEOUT: 'WARDEN_E_TIMEOUT',
  /** The native kernel addon (build/Release/warden_kernel.node) is not built or does not load. */
  NATIVE_MISSING: 'WARDEN_E_NATIVE_MISSING',
  /** The kernel refused to bind or configure an NFQUEUE queue, or a verdict could not be sent. */
  KERNEL_QUEUE: 'WARDEN_E_KERNEL_QUEUE',
  /** The kernel refused to bind or configure an NFLOG group. */
  KERNEL_LOG: 'WARDEN_E_KERNEL_LOG',
  /** A sock_diag socket lookup failed (not "not found": that is a null answer). */
  KERNEL_SOCKET_LOOKUP: 'WARDEN_E_KERNEL_SOCKET_LOOKUP',
  KERNEL_BPF: 'WARDEN_E_KERNEL_BPF',
  /** A kernel tool Warden needs (nft, iptables-nft, nsenter) is not installed. */
  KERNEL_TOOL_MISSING: 'WARDEN_E_KERNEL_TOOL_MISSING',
  /** The kernel refused a ruleset change for lack of privilege (not root / no CAP_NET_ADMIN). */
  KERNEL_NOT_PERMITTED: 'WARDEN_E_KERNEL_NOT_PERMITTED',
  /** nft or iptables-nft-restore rejected Warden's ruleset; the message holds the tool's own words and line. */
  KERNEL_RULESET_REJECTED: 'WARDEN_E_KERNEL_RULESET_REJECTED',
  /** The engine's log store file is not a SQLite database or is damaged. */
  LOG_STORE_CORRUPT: 'WARDEN_E_LOG_STORE_CORRUPT',
  /** The engine's log store was written by a newer Warden (a schema version this one does not know). */
  LOG_STORE_VERSION: 'WARDEN_E_LOG_STORE_VERSION',
  /** A remote administrator's change could cut them off from the engine; it needs confirm (confirmed apply). */
  LOCKOUT_RISK: 'WARDEN_E_LOCKOUT_RISK',
  /** A change to a rule included from a subscription: it is that subscription's, read-only in the console. */
  RULE_INCLUDED: 'WARDEN_E_RULE_INCLUDED',
  /** An auxiliary service's HTTP(S) request (update feed, registration, crash upload) failed: server, proxy, TLS, time or status. */
  SERVICE_REQUEST_FAILED: 'WARDEN_E_SERVICE_REQUEST_FAILED',
  /** A release feed or registration server answered something that is not in the documented format. */
  SERVICE_ANSWER_INVALID: 'WARDEN_E_SERVICE_ANSWER_INVALID',
  /** A blocked pop-up report is not a JSON object with the documented fields, or its line is too long. */
  POPUP_REPORT_INVALID: 'WARDEN_E_POPUP_REPORT_INVALID',
  /** A blocked pop-up report came from another host: the endpoint accepts reports from this host only. */
  POPUP_NOT_LOCAL: 'WARDEN_E_POPUP_NOT_LOCAL',
  /** More blocked pop-up reports arrived than the endpoint logs (50 per second, bursts of 200); this one was dropped. */
  POPUP_THROTTLED: 'WARDEN_E_POPUP_THROTTLED',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Codes that were used once and must never be given a new meaning. */
export const RETIRED_CODES: readonly string[] = [];

/** One problem found in an input, located as precisely as the input allows. */
export interface Problem {
  /** File name, when the input came from a file. */
  file?: string;
  /** 1-based line and column in that file, when known. */
  line?: number;
  column?: number;
  /** Path of the offending field inside the document, e.g. ['rules', 3, 'remotePorts']. */
  path: readonly (string | number)[];
  /** Name of the rule the problem is in, when it is in a rule. */
  rule?: string;
  /** What is wrong, in plain words. */
  message: string;
}

/** Warden's one error class: a stable code, a message, and optional details and suggestion. */
export class WardenError extends Error {
  readonly code: ErrorCode;
  readonly problems: readonly Problem[];
  readonly suggestion: string | undefined;
  /** For WARDEN_E_AUTH_THROTTLED: milliseconds until another attempt is accepted. */
  readonly retryAfterMs: number | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: {
      problems?: readonly Problem[];
      suggestion?: string;
      cause?: unknown;
      retryAfterMs?: number;
    } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WardenError';
    this.code = code;
    this.problems = options.problems ?? [];
    this.suggestion = options.suggestion;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** Renders a problem as one line: `file:line:col: rules[3] (rule "ssh") remotePorts: message`. */
export function formatProblem(p: Problem): string {
  const where =
    p.file === undefined ? '' : `${p.file}${p.line === undefined ? '' : `:${p.line}:${p.column ?? 1}`}: `;
  const path = formatPath(p.path);
  const rule = p.rule === undefined ? '' : ` (rule "${p.rule}")`;
  if (path === '' && rule === '') return `${where}${p.message}`;
  return `${where}${path === '' ? '(document)' : path}${rule}: ${p.message}`;
}

/** Formats a document path the way a reader of the YAML file would write it: rules[3].remotePorts. */
export function formatPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? part : `.${part}`;
  }
  return out;
}
