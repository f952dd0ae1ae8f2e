/**
 * The embedded account store: names, rights and key verifiers in
 * `users.json` under the data dir, mode 0600, replaced atomically. Keys are
 * never stored: a file from before verifiers is read as verifiers and
 * rewritten by {@linkcode UserStore.migrate}. Implements {@linkcode Accounts}; `parley user` and a running
 * server open the same file.
 *
 * @module
 */
import { basename, dirname, join } from "@std/path";
import { RequestError } from "../errors.ts";
import {
  type AccountEntry,
  accountNotFound,
  newAccountKey,
  publicAccount,
  readStoredAccount,
  type StoredAccount,
  verifierOfStored,
} from "../backend/account_record.ts";
import {
  type Account,
  type AccountChange,
  type Accounts,
  type LoginVerifier,
  type Rights,
  validUserName,
} from "../backend/accounts.ts";

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

/**
 * The account file. Re-reads it when another process (`parley user add`)
 * changed it: on each `get`, `list` and `verifierFor`, and, while
 * {@linkcode UserStore.watch} runs, as soon as the file changes. Changes
 * take an exclusive lock on `users.lock` beside it and re-read the file
 * under the lock, so changes from several processes never undo one another.
 */
export class UserStore implements Accounts, AsyncDisposable {
  readonly path: string;
  #lockPath: string;
  #entries = new Map<string, AccountEntry>();
  /** Records in the file as last read that still hold a key instead of a verifier. */
  #legacy = 0;
  /** Identity of the file last read: inode, size and mtime (the file is replaced on each save). */
  #stamp = "";
  #queue: Promise<unknown> = Promise.resolve();
  #listeners = new Set<(change: AccountChange) => void>();
  #watches = new Set<{ close(): Promise<void> }>();

  private constructor(dataDir: string) {
    this.path = join(dataDir, "users.json");
    this.#lockPath = join(dataDir, "users.lock");
  }

  /** Opens (or creates) the account file in `dataDir`. */
  static async open(dataDir: string): Promise<UserStore> {
    await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
    const store = new UserStore(dataDir);
    await store.#reload();
    return store;
  }

  async get(name: string): Promise<Account | undefined> {
    await this.refresh();
    return this.#entries.get(name)?.account;
  }

  peek(name: string): Account | undefined {
    return this.#entries.get(name)?.account;
  }

  async verifierFor(name: string): Promise<LoginVerifier | undefined> {
    await this.refresh();
    const e = this.#entries.get(name);
    return e ? { account: e.account, verifier: verifierOfStored(e.stored) } : undefined;
  }

