/**
 * One JSON-RPC 2.0 peer over any byte stream (a TLS socket in production,
 * an in-memory duplex pair in tests): framing, request/response correlation,
 * timeouts, and error objects. It knows nothing of sessions or roles; the
 * server decides what a request may do through the handler it installs.
 */
import type { Duplex } from 'node:stream';
import { ErrorCode, type Problem, WardenError } from '../errors.js';
import { encodeFrame, FrameDecoder, FrameError } from '../protocol/frame.js';
import {
  classify,
  type JsonRpcErrorObject,
  type JsonRpcId,
  type JsonRpcMessage,
  type JsonRpcRequest,
  RpcErrorNumber,
  rpcNumberOf,
  type WardenErrorData,
} from '../protocol/jsonrpc.js';
import type { Method } from '../protocol/methods.js';

/** Answers one request: returns the result or throws (WardenError for an error the caller can act on). */
export type RequestHandler = (request: JsonRpcRequest) => Promise<unknown>;
export type NotificationHandler = (method: string, params: unknown) => void;

export interface PeerOptions {
  /** Largest frame accepted, in bytes (default 1 MiB). */
  readonly maxFrameBytes?: number;
  /** How long a request waits for its response, in ms (default 30 s). */
  readonly requestTimeoutMs?: number;
  /** A frame begun must be complete within this time, or the peer closes (default: no limit). */
  readonly partialFrameTimeoutMs?: number;
  /**
   * While more than this many bytes wait to be written (the other side sends requests but does not read
   * the answers), no more input is read; reading resumes once they are written (default 8 MiB).
   */
  readonly maxWriteBacklogBytes?: number;
}

/** Why a peer closed. */
export interface CloseInfo {
  readonly reason: string;
  readonly error?: Error;
}

/** Converts an error to a JSON-RPC error object. Unexpected errors become INTERNAL without details. */
export function toErrorObject(error: unknown): JsonRpcErrorObject {
  if (error instanceof WardenError) {
    const data: WardenErrorData = {
      code: error.code,
      ...(error.problems.length > 0 ? { problems: error.problems } : {}),
      ...(error.suggestion ? { suggestion: error.suggestion } : {}),
      ...(error.retryAfterMs !== undefined ? { retryAfterMs: error.retryAfterMs } : {}),
    };
    return { code: rpcNumberOf(error.code), message: error.message, data };
  }
  return {
    code: RpcErrorNumber.INTERNAL_ERROR,
    message: 'internal error',
    data: { code: ErrorCode.INTERNAL },
  };
}

/** Converts an error object from the wire back to a WardenError. */
export function fromErrorObject(e: JsonRpcErrorObject): WardenError {
  const data = e.data;
  const code = (data?.code ?? ErrorCode.INTERNAL) as WardenError['code'];
  return new WardenError(code, e.message, {
    ...(data?.problems ? { problems: data.problems as Problem[] } : {}),
    ...(data?.suggestion ? { suggestion: data.suggestion } : {}),
    ...(data?.retryAfterMs !== undefined ? { retryAfterMs: data.retryAfterMs } : {}),
  });
}

interface Pending {
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
  readonly method: string;
}

/** A JSON-RPC peer. Does NOT own the stream's lifecycle beyond ending it in close(). */
export class RpcPeer {
  readonly #stream: Duplex;
  #decoder: FrameDecoder;
  readonly #timeoutMs: number;
  readonly #partialFrameMs: number | undefined;
  readonly #maxBacklog: number;
  #partialTimer: NodeJS.Timeout | undefined;
  readonly #pending = new Map<JsonRpcId, Pending>();
  #nextId = 1;
  #requestHandler: RequestHandler | undefined;
  #notificationHandler: NotificationHandler | undefined;
  readonly #closeHandlers: ((info: CloseInfo) => void)[] = [];
  #closed: CloseInfo | undefined;

