/**
 * Accounts: names, rights and 256-bit keys, kept in `users.json` under the
 * data dir with mode 0600 and replaced atomically. Keys are never logged.
 *
 * @module
 */
import { decodeHex } from "@std/encoding/hex";
import { basename, dirname, join } from "@std/path";
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

/** Options for {@linkcode UserStore.watch}. */
export interface WatchOptions {
  /** How long to wait after a change is seen before reading the file (ms). Default 50. */
  debounceMs?: number;
  /** How often to check the file's identity when no change event came (ms). Default 1000. */
  pollMs?: number;
  /** Listen for file-system events (default true); false leaves only the periodic check. */
  events?: boolean;
  /** Told when a re-read fails (e.g. a hand-edited file with a syntax error). */
  onError?: (e: Error) => void;
}

/** Rights an account may hold. */
export interface Rights {
  admin?: boolean;
  exec?: boolean;
}

/**
 * The account file. Re-reads it when another process (`parley user add`)
 * changed it: on each lookup that goes through the file, and, while
 * {@linkcode UserStore.watch} runs, as soon as the file changes. Every record
 * is replaced, never modified, so a holder of an old record can compare it
 * with the current one.
 */
export class UserStore {
  readonly path: string;
  #users = new Map<string, UserRecord>();
  /** Identity of the file last read: inode, size and mtime (the file is replaced on each save). */
  #stamp = "";
  #queue: Promise<unknown> = Promise.resolve();
  #listeners = new Set<() => void>();

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
    await this.refresh();
    return this.#users.get(name);
  }

  /** The record for `name` as last read, without touching the disk. */
  peek(name: string): UserRecord | undefined {
    return this.#users.get(name);
  }

  /** The key bytes for `name`, or undefined. */
  async keyFor(name: string): Promise<Uint8Array | undefined> {
    const u = await this.get(name);
    return u ? decodeHex(u.key) : undefined;
  }

  /** All accounts without keys, sorted by name. */
  async list(): Promise<PublicUser[]> {
    await this.refresh();
    return [...this.#users.values()]
      .map(({ key: _key, ...rest }) => rest)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Re-reads the file if another process changed it. */
  refresh(): Promise<void> {
    return this.#serial(() => this.#reload());
  }

  /**
   * Calls `listener` (synchronously) each time the accounts change, whether
   * this process changed them or another one did. Returns a function that
   * removes the listener.
   */
  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Watches the account file for changes made by other processes: a
   * file-system watch on the data dir, debounced, and a cheap periodic check
   * of the file's identity in case the watch misses an event or is not
   * available. Subscribers hear of a change at once. Close the returned
   * handle to stop.
   */
  watch(options: WatchOptions = {}): AsyncDisposable & { close(): Promise<void> } {
    const debounceMs = options.debounceMs ?? 50;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let closed = false;
    let reading: Promise<void> = Promise.resolve();
    const check = () => {
      timer = undefined;
      if (closed) return;
      reading = reading.then(() => this.refresh()).catch((e: unknown) => {
        options.onError?.(e instanceof Error ? e : new Error(String(e)));
      });
    };
    const schedule = () => {
      if (timer === undefined && !closed) timer = setTimeout(check, debounceMs);
    };
    let fsw: Deno.FsWatcher | undefined;
    try {
      if (options.events !== false) fsw = Deno.watchFs(dirname(this.path), { recursive: false });
    } catch {
      // No watch on this system or for this directory (or no inotify instance
      // left): the periodic check covers it.
    }
    const name = basename(this.path);
    const loop = (async () => {
      if (!fsw) return;
      try {
        for await (const ev of fsw) {
          if (ev.paths.some((p) => basename(p) === name)) schedule();
        }
      } catch (e) {
        if (!closed) options.onError?.(e instanceof Error ? e : new Error(String(e)));
      }
    })();
    const poll = setInterval(schedule, options.pollMs ?? 1000);
    const close = async () => {
      if (closed) return;
      closed = true;
      clearInterval(poll);
      clearTimeout(timer);
      try {
        fsw?.close();
      } catch (e) {
        if (!(e instanceof Deno.errors.BadResource)) throw e;
      }
      await loop;
      await reading;
    };
    return { close, [Symbol.asyncDispose]: close };
  }

  /** Runs `fn` after every earlier change and re-read, so none loses another's result. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(fn, fn);
    this.#queue = next.catch(() => {});
    return next;
  }

  /** Creates an account and returns its key (hex). The only time the key is shown. */
  add(name: string, rights: Rights = {}): Promise<string> {
    return this.#serial(() => this.#add(name, rights));
  }

  /** Deletes an account. Its live sessions are closed by a server watching the store. */
  remove(name: string): Promise<void> {
    return this.#serial(async () => {
      await this.#change(name, () => undefined);
    });
  }

  /** Changes an account's rights; a right left undefined stays as it is. Returns the new record without its key. */
  setRights(name: string, rights: Rights): Promise<PublicUser> {
    return this.#serial(async () => {
      const { key: _key, ...rest } = await this.#change(name, (u) => ({
        ...u,
        admin: rights.admin ?? u.admin,
        exec: rights.exec ?? u.exec,
      })) as UserRecord;
      return rest;
    });
  }

  /** Gives an account a new key and returns it (hex); the old key stops working. */
  rotate(name: string): Promise<string> {
    return this.#serial(async () => {
      const u = await this.#change(name, (u) => ({ ...u, key: _newKey() })) as UserRecord;
      return u.key;
    });
  }

  async #add(name: string, rights: Rights): Promise<string> {
    if (!validUserName(name)) {
      throw new RequestError(
        "bad_request",
        `invalid user name ${JSON.stringify(name)}: use 1-32 of a-z 0-9 _ . - (lower case)`,
      );
    }
    await this.#reload();
    if (this.#users.has(name)) throw new RequestError("exists", `user ${name} already exists`);
    const key = _newKey();
    const users = new Map(this.#users);
    users.set(name, {
      name,
      key,
      admin: rights.admin ?? false,
      exec: rights.exec ?? false,
      created: new Date().toISOString(),
    });
    await this.#save(users);
    return key;
  }

  /** Replaces (or, when `fn` returns undefined, deletes) one record and saves. */
  async #change(
    name: string,
    fn: (u: UserRecord) => UserRecord | undefined,
  ): Promise<UserRecord | undefined> {
    await this.#reload();
    const old = this.#users.get(name);
    if (!old) throw new RequestError("not_found", `no user named ${name}`);
    const next = fn(old);
    const users = new Map(this.#users);
    if (next) users.set(name, next);
    else users.delete(name);
    await this.#save(users);
    return next;
  }

  async #reload(): Promise<void> {
    let stamp: string;
    try {
      const st = await Deno.stat(this.path);
      stamp = `${st.ino}:${st.size}:${st.mtime?.getTime()}`;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        if (this.#stamp !== "") this.#install(new Map(), "");
        return;
      }
      throw e;
    }
    if (stamp === this.#stamp) return;
    const text = await Deno.readTextFile(this.path);
    const parsed = JSON.parse(text) as { users?: UserRecord[] };
    this.#install(new Map((parsed.users ?? []).map((u) => [u.name, u])), stamp);
  }

  async #save(users: Map<string, UserRecord>): Promise<void> {
    const tmp = `${this.path}.${crypto.randomUUID()}.tmp`;
    const body = JSON.stringify({ users: [...users.values()] }, null, 2) + "\n";
    const f = await Deno.open(tmp, { write: true, createNew: true, mode: 0o600 });
    try {
      await f.write(new TextEncoder().encode(body));
      await f.sync();
    } finally {
      f.close();
    }
    await Deno.rename(tmp, this.path);
    const st = await Deno.stat(this.path);
    this.#install(users, `${st.ino}:${st.size}:${st.mtime?.getTime()}`);
  }

  #install(users: Map<string, UserRecord>, stamp: string): void {
    this.#users = users;
    this.#stamp = stamp;
    for (const listener of this.#listeners) {
      try {
        listener();
      } catch {
        // A listener's failure is its own; the store's state is already consistent.
      }
    }
  }
}

function _newKey(): string {
  return randomBytes(32).toString("hex");
}
