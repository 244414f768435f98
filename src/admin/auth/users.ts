/**
 * The users file: who may log in to the engine remotely, with which role.
 *
 *   { "version": 1, "users": [{ "name": "alice", "role": "administrator",
 *                                "password": "scrypt$32768$8$1$<salt>$<hash>" }] }
 *
 * The file holds password hashes, so it must be readable by its owner only:
 * it is created with mode 0600, every write keeps that mode, and a file that
 * group or others could read or write is refused. Writes are atomic.
 */
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ErrorCode, WardenError } from '../../errors.js';
import type { Role } from '../../protocol/methods.js';
import { assertPrivateFile, ensureDirectory, statIfExists, writeFileAtomic } from '../private-file.js';
import {
  DEFAULT_SCRYPT_COST,
  dummyPasswordHash,
  hashPassword,
  type PasswordHash,
  parsePasswordHash,
  type ScryptCost,
  verifyPasswordHash,
} from './password-hash.js';

/** A user as the engine shows it: never the hash. */
export interface User {
  readonly name: string;
  readonly role: Role;
}

interface StoredUser extends User {
  readonly password: string;
}

export const USER_NAME_PATTERN = /^[a-z_][a-z0-9_.-]{0,31}$/i;
export const MIN_PASSWORD_LENGTH = 8;
/** Longer passwords are refused: nobody types them, and they only cost hashing time. */
export const MAX_PASSWORD_LENGTH = 1024;
const ROLES: readonly Role[] = ['administrator', 'auditor'];

export interface UserStoreOptions {
  /** scrypt cost of new hashes. Default N=2^15, r=8, p=1; tests pass a smaller one. */
  readonly scryptCost?: ScryptCost;
}

function paramsError(message: string, field: string, suggestion?: string): WardenError {
  return new WardenError(ErrorCode.PARAMS_INVALID, message, {
    problems: [{ path: [field], message }],
    ...(suggestion === undefined ? {} : { suggestion }),
  });
}

/** Refuses a user name that is not 1–32 letters, digits, '_', '.', '-', starting with a letter or '_'. */
export function validateUserName(name: string): void {
  if (typeof name !== 'string' || !USER_NAME_PATTERN.test(name)) {
    throw paramsError(
      `invalid user name ${JSON.stringify(name)}: use 1 to 32 letters, digits, '_', '.' or '-', starting with a letter or '_'`,
      'name',
    );
  }
}

/** Refuses a password shorter than 8 characters (or absurdly long). */
export function validatePassword(password: string): void {
  if (typeof password !== 'string' || [...password].length < MIN_PASSWORD_LENGTH) {
    throw paramsError(
      `the password is too short: it needs at least ${MIN_PASSWORD_LENGTH} characters`,
      'password',
      'choose a longer password; a few unrelated words are easy to type and hard to guess',
    );
  }
  if (password.length > MAX_PASSWORD_LENGTH) {
    throw paramsError(`the password is too long: at most ${MAX_PASSWORD_LENGTH} characters`, 'password');
  }
}

function validateRole(role: string): asserts role is Role {
  if (!ROLES.includes(role as Role)) {
    throw paramsError(`invalid role ${JSON.stringify(role)}: use "administrator" or "auditor"`, 'role');
  }
}

function malformed(path: string, why: string): WardenError {
  return new WardenError(ErrorCode.FILE_IO, `the users file ${path} is malformed: ${why}`, {
    suggestion: `fix or remove ${path} (a missing file is created empty)`,
  });
}

/** Parses the users file's text; throws WARDEN_E_FILE_IO naming the file and the entry when it is not valid. */
function parseUsersFile(path: string, text: string): StoredUser[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw malformed(path, (e as Error).message);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw malformed(path, 'not a JSON object');
  const { version, users } = doc as { version?: unknown; users?: unknown };
  if (version !== 1) throw malformed(path, `unsupported version ${JSON.stringify(version)} (expected 1)`);
  if (!Array.isArray(users)) throw malformed(path, '"users" is not an array');
  const seen = new Set<string>();
  return users.map((u: unknown, i): StoredUser => {
    const where = `users[${i}]`;
    if (typeof u !== 'object' || u === null) throw malformed(path, `${where} is not an object`);
    const { name, role, password } = u as Record<string, unknown>;
    if (typeof name !== 'string' || !USER_NAME_PATTERN.test(name))
      throw malformed(path, `${where}.name is not a valid user name`);
    if (seen.has(name.toLowerCase())) throw malformed(path, `${where}: user ${name} is listed twice`);
    seen.add(name.toLowerCase());
    if (typeof role !== 'string' || !ROLES.includes(role as Role))
      throw malformed(path, `${where} (${name}): role must be "administrator" or "auditor"`);
    if (typeof password !== 'string' || parsePasswordHash(password) === undefined)
      throw malformed(path, `${where} (${name}): password is not a scrypt hash`);
    return { name, role: role as Role, password };
  });
}

function serialize(users: readonly StoredUser[]): string {
  const out = users.map((u) => ({ name: u.name, role: u.role, password: u.password }));
  return `${JSON.stringify({ version: 1, users: out }, null, 2)}\n`;
}

