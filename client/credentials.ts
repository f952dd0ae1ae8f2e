/**
 * Where the client finds its server and credentials, in order: command-line
 * flags and a `parley://user@host:port` URL (or a comma-separated list of a
 * cluster's nodes, tried in order), then `PARLEY_SERVER`,
 * `PARLEY_USER`, `PARLEY_KEY`, then the config file (`PARLEY_CONFIG`, else
 * `$XDG_CONFIG_HOME/parley/config.json` or `~/.config/parley/config.json`;
 * it must not be readable by others). TLS is the default: the server's
 * certificate is checked by a CA file (`--ca`, config `ca`), a pin
 * (`--pin`, `PARLEY_PIN`, config `pin`), or else trusted on first use and
 * remembered in `known_servers` beside the config file (./known_servers.ts).
 * Plaintext only when asked for: `--plain`, config `plain`, or a
 * `parley+plain://` address.
 *
 * @module
 */
import { decodeHex } from "@std/encoding/hex";
import { join } from "@std/path";
import { ConfigFileError, readJsonConfig } from "../cli/config_file.ts";
import { askOnTerminal } from "./known_servers.ts";
import { parsePin } from "./tls_connect.ts";

/** One server address. */
export interface ServerAddress {
  host: string;
  port: number;
}

/** A resolved server address and account. */
export interface Credentials {
  host: string;
  port: number;
  /**
   * Every node to try, in order, when a cluster's nodes are listed
   * (`parley://ada@a:7878,b:7878`); the first is `host`/`port`. The client
   * fails over to the next one when a connection is lost or refused.
   */
  servers?: ServerAddress[];
  user: string;
  key: Uint8Array;
  /** TLS (the default) or plaintext (false: only when asked for). */
  tls: boolean;
  /**
   * The known-servers file: a certificate neither a CA nor the pin vouches
   * for is trusted on first use and must match from then on.
   */
  knownServers?: string;
  /** Record a server met for the first time without asking (`--accept-new`). */
  acceptNew?: boolean;
  /** Where the key came from: the config file is updated when the user rotates it (`/rotate`). */
  keySource?: "flag" | "env" | "config";
  /** Asks the user about a server met for the first time (set on a terminal). */
  askNew?: (hostPort: string, fingerprint: string) => Promise<boolean>;
  /** PEM CA certificate(s) to trust for TLS, if any. */
  caCerts?: string[];
  /**
   * `sha256:<hex>` of the server certificate (DER). When set, TLS is used and
   * the certificate must match it exactly (see client/tls_connect.ts).
   */
  pin?: string;
}

/** Inputs from flags; any may be missing. */
export interface CredentialInput {
  url?: string | undefined;
  user?: string | undefined;
  key?: string | undefined;
  tls?: boolean | undefined;
  /** Plaintext (`--plain`). */
  plain?: boolean | undefined;
  /** `--accept-new`: record a server met for the first time. */
  acceptNew?: boolean | undefined;
  caFile?: string | undefined;
  /** Certificate pin `sha256:<hex>`; also env `PARLEY_PIN` or config key `pin`. */
  pin?: string | undefined;
}

/** Raised when credentials are missing or malformed; the message says how to fix it. */
export class CredentialError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CredentialError";
  }
}

/** The client config dir (`$XDG_CONFIG_HOME/parley` or `~/.config/parley`). */
export function configDir(): string | undefined {
  const xdg = Deno.env.get("XDG_CONFIG_HOME");
  if (xdg) return join(xdg, "parley");
  const home = Deno.env.get("HOME");
  return home ? join(home, ".config", "parley") : undefined;
}

/** Path of the client config file: `PARLEY_CONFIG`, else `config.json` in the config dir. */
export function configPath(): string | undefined {
  const given = Deno.env.get("PARLEY_CONFIG");
  if (given) return given;
  const dir = configDir();
  return dir ? join(dir, "config.json") : undefined;
}

/** Path of the known-servers file. */
export function knownServersPath(): string | undefined {
  const dir = configDir();
  return dir ? join(dir, "known_servers") : undefined;
}

/**
 * Parses `parley://[user@]host[:port]` (TLS; also `parleys://` or a bare
 * `host:port`) or `parley+plain://…` (plaintext).
 */
export function parseServerUrl(
  text: string,
): { user?: string; host: string; port: number; tls: boolean } {
  const m = /^(?:(parleys?|parley\+plain):\/\/)?(?:([^@/]+)@)?(\[[^\]]+\]|[^:/]+)(?::(\d+))?\/?$/
    .exec(text);
  if (!m) {
    throw new CredentialError(
      `cannot read server address ${JSON.stringify(text)}; use parley://user@host:port`,
    );
  }
  const port = m[4] ? Number(m[4]) : 7878;
  if (port < 1 || port > 65535) throw new CredentialError(`port ${port} is out of range`);
  const host = m[3]!.replace(/^\[(.*)\]$/, "$1");
  return {
    ...(m[2] ? { user: decodeURIComponent(m[2]) } : {}),
    host,
    port,
    tls: m[1] !== "parley+plain",
  };
}

/**
 * Parses a comma-separated list of server addresses (the nodes of a cluster):
 * `parley://ada@a:7878,b:7878` or `parley://ada@a:7878,parley://b:7878`. The
 * user and the scheme come from the first entry that names them; entries may
 * not disagree.
 */
