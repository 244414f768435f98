/** JSON-RPC 2.0 messages: types, guards and the error-number table. */
import { ErrorCode as Codes, type ErrorCode, type Problem } from '../errors.js';

export type JsonRpcId = string | number;

export interface JsonRpcRequest {
  readonly jsonrpc: '2.0';
  readonly id: JsonRpcId;
  readonly method: string;
  readonly params?: unknown;
}

export interface JsonRpcNotification {
  readonly jsonrpc: '2.0';
  readonly method: string;
  readonly params?: unknown;
}

/** The `data` of every Warden error response: the stable code and what helps a user fix it. */
export interface WardenErrorData {
  readonly code: ErrorCode;
  readonly problems?: readonly Problem[];
  readonly suggestion?: string;
  /** For WARDEN_E_AUTH_THROTTLED: milliseconds until the next attempt is accepted. */
  readonly retryAfterMs?: number;
}

export interface JsonRpcErrorObject {
  readonly code: number;
  readonly message: string;
  readonly data?: WardenErrorData;
}

export interface JsonRpcSuccess {
  readonly jsonrpc: '2.0';
  readonly id: JsonRpcId;
  readonly result: unknown;
}

export interface JsonRpcFailure {
  readonly jsonrpc: '2.0';
  readonly id: JsonRpcId | null;
  readonly error: JsonRpcErrorObject;
}

export type JsonRpcResponse = JsonRpcSuccess | JsonRpcFailure;
export type JsonRpcMessage = JsonRpcRequest | JsonRpcNotification | JsonRpcResponse;

/** The reserved JSON-RPC numbers. */
export const RpcErrorNumber = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
} as const;

/** Warden codes as JSON-RPC numbers, in the implementation-defined range -32000..-32099. */
const NUMBER_OF_CODE: Partial<Record<ErrorCode, number>> = {
  [Codes.PROTOCOL]: RpcErrorNumber.INVALID_REQUEST,
  [Codes.METHOD_UNKNOWN]: RpcErrorNumber.METHOD_NOT_FOUND,
  [Codes.PARAMS_INVALID]: RpcErrorNumber.INVALID_PARAMS,
  [Codes.INTERNAL]: RpcErrorNumber.INTERNAL_ERROR,
  [Codes.NOT_AUTHENTICATED]: -32001,
  [Codes.AUTH_FAILED]: -32002,
  [Codes.AUTH_THROTTLED]: -32003,
  [Codes.FORBIDDEN]: -32004,
  [Codes.NOT_FOUND]: -32005,
  [Codes.ALREADY_EXISTS]: -32006,
  [Codes.REMOTE_DISABLED]: -32007,
  [Codes.POLICY_INVALID]: -32010,
  [Codes.SETTINGS_INVALID]: -32011,
  [Codes.CONNECTION_INVALID]: -32012,
  [Codes.LOCKOUT_RISK]: -32013,
};

/** The JSON-RPC error number for a Warden code (-32000 for codes without their own). */
export function rpcNumberOf(code: ErrorCode): number {
  return NUMBER_OF_CODE[code] ?? -32000;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isId(v: unknown): v is JsonRpcId {
  return typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));
}

/** Classifies a parsed JSON value as a JSON-RPC message, or says why it is not one. */
export function classify(
  v: unknown,
):
  | { kind: 'request'; message: JsonRpcRequest }
  | { kind: 'notification'; message: JsonRpcNotification }
  | { kind: 'response'; message: JsonRpcResponse }
  | { kind: 'invalid'; id: JsonRpcId | null; reason: string } {
  if (!isObject(v)) return { kind: 'invalid', id: null, reason: 'a message must be a JSON object' };
  const id = isId(v.id) ? v.id : null;
  if (v.jsonrpc !== '2.0') return { kind: 'invalid', id, reason: 'jsonrpc must be "2.0"' };
  if ('method' in v) {
    if (typeof v.method !== 'string' || v.method === '')
      return { kind: 'invalid', id, reason: 'method must be a non-empty string' };
    if ('params' in v && !isObject(v.params) && !Array.isArray(v.params)) {
      return { kind: 'invalid', id, reason: 'params must be an object' };
    }
    if (!('id' in v)) return { kind: 'notification', message: v as unknown as JsonRpcNotification };
    if (!isId(v.id)) return { kind: 'invalid', id: null, reason: 'id must be a string or a number' };
    return { kind: 'request', message: v as unknown as JsonRpcRequest };
  }
  if ('result' in v || 'error' in v) {
    if (v.id !== null && !isId(v.id))
      return { kind: 'invalid', id: null, reason: 'response id must be a string, number or null' };
    if (
      'error' in v &&
      (!isObject(v.error) || typeof v.error.code !== 'number' || typeof v.error.message !== 'string')
    ) {
      return { kind: 'invalid', id, reason: 'error must have a numeric code and a message' };
    }
    return { kind: 'response', message: v as unknown as JsonRpcResponse };
  }
  return { kind: 'invalid', id, reason: 'a message needs a method, a result or an error' };
}