/** The users file, loaded in memory; every change is written through atomically. */
export class UserStore {
  readonly path: string;
  #users: StoredUser[];
  readonly #cost: ScryptCost;
  readonly #dummy: PasswordHash;
  /** Changes run one after another, so two concurrent changes never lose one another. */
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(path: string, users: StoredUser[], cost: ScryptCost) {
    this.path = path;
    this.#users = users;
    this.#cost = cost;
    this.#dummy = dummyPasswordHash(cost);
  }

  /**
   * Opens the users file at `path`, creating an empty one (mode 0600, its
   * directory 0700) when it is missing. Refuses a file group or others could
   * read or write, and a malformed one, with WARDEN_E_FILE_IO.
   */
  static async open(path: string, options: UserStoreOptions = {}): Promise<UserStore> {
    const cost = options.scryptCost ?? DEFAULT_SCRYPT_COST;
    const stats = await statIfExists(path);
    if (stats === undefined) {
      await ensureDirectory(dirname(path));
      await writeFileAtomic(path, serialize([]), 0o600);
      return new UserStore(path, [], cost);
    }
    assertPrivateFile(path, stats, 'users file');
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      throw new WardenError(ErrorCode.FILE_IO, `cannot read ${path}: ${(e as Error).message}`, { cause: e });
    }
    return new UserStore(path, parseUsersFile(path, text), cost);
  }

  /** Every user, in file order, without hashes. */
  list(): User[] {
    return this.#users.map((u) => ({ name: u.name, role: u.role }));
  }

  /** Adds a user. WARDEN_E_PARAMS_INVALID for a bad name, role or password; WARDEN_E_ALREADY_EXISTS for a taken name. */
  async add(name: string, role: Role, password: string): Promise<void> {
    validateUserName(name);
    validateRole(role);
    validatePassword(password);
    if (this.#find(name) !== undefined) throw this.#exists(name);
    const hash = await hashPassword(password, this.#cost);
    await this.#change((users) => {
      if (users.some((u) => sameName(u.name, name))) throw this.#exists(name);
      return [...users, { name, role, password: hash }];
    });
  }

  /** Replaces a user's password. WARDEN_E_NOT_FOUND when there is no such user. */
  async setPassword(name: string, password: string): Promise<void> {
    validatePassword(password);
    if (this.#find(name) === undefined) throw this.#notFound(name);
    const hash = await hashPassword(password, this.#cost);
    await this.#change((users) => {
      if (!users.some((u) => sameName(u.name, name))) throw this.#notFound(name);
      return users.map((u) => (sameName(u.name, name) ? { ...u, password: hash } : u));
    });
  }

  /** Changes a user's role. WARDEN_E_NOT_FOUND when there is no such user. */
  async setRole(name: string, role: Role): Promise<void> {
    validateRole(role);
    await this.#change((users) => {
      if (!users.some((u) => sameName(u.name, name))) throw this.#notFound(name);
      return users.map((u) => (sameName(u.name, name) ? { ...u, role } : u));
    });
  }

  /** The stored spelling and role of a user, or undefined. */
  get(name: string): User | undefined {
    const u = this.#find(name);
    return u === undefined ? undefined : { name: u.name, role: u.role };
  }

  /** Removes a user. WARDEN_E_NOT_FOUND when there is no such user. */
  async remove(name: string): Promise<void> {
    await this.#change((users) => {
      if (!users.some((u) => sameName(u.name, name))) throw this.#notFound(name);
      return users.filter((u) => !sameName(u.name, name));
    });
  }

  /**
   * The user when `password` is theirs, otherwise null. An unknown name costs
   * the same scrypt run as a known one (against a hash no password matches),
   * so timing does not tell which names exist.
   */
  async verify(name: string, password: string): Promise<User | null> {
    const user = typeof name === 'string' ? this.#find(name) : undefined;
    const parsed = user === undefined ? undefined : parsePasswordHash(user.password);
    const ok = await verifyPasswordHash(typeof password === 'string' ? password : '', parsed ?? this.#dummy);
    if (!ok || user === undefined || parsed === undefined) return null;
    return { name: user.name, role: user.role };
  }

  #find(name: string): StoredUser | undefined {
    return this.#users.find((u) => sameName(u.name, name));
  }

  #exists(name: string): WardenError {
    return new WardenError(ErrorCode.ALREADY_EXISTS, `a user named ${name} exists already`, {
      suggestion: 'choose another name, or change that user’s password instead',
    });
  }

  #notFound(name: string): WardenError {
    return new WardenError(ErrorCode.NOT_FOUND, `there is no user named ${JSON.stringify(name)}`, {
      suggestion: 'list the users to see their names',
    });
  }

  /** Computes the new list from the current one, writes it, then makes it current: on a write failure nothing changes. */
  #change(next: (users: readonly StoredUser[]) => StoredUser[]): Promise<void> {
    const run = this.#queue.then(async () => {
      const users = next(this.#users);
      await writeFileAtomic(this.path, serialize(users), 0o600);
      this.#users = users;
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }
}

/** User names are matched without regard to case: "Alice" and "alice" are one user. */
function sameName(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}
