/**
 * Executables seen before (docs/attribution.md, "Executables seen before"): the path of each
 * executable file the engine has read from /proc, kept by the identity the BPF programs record of
 * a process's executable (RecordedExecutable: mount, device, inode, generation, change time). A
 * new process of a known executable is then named from its record alone, with no /proc read.
 *
 * A path is learned only from a read that cannot race an exec: the native procProcess opens
 * /proc/PID/exe (O_PATH) and gives that descriptor's path with its mount id and inode, which must
 * be the recorded ones. Only files on local file systems are read so (an O_PATH open on NFS
 * revalidates the file's attributes, which can wait for a hung server). A file renamed, linked,
 * replaced or deleted since changes its change time, so its id, and is read again.
 */
import { applicationIdOf } from '../policy/application-ids.js';
import { scriptArgument } from './process-info.js';
import type { CurrentExecutable, RecordedExecutable } from './socket-lookup.js';

/** A command line as a record holds it, split once per executable and text (identities share the array). */
export interface RecordedCommandLine {
  readonly commandLine: readonly string[];
  /** The interpreter's script argument as written (absolute), or null (not an interpreter, no script). */
  readonly argument: string | null;
}

/** Command lines kept per executable (a program run again and again with the same arguments). */
const COMMAND_LINES_PER_EXECUTABLE = 32;

/** What is kept of a known executable: its path, and what was made of its recent command lines. */
export class KnownExecutable {
  private readonly lines = new Map<string, RecordedCommandLine | null>();

  /** The path's application number (application-ids.ts), given once. */
  readonly applicationId: number;

  constructor(readonly path: string) {
    this.applicationId = applicationIdOf(path);
  }

  /**
   * The record's command line (NUL-separated, as /proc/PID/cmdline) split, with the script argument
   * of an interpreter; null when the record cannot name the process (no argv[0], or a script path
   * relative to the process's cwd, which only /proc gives). Built once per text.
   */
  commandLine(text: string): RecordedCommandLine | null {
    let line = this.lines.get(text);
    if (line !== undefined) return line;
    const commandLine = (text.endsWith('\0') ? text.slice(0, -1) : text).split('\0');
    const argument = commandLine[0] === '' ? null : scriptArgument(this.path, commandLine);
    line =
      commandLine[0] === '' || (argument !== null && !argument.startsWith('/'))
        ? null
        : { commandLine, argument };
    if (this.lines.size >= COMMAND_LINES_PER_EXECUTABLE) this.lines.delete(this.lines.keys().next().value!);
    this.lines.set(text, line);
    return line;
  }
}

/** statfs magic numbers of local file systems (linux/magic.h), whose dentries never revalidate over a network. */
const LOCAL_FILE_SYSTEMS = new Set([
  0xef53, // ext2, ext3, ext4
  0x58465342, // xfs
  0x9123683e, // btrfs
  0x01021994, // tmpfs
  0x858458f6, // ramfs
  0x73717368, // squashfs
  0xe0f5e1e2, // erofs
  0xf2f52010, // f2fs
  0xca451a4e, // bcachefs
  0x4d44, // vfat, msdos
  0x2011bab0, // exfat
]);

/** The paths of executables by their recorded identity, a bounded map (oldest out first). */
export class KnownExecutables {
  private readonly paths = new Map<string, KnownExecutable>();

  constructor(private readonly size: number) {}

  /** A recorded executable read before (its path without " (deleted)"); undefined when not known. */
  of(exe: RecordedExecutable | undefined): KnownExecutable | undefined {
    return exe === undefined ? undefined : this.paths.get(exe.id);
  }

  /** Whether paths are kept and this executable's may be learned (it is on a local file system). */
  canLearn(exe: RecordedExecutable | undefined): exe is RecordedExecutable {
    return exe !== undefined && this.size > 0 && LOCAL_FILE_SYSTEMS.has(exe.fsMagic);
  }

  /** Keeps the path of what /proc/PID/exe names now when that file is the recorded one. */
  learn(exe: RecordedExecutable, now: CurrentExecutable): void {
    if (now.mount !== exe.mount || now.inode !== exe.inode) return;
    if (this.paths.size >= this.size) this.paths.delete(this.paths.keys().next().value!);
    this.paths.set(exe.id, new KnownExecutable(now.path.replace(/ \(deleted\)$/, '')));
  }

  clear(): void {
    this.paths.clear();
  }
}