  /**
   * Rewrites a file that still holds keys (from before verifiers) with
   * verifiers only; resolves to the number of accounts rewritten (0: nothing
   * to do). Logins work the same before and after.
   */
  migrate(): Promise<number> {
    if (this.#legacy === 0) return Promise.resolve(0);
    return this.#write(() => this.#legacy);
  }

  async list(): Promise<Account[]> {
    await this.refresh();
    return [...this.#entries.values()]
      .map((e) => e.account)
      .sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  }

  /** Re-reads the file if another process changed it. */
  refresh(): Promise<void> {
    return this.#serial(() => this.#reload());
  }

  subscribe(listener: (change: AccountChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Watches the account file for changes made by other processes: a
   * file-system watch on the data dir, debounced, and a cheap periodic check
   * of the file's identity in case the watch misses an event or is not
   * available. Subscribers hear of a change at once. Close the returned
   * handle (or the store) to stop.
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
    const handle = {
      close: async () => {
        if (closed) return;
        closed = true;
        this.#watches.delete(handle);
        clearInterval(poll);
        clearTimeout(timer);
        try {
          fsw?.close();
        } catch (e) {
          if (!(e instanceof Deno.errors.BadResource)) throw e;
        }
        await loop;
        await reading;
      },
      [Symbol.asyncDispose]: () => handle.close(),
    };
    this.#watches.add(handle);
    return handle;
  }

  /** Stops every watch and waits for changes in flight. Idempotent. */
  async close(): Promise<void> {
    await Promise.all([...this.#watches].map((w) => w.close()));
    await this.#queue;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  add(name: string, rights: Rights = {}): Promise<string> {
    if (!validUserName(name)) {
      return Promise.reject(
        new RequestError(
          "bad_request",
          `invalid user name ${JSON.stringify(name)}: use 1-32 of a-z 0-9 _ . - (lower case)`,
        ),
      );
    }
    return this.#write((users) => {
      if (users.has(name)) throw new RequestError("exists", `user ${name} already exists`);
      const { key, storedKey, serverKey } = newAccountKey();
      users.set(name, {
        name,
        storedKey,
        serverKey,
        admin: rights.admin ?? false,
        exec: rights.exec ?? false,
        created: new Date().toISOString(),
      });
      return key;
    });
  }

  remove(name: string): Promise<void> {
    return this.#write((users) => {
      _existing(users, name);
      users.delete(name);
    });
  }

  async setRights(name: string, rights: Rights): Promise<Account> {
    await this.#write((users) => {
      const u = _existing(users, name);
      users.set(name, { ...u, admin: rights.admin ?? u.admin, exec: rights.exec ?? u.exec });
    });
    // Read your write: the entry was installed before #write resolved.
    const account = this.#entries.get(name)?.account;
    if (!account) throw accountNotFound(name);
    return account;
  }

  rotate(name: string): Promise<string> {
    return this.#write((users) => {
      const { key, storedKey, serverKey } = newAccountKey();
      users.set(name, { ..._existing(users, name), storedKey, serverKey });
      return key;
    });
  }

  /** Runs `fn` after every earlier change and re-read, so none loses another's result. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(fn, fn);
    this.#queue = next.catch(() => {});
    return next;
  }

  /**
   * Applies `fn` to the accounts as they are on disk, under the lock that
   * every process takes to change them, and saves the result.
   */
  #write<T>(fn: (users: Map<string, StoredAccount>) => T): Promise<T> {
    return this.#serial(async () => {
      const lock = await Deno.open(this.#lockPath, {
        read: true,
        write: true,
        create: true,
        mode: 0o600,
      });
      try {
        await lock.lock(true);
        // Read in full: the file's identity (inode, size, mtime) could repeat
        // across two quick replacements, and a change based on a stale read
        // would undo another process's change.
        await this.#reload(true);
        const users = new Map([...this.#entries].map(([k, e]) => [k, e.stored]));
        const out = fn(users);
        await this.#save(users);
        return out;
      } finally {
        lock.close(); // releases the lock
      }
    });
  }

  async #reload(force = false): Promise<void> {
    let stamp: string;
    try {
      stamp = await this.#stampOf();
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        if (this.#stamp !== "") this.#install(new Map(), "");
        return;
      }
      throw e;
    }
    if (stamp === this.#stamp && !force) return;
    const text = await Deno.readTextFile(this.path);
    const parsed = JSON.parse(text) as { users?: unknown[] };
    const records = (parsed.users ?? []).map(readStoredAccount);
    this.#legacy = records.filter((r) => r.legacy).length;
    this.#install(new Map(records.map(({ stored }) => [stored.name, stored])), stamp);
  }

  async #stampOf(): Promise<string> {
    const st = await Deno.stat(this.path);
    return `${st.ino}:${st.size}:${st.mtime?.getTime()}`;
  }

  async #save(users: Map<string, StoredAccount>): Promise<void> {
    const tmp = `${this.path}.${crypto.randomUUID()}.tmp`;
    const body = JSON.stringify({ users: [...users.values()] }, null, 2) + "\n";
    const f = await Deno.open(tmp, { write: true, createNew: true, mode: 0o600 });
    try {
      const bytes = new TextEncoder().encode(body);
      for (let off = 0; off < bytes.byteLength;) off += await f.write(bytes.subarray(off));
      await f.sync();
    } catch (e) {
      f.close();
      await Deno.remove(tmp).catch(() => {});
      throw e;
    }
    f.close();
    await Deno.rename(tmp, this.path);
    this.#legacy = 0;
    this.#install(users, await this.#stampOf());
  }

  /** Takes `users` as the current state and tells subscribers what changed. */
  #install(users: Map<string, StoredAccount>, stamp: string): void {
    const before = this.#entries;
    const after = new Map<string, AccountEntry>();
    const changed: AccountChange[] = [];
    for (const [name, stored] of users) {
      const old = before.get(name);
      if (old && _same(old.stored, stored)) {
        after.set(name, old);
        continue;
      }
      const entry = { stored, account: publicAccount(stored) };
      after.set(name, entry);
      changed.push({ name, account: entry.account });
    }
    for (const name of before.keys()) {
      if (!after.has(name)) changed.push({ name, account: undefined });
    }
    this.#entries = after;
    this.#stamp = stamp;
    for (const change of changed) {
      for (const listener of this.#listeners) {
        try {
          listener(change);
        } catch {
          // A listener's failure is its own; the store's state is already consistent.
        }
      }
    }
  }
}

function _existing(users: Map<string, StoredAccount>, name: string): StoredAccount {
  const u = users.get(name);
  if (!u) throw accountNotFound(name);
  return u;
}

function _same(a: StoredAccount, b: StoredAccount): boolean {
  return a.storedKey === b.storedKey && a.serverKey === b.serverKey && a.admin === b.admin &&
    a.exec === b.exec && a.created === b.created;
}
