/**
 * Trust on first use, as ssh's known_hosts: the fingerprint of each server
 * (`host:port`) the client has accepted, one per line
 * (`HOST:PORT sha256:HEX`), in `known_servers` in the config dir, mode 0600.
 * A server met for the first time is accepted when the user says so on a
 * terminal or passed `--accept-new`; a server whose certificate changed is
 * refused until its entry is removed (`parley known-servers forget`).
 *
 * @example
 * ```ts ignore
 * const known = new KnownServers("/home/ada/.config/parley/known_servers");
 * await known.check("127.0.0.1", 7878, "sha256:…", { acceptNew: true });
 * ```
 *
 * @module
 */
import { dirname } from "@std/path";

/** How to treat a server not met before. */
export interface FirstContact {
  /** Accept and record it without asking (`--accept-new`). */
  acceptNew?: boolean | undefined;
  /** Asks the user; resolves true to accept. Absent without a terminal. */
  ask?: ((hostPort: string, fingerprint: string) => Promise<boolean>) | undefined;
}

/** The server is not known and was not accepted. */
export class UnknownServerError extends Error {
  readonly fingerprint: string;
  constructor(hostPort: string, fingerprint: string, asked: boolean) {
    super(
      asked
        ? `not connecting to ${hostPort}: its certificate (${fingerprint}) was not accepted`
        : `${hostPort} is not a known server; its certificate fingerprint is ${fingerprint}. ` +
          "Check it against the one `parley serve` printed, then connect again with " +
          `--pin ${fingerprint} (or PARLEY_PIN), or with --accept-new to record it`,
    );
    this.name = "UnknownServerError";
    this.fingerprint = fingerprint;
  }
}

/** The server presented another certificate than the one recorded. */
export class ChangedServerError extends Error {
  readonly fingerprint: string;
  constructor(hostPort: string, known: string, actual: string, path: string) {
    super(
      [
        `WARNING: the certificate of ${hostPort} has changed.`,
        `  recorded: ${known}`,
        `  now:      ${actual}`,
        "Someone may be intercepting the connection (a man in the middle), or the server's",
        "certificate was replaced (a new data dir, or --tls-cert). Not connecting.",
        "If the server's operator confirms the new fingerprint, forget the old one with:",
        `  parley known-servers forget ${hostPort}`,
        `(or delete its line from ${path}) and connect again.`,
      ].join("\n"),
    );
    this.name = "ChangedServerError";
    this.fingerprint = actual;
  }
}

/** `host:port`, with IPv6 addresses in brackets. */
export function hostPort(host: string, port: number): string {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/** The known-servers file. */
export class KnownServers {
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  /** Every entry, `host:port` → fingerprint. A missing file is empty. */
  async entries(): Promise<Map<string, string>> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return new Map();
      throw e;
    }
    const out = new Map<string, string>();
    for (const line of text.split("\n")) {
      const t = line.trim();
      if (t === "" || t.startsWith("#")) continue;
      const [where, fp] = t.split(/\s+/);
      if (where && fp && /^sha256:[0-9a-f]{64}$/.test(fp)) out.set(where, fp);
    }
    return out;
  }

  /** The recorded fingerprint of `host:port`, if any. */
  async get(host: string, port: number): Promise<string | undefined> {
    return (await this.entries()).get(hostPort(host, port));
  }

  /** Records (or replaces) the fingerprint of `host:port`. */
  async set(host: string, port: number, fingerprint: string): Promise<void> {
    const entries = await this.entries();
    entries.set(hostPort(host, port), fingerprint);
    await this.#save(entries);
  }

  /** Removes the entry of `where` (`host:port`); resolves false when there was none. */
  async forget(where: string): Promise<boolean> {
    const entries = await this.entries();
    if (!entries.delete(where)) return false;
    await this.#save(entries);
    return true;
  }

  /**
   * Accepts `fingerprint` for `host:port` if it is the one recorded, or if
   * it is new and `first` accepts it (then records it). Throws
   * {@linkcode ChangedServerError} or {@linkcode UnknownServerError} otherwise.
   */
  async check(host: string, port: number, fingerprint: string, first: FirstContact = {}) {
    const where = hostPort(host, port);
    const known = await this.get(host, port);
    if (known === fingerprint) return;
    if (known !== undefined) throw new ChangedServerError(where, known, fingerprint, this.path);
    const ok = first.acceptNew === true ||
      (first.ask ? await first.ask(where, fingerprint) : false);
    if (!ok) throw new UnknownServerError(where, fingerprint, first.ask !== undefined);
    await this.set(host, port, fingerprint);
  }

  async #save(entries: Map<string, string>): Promise<void> {
    await Deno.mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    const body = [...entries].map(([k, v]) => `${k} ${v}\n`).join("");
    const tmp = `${this.path}.${crypto.randomUUID()}.tmp`;
    await Deno.writeTextFile(tmp, body, { createNew: true, mode: 0o600 });
    await Deno.rename(tmp, this.path);
  }
}

/**
 * Asks on the terminal whether to trust a new server, as ssh does. For
 * {@linkcode FirstContact.ask} when standard input and error are a terminal.
 */
export function askOnTerminal(hostPort: string, fingerprint: string): Promise<boolean> {
  console.error(
    `The server ${hostPort} is not known yet. Its certificate fingerprint is:\n  ${fingerprint}\n` +
      "Compare it with the one `parley serve` printed when it started.",
  );
  const answer = prompt("Trust this server and remember it? [y/N]");
  return Promise.resolve(/^y(es)?$/i.test(answer?.trim() ?? ""));
}
