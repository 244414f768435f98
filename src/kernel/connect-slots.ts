/**
 * The engine's side of the connect-time slots (native/bpf_tuple.c, docs/attribution.md
 * "Connect-time slots"): a TCP connection's socket and record, read from the memory-mapped slot
 * its connect filled, without a system call. The native lookup copies the slot's numbers into the
 * caller's Float64Array and its strings' bytes into a Uint8Array (struct bpf_tuple_answer) and
 * makes no JS value; the strings are made here and kept by their bytes, so the next process of the
 * same program (same comm, executable and command line) gets the same strings without decoding.
 */
import type { RecordedExecutable } from './socket-lookup.js';

/** The native functions of the slots (src/kernel/native.ts's addon). */
export interface SlotNative {
  bpfTupleOpen(cgroup: string, attribution: unknown): unknown;
  bpfTupleLookup(
    handle: unknown,
    family: number,
    src: string,
    sport: number,
    dst: string,
    dport: number,
    numbers: Float64Array,
    bytes: Uint8Array,
  ): boolean;
  bpfTupleStats(handle: unknown): readonly [number, number, number, number, number, number];
  bpfTupleClose(handle: unknown): void;
}

/**
 * Which way the BPF path found sockets since it was opened: TCP connections from the connect-time
 * slots (memory, no system call), the others by sock_diag; the slots' misses by reason (empty: no
 * connect seen, or its socket closed; other: another connection's tuple; busy: being written;
 * poisoned: two connects met on the slot; unread: the record or the socket's owner missing).
 * engine.status sends it as the protocol's AttributionLookups (src/protocol/methods.ts), which this
 * layer may not import; test/shape/layer-types.test.ts keeps the two the same type.
 */
export interface AttributionLookups {
  /** `on`, `off`, or why the kernel refused the slots. */
  readonly slots: string;
  readonly fromSlots: number;
  readonly bySockDiag: number;
  readonly slotMisses: {
    readonly empty: number;
    readonly other: number;
    readonly busy: number;
    readonly poisoned: number;
    readonly unread: number;
  };
}

/** What a slot gives: the SocketOwner of native.ts with its RecordedProcess (same fields, same values). */
export interface SlotOwner {
  readonly inode: number;
  readonly uid: number;
  readonly state: number;
  readonly cookie: string;
  readonly process: {
    pid: number;
    tid: number;
    uid: number;
    gid: number;
    bootNs: number;
    comm: string;
    commandLine?: string;
    hook?: 'create' | 'connect' | 'sendmsg';
    euid?: number;
    parentPid?: number;
    executable?: RecordedExecutable;
  };
}

/** struct bpf_tuple_answer (native/bpf_tuple.h), in 32-bit words. */
const ANSWER_BYTES = 80 + 256;
const W_COOKIE = 0;
const W_COMM_LEN = 2;
const W_ARGS_LEN = 3;
const W_COMM = 4;
const W_EXE = 8; // exe_known .. path_hash: 12 words
const B_ARGS = 80;
const HOOKS = ['create', 'connect', 'sendmsg'] as const;

/** Values made from a range of the answer's words, kept by those words (and a length). */
class Interned<T> {
  private readonly entries = new Map<number, { words: Uint32Array; length: number; value: T }>();
  constructor(
    private readonly words: Uint32Array,
    private readonly max: number,
  ) {}

  get(from: number, count: number, length: number, make: () => T): T {
    const w = this.words;
    let h = Math.imul(0x811c9dc5 ^ length, 0x01000193);
    for (let i = from; i < from + count; i++) h = Math.imul(h ^ w[i]!, 0x01000193);
    const e = this.entries.get(h);
    if (e !== undefined && e.length === length && e.words.length === count) {
      let same = true;
      for (let i = 0; i < count && same; i++) same = e.words[i] === w[from + i];
      if (same) return e.value;
    }
    const value = make();
    if (this.entries.size >= this.max) this.entries.clear();
    this.entries.set(h, { words: w.slice(from, from + count), length, value });
    return value;
  }
}

/** The slots of one BPF attribution (openBpfAttribution), or why there are none. */
export class ConnectSlots {
  private handle: unknown;
  private readonly why: string;
  private bySockDiag = 0;
  private readonly bytes = Buffer.alloc(ANSWER_BYTES);
  private readonly words = new Uint32Array(this.bytes.buffer, this.bytes.byteOffset, ANSWER_BYTES / 4);
  private readonly comms = new Interned<string>(this.words, 256);
  private readonly commandLines = new Interned<string>(this.words, 1024);
  private readonly executables = new Interned<{ id: string; inode: string }>(this.words, 1024);

