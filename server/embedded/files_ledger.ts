/**
 * Per-user storage accounting for the quota: bytes of files in the home,
 * bytes of interrupted uploads kept for resuming, and bytes reserved by
 * uploads in progress. Every change to a user's home or partial uploads runs
 * inside {@linkcode Ledger.run}, one at a time per user, so the decision
 * (does it fit? what does it replace?), the file-system change and the
 * bookkeeping happen together and no interleaving of requests, from however
 * many connections, can make the numbers drift from what is on disk. The
 * number of entries (files and directories) is kept the same way, since an
 * empty file or directory costs no bytes but still an inode.
 *
 * @module
 */
import { RequestError } from "../errors.ts";

/** An interrupted upload kept for resuming. */
export interface PartialInfo {
  /** Bytes on disk. */
  bytes: number;
  /** Last time an upload wrote to it (ms since the epoch); the sweep goes by this. */
  touched: number;
}

/** One user's numbers, only touched inside {@linkcode Ledger.run}. */
export interface Account {
  /** Bytes of regular files in the home. */
  files: number;
  /** Files and directories in the home (the home itself not counted). */
  entries: number;
  /** Idle partial uploads by key. */
  partials: Map<string, PartialInfo>;
  /** Uploads running, by key: bytes reserved for each. */
  active: Map<string, number>;
}

/** Bytes an account holds on disk: files plus idle partial uploads. */
export function usedBytes(a: Account): number {
  let n = a.files;
  for (const p of a.partials.values()) n += p.bytes;
  return n;
}

/** Bytes reserved by the account's running uploads. */
export function reservedBytes(a: Account): number {
  let n = 0;
  for (const b of a.active.values()) n += b;
  return n;
}

/** What a home holds. */
export interface HomeSize {
  bytes: number;
  entries: number;
}

/** Refuses adding `n` entries to an account that would then hold more than `max`. */
export function checkEntries(a: Account, n: number, max: number): void {
  if (a.entries + n > max) {
    throw new RequestError(
      "quota",
      `your home already holds ${a.entries} files and directories; the limit is ${max}`,
    );
  }
}

/** Serialised per-user accounts; `countHome` measures a home the first time it is needed. */
export class Ledger {
  #countHome: (user: string) => Promise<HomeSize>;
  #homes = new Map<string, HomeSize>();
  #partials = new Map<string, Map<string, PartialInfo>>();
  #active = new Map<string, Map<string, number>>();
  #locks = new Map<string, Promise<void>>();

  constructor(countHome: (user: string) => Promise<HomeSize>) {
    this.#countHome = countHome;
  }

  /** Records a partial upload found on disk at start. */
  notePartial(user: string, key: string, info: PartialInfo): void {
    this.#partialsOf(user).set(key, info);
  }

  /** Users that have partial uploads recorded. */
  usersWithPartials(): string[] {
    return [...this.#partials.keys()];
  }

  #partialsOf(user: string): Map<string, PartialInfo> {
    let m = this.#partials.get(user);
    if (!m) this.#partials.set(user, m = new Map());
    return m;
  }

  #activeOf(user: string): Map<string, number> {
    let m = this.#active.get(user);
    if (!m) this.#active.set(user, m = new Map());
    return m;
  }

  /**
   * Runs `fn` with `user`'s account, after every earlier `run` for that user
   * has finished. Changes `fn` makes to the account are kept (the account is
   * live, not a copy).
   */
  async run<T>(user: string, fn: (account: Account) => Promise<T> | T): Promise<T> {
    const prev = this.#locks.get(user) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => release = r);
    const tail = prev.then(() => mine);
    this.#locks.set(user, tail);
    await prev;
    try {
      let home = this.#homes.get(user);
      if (home === undefined) {
        home = await this.#countHome(user);
        this.#homes.set(user, home);
      }
      const account: Account = {
        files: home.bytes,
        entries: home.entries,
        partials: this.#partialsOf(user),
        active: this.#activeOf(user),
      };
      try {
        return await fn(account);
      } finally {
        this.#homes.set(user, {
          bytes: Math.max(0, account.files),
          entries: Math.max(0, account.entries),
        });
        if (account.partials.size === 0) this.#partials.delete(user);
        if (account.active.size === 0) this.#active.delete(user);
      }
    } finally {
      release();
      if (this.#locks.get(user) === tail) this.#locks.delete(user);
    }
  }
}
