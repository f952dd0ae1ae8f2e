/**
 * Runs the real REPL (`parley connect`) inside tmux, for tests that check
 * what the screen shows (not just what was written to it): tmux keeps the
 * terminal's state, so a line that was drawn and then erased is gone from
 * {@linkcode TmuxRepl.screen}. Each instance has its own tmux server
 * (socket), ended on close.
 *
 * @module
 */
import { join } from "@std/path";
import { ROOT } from "../helpers.ts";

/** A REPL in a tmux pane. */
export interface TmuxRepl extends AsyncDisposable {
  /** The visible screen, one string per row, trailing spaces removed. */
  screen(): Promise<string[]>;
  /** Types `text` literally. */
  type(text: string): Promise<void>;
  /** Presses a key by tmux name (`Enter`, `Tab`, `C-u`). */
  key(name: string): Promise<void>;
  /** Waits until `ok(screen)` holds; throws with the screen when it does not within 15 s. */
  waitScreen(ok: (rows: string[]) => boolean, what: string): Promise<string[]>;
}

async function _tmux(sock: string, args: string[]): Promise<string> {
  const out = await new Deno.Command("tmux", {
    args: ["-L", sock, "-f", "/dev/null", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`tmux ${args[0]}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return new TextDecoder().decode(out.stdout);
}

/** Starts `parley connect` for `user` in a `cols`×`rows` tmux pane. */
export async function tmuxRepl(options: {
  port: number;
  user: string;
  key: string;
  cols?: number;
  rows?: number;
}): Promise<TmuxRepl> {
  const home = await Deno.makeTempDir({ prefix: "parley-home-" });
  const sock = `parley-test-${crypto.randomUUID().slice(0, 8)}`;
  const denoDir = Deno.env.get("DENO_DIR") ??
    join(Deno.env.get("XDG_CACHE_HOME") ?? join(Deno.env.get("HOME") ?? "/root", ".cache"), "deno");
  const argv = [
    Deno.execPath(),
    "run",
    "--allow-net",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-run",
    join(ROOT, "main.ts"),
    "connect",
    `parley+plain://${options.user}@127.0.0.1:${options.port}`,
  ];
  const env = {
    PARLEY_KEY: options.key,
    HOME: home,
    XDG_CONFIG_HOME: join(home, ".config"),
    DENO_DIR: denoDir,
    NO_COLOR: "1",
  };
  await _tmux(sock, [
    "new-session",
    "-d",
    "-s",
    "t",
    "-x",
    String(options.cols ?? 80),
    "-y",
    String(options.rows ?? 30),
    ...Object.entries(env).flatMap(([k, v]) => ["-e", `${k}=${v}`]),
    argv.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" "),
  ]);
  const screen = async () =>
    (await _tmux(sock, ["capture-pane", "-p", "-t", "t"])).split("\n").map((l) => l.trimEnd());
  return {
    screen,
    type: async (text) => void await _tmux(sock, ["send-keys", "-t", "t", "-l", text]),
    key: async (name) => void await _tmux(sock, ["send-keys", "-t", "t", name]),
    async waitScreen(ok, what) {
      const end = Date.now() + 15_000;
      for (;;) {
        const rows = await screen();
        if (ok(rows)) return rows;
        if (Date.now() > end) {
          throw new Error(`timed out waiting for ${what}; screen:\n${rows.join("\n")}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async [Symbol.asyncDispose]() {
      await _tmux(sock, ["kill-server"]).catch(() => {});
      await Deno.remove(home, { recursive: true }).catch(() => {});
    },
  };
}