  /** Opens the slots on `cgroup` for the attribution `handle` (on: false, or refused: none, with why). */
  constructor(
    private readonly native: SlotNative,
    cgroup: string,
    attribution: unknown,
    on: boolean,
  ) {
    this.why = on ? 'on' : 'off';
    if (!on) return;
    try {
      this.handle = native.bpfTupleOpen(cgroup, attribution);
    } catch (e) {
      this.why = `refused: ${(e as Error).message}`;
    }
  }

  /**
   * The socket of a connection from its slot (src the local end); null when the slot does not hold
   * it (UDP, a connection this host did not make, or any check failing): sock_diag is then asked,
   * and counted.
   */
  find(
    protocol: 'tcp' | 'udp',
    family: 4 | 6,
    src: string,
    sport: number,
    dst: string,
    dport: number,
    n: Float64Array,
  ): SlotOwner | null {
    if (
      protocol !== 'tcp' ||
      this.handle === undefined ||
      !this.native.bpfTupleLookup(this.handle, family, src, sport, dst, dport, n, this.bytes)
    ) {
      this.bySockDiag++;
      return null;
    }
    const w = this.words;
    const hi = w[W_COOKIE + 1]!;
    const lo = w[W_COOKIE]!;
    // Cookies count sockets since boot: a Number is exact below 2^53.
    const cookie =
      hi < 0x200000 ? String(hi * 0x100000000 + lo) : ((BigInt(hi) << 32n) | BigInt(lo)).toString();
    const commLength = w[W_COMM_LEN]!;
    const comm = this.comms.get(W_COMM, 4, commLength, () =>
      this.bytes.toString('utf8', 16, 16 + commLength),
    );
    const process: SlotOwner['process'] = {
      pid: n[4]!,
      tid: n[5]!,
      uid: n[6]!,
      gid: n[7]!,
      bootNs: n[8]!,
      comm,
    };
    const argsLength = w[W_ARGS_LEN]!;
    if (argsLength > 0)
      process.commandLine = this.commandLines.get(B_ARGS / 4, (argsLength + 3) >> 2, argsLength, () =>
        this.bytes.toString('utf8', B_ARGS, B_ARGS + argsLength),
      );
    const hook = HOOKS[n[9]!];
    if (hook !== undefined) process.hook = hook;
    if (!Number.isNaN(n[10])) process.euid = n[10]!;
    if (!Number.isNaN(n[11])) process.parentPid = n[11]!;
    if (w[W_EXE] === 1) {
      const exe = this.executables.get(W_EXE, 12, 0, () => this.executableId());
      process.executable = { id: exe.id, mount: n[12]!, inode: exe.inode, fsMagic: n[13]! };
    }
    return { inode: n[0]!, uid: n[1]!, state: n[2]!, cookie, process };
  }

  /** The executable's id as sock_diag.c writes it: mount:dev:ino:generation:ctime.nsec:pathhash. */
  private executableId(): { id: string; inode: string } {
    const b = this.bytes;
    const inode = b.readBigUInt64LE(48).toString();
    const id = `${b.readInt32LE(36)}:${b.readUInt32LE(40)}:${inode}:${b.readUInt32LE(44)}:${b.readBigInt64LE(56)}.${b.readUInt32LE(64)}:${b.readBigUInt64LE(72).toString(16)}`;
    return { id, inode };
  }

  lookups(): AttributionLookups {
    const s = this.handle !== undefined ? this.native.bpfTupleStats(this.handle) : [0, 0, 0, 0, 0, 0];
    const [fromSlots, empty, other, busy, poisoned, unread] = s;
    return {
      slots: this.why,
      fromSlots: fromSlots ?? 0,
      bySockDiag: this.bySockDiag,
      slotMisses: {
        empty: empty ?? 0,
        other: other ?? 0,
        busy: busy ?? 0,
        poisoned: poisoned ?? 0,
        unread: unread ?? 0,
      },
    };
  }

  close(): void {
    if (this.handle !== undefined) this.native.bpfTupleClose(this.handle);
    this.handle = undefined;
  }
}
