/**
 * Accounts: names, rights and 256-bit keys, kept in `users.json` under the
 * data dir with mode 0600 and replaced atomically. Keys are never logged.
 *
 * @module
 */
import { decodeHex } from "@std/encoding/hex";
import { join } from "@std/path";
import { randomBytes } from "node:crypto";
import { RequestError } from "./errors.ts";

/** One account. `key` is the hex-encoded 32-byte secret. */
export interface UserRecord {
  name: string;
  key: string;
  admin: boolean;
  exec: boolean;
  created: string;
}

/** An account without its key, safe to print. */
export type PublicUser = Omit<UserRecord, "key">;

const _NAME = /^[a-z0-9_][a-z0-9_.-]{0,31}$/;

/** Checks a user name: 1–32 of `a-z 0-9 _ . -`, not starting with `.` or `-`. */
export function validUserName(name: string): boolean {
  return _NAME.test(name);
}

/** The account file. Re-reads it when another process (`parley user add`) changed it. */
export class UserStore {
  readonly path: string;
  #users = new Map<string, UserRecord>();
  #mtime = -1;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(path: string) {
    this.path = path;
  }

  /** Opens (or creates) the account file in `dataDir`. */
  static async open(dataDir: string): Promise<UserStore> {
    await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
    const store = new UserStore(join(dataDir, "users.json"));
    await store.#reload();
    return store;
  }

  /** Number of accounts. */
  get size(): number {
    return this.#users.size;
  }

  /** The record for `name`, refreshed from disk if the file changed. */
  async get(name: string): Promise<UserRecord | undefined> {
    await this.#reload();
    return this.#users.get(name);
  }

  /** The key bytes for `name`, or undefined. */
  async keyFor(name: string): Promise<Uint8Array | undefined> {
    const u = await this.get(name);
    return u ? decodeHex(u.key) : undefined;
  }

  /** All accounts without keys, sorted by name. */
  async list(): Promise<PublicUser[]> {
    await this.#reload();
    return [...this.#users.values()]
      .map(({ key: _key, ...rest }) => rest)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Runs `fn` after every earlier change, so concurrent changes never lose each other. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(fn, fn);
    this.#queue = next.catch(() => {});
    return next;
  }

  /** Creates an account and returns its key (hex). The only time the key is shown. */
  add(name: string, rights: { admin?: boolean; exec?: boolean } = {}): Promise<string> {
    return this.#serial(() => this.#add(name, rights));
  }

  /** Deletes an account. */
  remove(name: string): Promise<void> {
    return this.#serial(() => this.#remove(name));
  }

  async #add(name: string, rights: { admin?: boolean; exec?: boolean }): Promise<string> {
    if (!validUserName(name)) {
      throw new RequestError(
        "bad_request",
        `invalid user name ${JSON.stringify(name)}: use 1-32 of a-z 0-9 _ . - (lower case)`,
      );
    }
    await this.#reload();
    if (this.#users.has(name)) throw new RequestError("exists", `user ${name} already exists`);
    const key = randomBytes(32).toString("hex");
    this.#users.set(name, {
      name,
      key,
      admin: rights.admin ?? false,
      exec: rights.exec ?? false,
      created: new Date().toISOString(),
    });
    await this.#save();
    return key;
  }

  async #remove(name: string): Promise<void> {
    await this.#reload();
    if (!this.#users.delete(name)) throw new RequestError("not_found", `no user named ${name}`);
    await this.#save();
  }

  async #reload(): Promise<void> {
    let mtime: number;
    try {
      mtime = (await Deno.stat(this.path)).mtime?.getTime() ?? 0;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        this.#users.clear();
        this.#mtime = -1;
        return;
      }
      throw e;
    }
    if (mtime === this.#mtime) return;
    const text = await Deno.readTextFile(this.path);
    const parsed = JSON.parse(text) as { users?: UserRecord[] };
    this.#users = new Map((parsed.users ?? []).map((u) => [u.name, u]));
    this.#mtime = mtime;
  }

  async #save(): Promise<void> {
    const tmp = `${this.path}.${crypto.randomUUID()}.tmp`;
    const body = JSON.stringify({ users: [...this.#users.values()] }, null, 2) + "\n";
    const f = await Deno.open(tmp, { write: true, createNew: true, mode: 0o600 });
    try {
      await f.write(new TextEncoder().encode(body));
      await f.sync();
    } finally {
      f.close();
    }
    await Deno.rename(tmp, this.path);
    this.#mtime = (await Deno.stat(this.path)).mtime?.getTime() ?? 0;
  }
}