  constructor(stream: Duplex, options: PeerOptions = {}) {
    this.#stream = stream;
    this.#decoder = new FrameDecoder({ maxFrameBytes: options.maxFrameBytes });
    this.#timeoutMs = options.requestTimeoutMs ?? 30_000;
    this.#partialFrameMs = options.partialFrameTimeoutMs;
    this.#maxBacklog = options.maxWriteBacklogBytes ?? 8 * 1024 * 1024;
    stream.on('data', (chunk: Buffer) => this.#onData(chunk));
    stream.on('drain', () => {
      if (stream.isPaused() && !this.#closed) stream.resume();
    });
    stream.on('end', () => this.close('the peer ended the connection'));
    stream.on('close', () => this.close('the connection closed'));
    stream.on('error', (error: Error) => this.close(`connection error: ${error.message}`, error));
  }

  /** Bytes written but not yet sent (the stream's backlog): how far the other side is behind. */
  get bufferedBytes(): number {
    return this.#stream.writableLength;
  }

  /** Calls `handler` each time the stream's backlog has been written out. */
  onDrain(handler: () => void): void {
    this.#stream.on('drain', handler);
  }

  /** Changes the largest frame accepted from now on (e.g. larger once logged in). */
  setMaxFrameBytes(maxFrameBytes: number): void {
    if (this.#decoder.buffered > 0) return;
    this.#decoder = new FrameDecoder({ maxFrameBytes });
  }

  /** True once the peer has closed (for any reason). */
  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /** Installs the handler for incoming requests (server side). */
  onRequest(handler: RequestHandler): void {
    this.#requestHandler = handler;
  }

  /** Installs the handler for incoming notifications. */
  onNotification(handler: NotificationHandler): void {
    this.#notificationHandler = handler;
  }

  /** Registers a callback for when the peer closes; called once. */
  onClose(handler: (info: CloseInfo) => void): void {
    if (this.#closed) handler(this.#closed);
    else this.#closeHandlers.push(handler);
  }

  /** Calls a method and resolves with its result, or rejects with a WardenError. */
  call<P, R>(method: Method<P, R>, params: P): Promise<R> {
    return this.request(method.name, params) as Promise<R>;
  }

  /** Sends a request by name (untyped). */
  request(method: string, params: unknown): Promise<unknown> {
    if (this.#closed) {
      return Promise.reject(
        new WardenError(ErrorCode.CONNECTION_FAILED, `connection closed: ${this.#closed.reason}`),
      );
    }
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new WardenError(ErrorCode.TIMEOUT, `${method}: no answer within ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
      timer.unref();
      this.#pending.set(id, { resolve, reject, timer, method });
      this.#send({ jsonrpc: '2.0', id, method, params });
    });
  }

  /** Sends a notification (no answer expected). Returns false when the stream buffers (backpressure). */
  notify(method: string, params: unknown): boolean {
    return this.#send({ jsonrpc: '2.0', method, params });
  }

  /** Closes the peer: rejects pending requests and ends the stream. Safe to call repeatedly. */
  close(reason = 'closed', error?: Error): void {
    if (this.#closed) return;
    this.#closed = error ? { reason, error } : { reason };
    if (this.#partialTimer) clearTimeout(this.#partialTimer);
    for (const [, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(new WardenError(ErrorCode.CONNECTION_FAILED, `${p.method}: connection closed (${reason})`));
    }
    this.#pending.clear();
    this.#stream.end();
    for (const h of this.#closeHandlers.splice(0)) h(this.#closed);
  }

  #send(message: JsonRpcMessage): boolean {
    if (this.#stream.destroyed || this.#stream.writableEnded || !this.#stream.writable) return false;
    const ok = this.#stream.write(encodeFrame(JSON.stringify(message)));
    if (this.#stream.writableLength > this.#maxBacklog) this.#stream.pause();
    return ok;
  }

  #onData(chunk: Buffer): void {
    let frames: Buffer[];
    try {
      frames = this.#decoder.push(chunk);
    } catch (e) {
      if (e instanceof FrameError) {
        this.#send({
          jsonrpc: '2.0',
          id: null,
          error: toErrorObject(new WardenError(ErrorCode.PROTOCOL, `${e.message}; closing the connection`)),
        });
        this.close(`protocol error: ${e.message}`);
        return;
      }
      throw e;
    }
    this.#watchPartialFrame(frames.length > 0);
    for (const frame of frames) this.#onFrame(frame);
    // Answers pile up unread: stop reading requests until they are written ('drain' resumes).
    if (this.#stream.writableLength > this.#maxBacklog) this.#stream.pause();
  }

  /** A partial frame left in the decoder must be completed in time; a complete one stops the clock. */
  #watchPartialFrame(completedOne: boolean): void {
    if (this.#partialFrameMs === undefined || this.#closed) return;
    if (this.#decoder.buffered === 0 || completedOne) {
      if (this.#partialTimer) clearTimeout(this.#partialTimer);
      this.#partialTimer = undefined;
    }
    if (this.#decoder.buffered > 0 && this.#partialTimer === undefined) {
      const ms = this.#partialFrameMs;
      this.#partialTimer = setTimeout(() => {
        this.close(`a frame was not completed within ${ms} ms`);
        this.#stream.destroy();
      }, ms);
      this.#partialTimer.unref();
    }
  }

  #onFrame(frame: Buffer): void {
    let value: unknown;
    try {
      value = JSON.parse(frame.toString('utf8'));
    } catch (e) {
      this.#send({
        jsonrpc: '2.0',
        id: null,
        error: {
          code: RpcErrorNumber.PARSE_ERROR,
          message: `frame is not JSON: ${(e as Error).message}`,
          data: { code: ErrorCode.PROTOCOL },
        },
      });
      return;
    }
    const c = classify(value);
    switch (c.kind) {
      case 'invalid':
        this.#send({
          jsonrpc: '2.0',
          id: c.id,
          error: {
            code: RpcErrorNumber.INVALID_REQUEST,
            message: `not a JSON-RPC 2.0 message: ${c.reason}`,
            data: { code: ErrorCode.PROTOCOL },
          },
        });
        return;
      case 'notification':
        this.#notificationHandler?.(c.message.method, c.message.params);
        return;
      case 'response': {
        const m = c.message;
        const p = m.id === null ? undefined : this.#pending.get(m.id);
        if (p === undefined) return;
        this.#pending.delete(m.id!);
        clearTimeout(p.timer);
        if ('error' in m) p.reject(fromErrorObject(m.error));
        else p.resolve(m.result);
        return;
      }
      case 'request':
        void this.#answer(c.message);
        return;
    }
  }

  async #answer(request: JsonRpcRequest): Promise<void> {
    const handler = this.#requestHandler;
    if (handler === undefined) {
      this.#send({
        jsonrpc: '2.0',
        id: request.id,
        error: {
          code: RpcErrorNumber.METHOD_NOT_FOUND,
          message: 'this peer accepts no requests',
          data: { code: ErrorCode.METHOD_UNKNOWN },
        },
      });
      return;
    }
    try {
      const result = await handler(request);
      this.#send({ jsonrpc: '2.0', id: request.id, result: result ?? {} });
    } catch (error) {
      this.#send({ jsonrpc: '2.0', id: request.id, error: toErrorObject(error) });
    }
  }
}