export function parseServerList(
  text: string,
): { user?: string; servers: ServerAddress[]; tls: boolean } {
  const parts = text.split(",").map((p) => p.trim()).filter((p) => p !== "");
  if (parts.length === 0) throw new CredentialError("no server address given");
  const parsed = parts.map(parseServerUrl);
  const users = new Set(parsed.flatMap((p) => (p.user === undefined ? [] : [p.user])));
  if (users.size > 1) {
    throw new CredentialError(`the server list names several users: ${[...users].join(", ")}`);
  }
  // Entries without a scheme take the one the others name (TLS when none does).
  const modes = new Set(parsed.filter((_, i) => /^[a-z+]+:\/\//.test(parts[i]!)).map((p) => p.tls));
  if (modes.size > 1) {
    throw new CredentialError("the server list mixes parley+plain:// with TLS addresses");
  }
  const [user] = users;
  return {
    ...(user === undefined ? {} : { user }),
    servers: parsed.map(({ host, port }) => ({ host, port })),
    tls: !modes.has(false),
  };
}

function _parseKey(text: string): Uint8Array {
  const hex = text.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new CredentialError(
      "the key must be 64 hex characters (as printed by `parley user add`)",
    );
  }
  return decodeHex(hex);
}

async function _readConfig(): Promise<Record<string, unknown>> {
  const path = configPath();
  if (!path) return {};
  try {
    const info = await Deno.stat(path);
    if (info.mode !== null && (info.mode & 0o077) !== 0) {
      throw new CredentialError(`${path} is readable by others; run: chmod 600 ${path}`);
    }
    return await readJsonConfig(path, "fix the file, or set PARLEY_CONFIG to another one") ?? {};
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.PermissionDenied) return {};
    if (e instanceof ConfigFileError) throw new CredentialError(e.message);
    throw e;
  }
}

/** Resolves credentials from flags, env and config file. */
export async function resolveCredentials(input: CredentialInput = {}): Promise<Credentials> {
  const cfg = await _readConfig();
  const urlText = input.url ?? Deno.env.get("PARLEY_SERVER") ??
    (cfg.server as string | undefined) ??
    "parley://127.0.0.1:7878";
  const list = parseServerList(urlText);
  const url = { ...list, host: list.servers[0]!.host, port: list.servers[0]!.port };
  const user = input.user ?? url.user ?? Deno.env.get("PARLEY_USER") ??
    (cfg.user as string | undefined);
  if (!user) {
    throw new CredentialError(
      "no user name: pass parley://USER@host:port, --user, or set PARLEY_USER",
    );
  }
  const keySource = input.key !== undefined
    ? "flag"
    : Deno.env.get("PARLEY_KEY") !== undefined
    ? "env"
    : "config";
  const keyText = input.key ?? Deno.env.get("PARLEY_KEY") ?? (cfg.key as string | undefined);
  if (!keyText) {
    throw new CredentialError(
      "no key: set PARLEY_KEY to the key printed by `parley user add`, or put it in " +
        (configPath() ?? "the config file"),
    );
  }
  const caFile = input.caFile ?? (cfg.ca as string | undefined);
  const pinText = input.pin ?? Deno.env.get("PARLEY_PIN") ?? (cfg.pin as string | undefined);
  const plain = input.plain === true || !url.tls ||
    (input.plain === undefined && cfg.plain === true);
  if (plain && input.tls) throw new CredentialError("--tls and --plain contradict each other");
  if (plain && (pinText || caFile) && (input.pin !== undefined || input.caFile !== undefined)) {
    throw new CredentialError("--pin and --ca need TLS; drop --plain (TLS is the default)");
  }
  const creds: Credentials = {
    host: url.host,
    port: url.port,
    user,
    key: _parseKey(keyText),
    tls: !plain,
    keySource,
  };
  if (list.servers.length > 1) creds.servers = list.servers;
  if (pinText && !plain) {
    try {
      creds.pin = parsePin(pinText);
    } catch (e) {
      throw new CredentialError((e as Error).message);
    }
  }
  const known = knownServersPath();
  if (known) creds.knownServers = known;
  if (input.acceptNew) creds.acceptNew = true;
  if (Deno.stdin.isTerminal() && Deno.stderr.isTerminal()) creds.askNew = askOnTerminal;
  if (caFile && !plain) {
    try {
      creds.caCerts = [await Deno.readTextFile(caFile)];
    } catch (e) {
      throw new CredentialError(`cannot read the CA file ${caFile}: ${(e as Error).message}`);
    }
  }
  return creds;
}

/**
 * Replaces the key in the config file (after `/rotate`), keeping its other
 * settings; written to a new file (mode 0600) that replaces the old one.
 * Resolves to the file's path.
 */
export async function saveConfigKey(keyHex: string): Promise<string> {
  const path = configPath();
  if (!path) throw new CredentialError("no config dir (set HOME or XDG_CONFIG_HOME)");
  const cfg = await _readConfig();
  const tmp = `${path}.${crypto.randomUUID()}.tmp`;
  await Deno.writeTextFile(tmp, JSON.stringify({ ...cfg, key: keyHex }, null, 2) + "\n", {
    createNew: true,
    mode: 0o600,
  });
  await Deno.rename(tmp, path);
  return path;
}
