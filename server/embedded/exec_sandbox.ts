/**
 * The exec sandbox: how a run is launched. Every command runs inside
 * bubblewrap (`bwrap`) with its own user, pid, ipc, uts and (unless
 * `exec.network`) net namespaces, a private `/proc`, `/dev` and size-capped
 * `/tmp`, the system directories read-only, a minimal read-only `/etc`, and
 * only the user's own exec directory writable (at {@linkcode SANDBOX_WORK_DIR}).
 * The data dir is not mounted at all. Inside, `prlimit` caps processes,
 * address space, CPU time and file size before the command starts.
 *
 * When the server runs as root, bwrap itself is started as `exec.runAsUid`
 * / `exec.runAsGid` (65534 by default), so every process of a run has an
 * unprivileged uid on the host too, and files it writes are owned by it.
 *
 * bwrap is spawned with an empty environment plus the run's `env` (and
 * `LC_ALL=C`, below): with a pid namespace bwrap is PID 1 inside, and
 * `/proc/1/environ` shows what it was started with.
 *
 * Start-up: every program of the chain starts in about 3 ms on a small VM,
 * so the chain stays short. The wrappers run in the C locale (`LC_ALL=C`, which
 * the last wrapper removes again): with `LANG=C.UTF-8` each of them would read a
 * dozen locale files first. The descriptor sweep (perl, the slowest of them) is
 * left out when the server has no inherited descriptor to sweep, which a probe
 * at start-up finds out ({@linkcode inheritedDescriptors}).
 *
 * Signals: the server starts every run as the leader of a new session and
 * process group (no controlling terminal, so nothing inside can inject
 * terminal input) and signals that whole group. bwrap is started through
 * `env --ignore-signal=…` so the signals a client may send pass over bwrap
 * and its init, and `env --default-signal` inside restores them for the
 * command; bwrap's own `--new-session` is not used because it would move the
 * command out of that group. SIGKILL of the group ends bwrap's init, and
 * with it, by the kernel, everything in the pid namespace.
 *
 * @module
 */
import { join } from "@std/path";
import type { ExecCaps } from "../backend/exec.ts";
import type { ExecConfig } from "../exec/exec_config.ts";
import { prepareExecRoot, writeSandboxEtc } from "./exec_root.ts";

/** Where the user's exec directory appears inside the sandbox. */
export const SANDBOX_WORK_DIR = "/work";

/**
 * What to spawn for one run. Every launch makes its own session and process group (`setsid`)
 * and drops its own privileges (`setpriv`) inside its chain of programs, so the server spawns it
 * as a plain child (no fork of the server's large address space, which blocks the event loop for
 * milliseconds). Its process group exists only from a moment after the spawn, so signals to the
 * group fall back to the leader before that.
 */
export interface Launch {
  program: string;
  args: string[];
  /** Host working directory for the spawn (the sandbox sets its own with --chdir). */
  cwd: string;
  /** Whether the command runs inside bwrap (its exit status is then relayed as 128+n). */
  sandboxed: boolean;
  /** The environment to spawn the launch with: the command's own, plus `LC_ALL=C` in a sandbox. */
  env: Record<string, string>;
}

/** A run to launch. */
export interface LaunchRequest {
  argv: string[];
  /** The user's exec directory on the host (bound at {@linkcode SANDBOX_WORK_DIR}). */
  userDir: string;
  /** The working directory on the host, inside `userDir`. */
  cwd: string;
  /** Resource caps of the run. */
  caps: ExecCaps;
  /** The command's complete environment. */
  env: Readonly<Record<string, string>>;
}

const _SYSTEM_DIRS = ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];
const _ETC_FILES = [
  "ld.so.cache",
  "ld.so.conf",
  "ld.so.conf.d",
  "nsswitch.conf",
  "localtime",
  "alternatives",
];
const _ETC_NETWORK = [
  "resolv.conf",
  "hosts",
  "host.conf",
  "gai.conf",
  "services",
  "protocols",
  "ssl",
  "ca-certificates",
];
/**
 * Closes every descriptor above stderr, then runs its arguments. bwrap
 * passes on whatever the server inherited without close-on-exec (from the
 * shell or supervisor that started it); the server's own files and sockets
 * are close-on-exec already. Perl (Essential on Debian) is the one program at
 * hand that can do it (a shell cannot close descriptors above 9 portably), and
 * the slowest to start (about 7 ms here): it runs only when the start-up probe
 * found inherited descriptors. It also restores the default action of the
 * signals the outer `env` had bwrap ignore (as `env --default-signal` does
 * without it), and removes the wrappers' `LC_ALL` when the launch added it.
 */
function _closeFdsPerl(unsetLcAll: boolean): string {
  return (unsetLcAll ? "delete $ENV{LC_ALL}; " : "") +
    '$SIG{$_} = "DEFAULT" for qw(HUP INT QUIT TERM USR1 USR2 TSTP); ' +
    'opendir(my $d, "/proc/self/fd") or die "parley: /proc/self/fd: $!\\n"; ' +
    "for my $fd (grep { /^\\d+$/ && $_ > 2 } readdir $d) { " +
    'close $_ for grep { defined } map { open(my $h, "$_&=", $fd) ? $h : undef } "<", ">" } ' +
    'exec { $ARGV[0] } @ARGV; print STDERR "parley: cannot run $ARGV[0]: $!\\n"; exit 127';
}

/**
 * Prints the descriptors above stderr that a child of the server starts with:
 * those the server inherited without close-on-exec. The listing's own
 * descriptor is closed before the check, so it is not counted.
 */
const _LIST_FDS_PERL = 'opendir(my $d, "/proc/self/fd") or die "/proc/self/fd: $!\\n"; ' +
  "my @fds = grep { /^\\d+$/ && $_ > 2 } readdir $d; closedir $d; " +
  'print join(" ", grep { -l "/proc/self/fd/$_" } @fds), "\\n"';

/**
 * The descriptors above stderr that every child of the server inherits (sorted), found by
 * running perl through `env` once; `null` when that cannot be found out (perl missing, not
 * permitted, or it failed), which callers treat as "some".
 */
export async function inheritedDescriptors(
  envPath: string,
  perlPath: string,
): Promise<number[] | null> {
  try {
    const out = await new Deno.Command(envPath, {
      args: ["--", perlPath, "-e", _LIST_FDS_PERL],
      clearEnv: true,
      env: { LC_ALL: "C" },
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim();
    if (!out.success || !/^[\d ]*$/.test(text)) return null;
    return text === "" ? [] : text.split(" ").map(Number).sort((a, b) => a - b);
  } catch {
    return null;
  }
}

/** Signals a client may send that would end bwrap itself; bwrap ignores them, the command not. */
const _PASSED_SIGNALS = "HUP,INT,QUIT,TERM,USR1,USR2,TSTP";

/** Builds launches for runs under one exec root. */
export class ExecSandbox {
  readonly config: ExecConfig;
  /** Host uid/gid runs are spawned as, when the server runs as root. */
  readonly drop: { uid: number; gid: number } | null;
  /**
   * The descriptors the start-up probe found the server inherited (`null`: not probed, or it
   * could not tell). Sandboxed runs sweep them with perl when `closeInheritedFds` is set, unless
   * the probe found none.
   */
  readonly inheritedFds: readonly number[] | null;
  #systemArgs: string[];
  #etcDir: string;

  private constructor(
    config: ExecConfig,
    drop: { uid: number; gid: number } | null,
    inheritedFds: readonly number[] | null,
    systemArgs: string[],
    etcDir: string,
  ) {
    this.config = config;
    this.drop = drop;
    this.inheritedFds = inheritedFds;
    this.#systemArgs = systemArgs;
    this.#etcDir = etcDir;
  }

  /**
   * Prepares the exec root (created if needed with mode 0711 when runs drop
   * to another uid, else 0700; an existing one must not be readable or
   * writable by others) and the sandbox's `/etc/passwd` and `/etc/group`.
   * `serverUid` is the uid the server runs as. With `closeInheritedFds`, probes once for
   * descriptors the server inherited ({@linkcode inheritedDescriptors}).
   */
  static async create(config: ExecConfig, serverUid: number): Promise<ExecSandbox> {
    const drop = serverUid === 0 ? { uid: config.runAsUid, gid: config.runAsGid } : null;
    await prepareExecRoot(config.root, drop ? 0o711 : 0o700);
    const uid = drop?.uid ?? serverUid;
    const ids = { uid, gid: drop?.gid ?? uid };
    const etcDir = await writeSandboxEtc(config.root, ids, SANDBOX_WORK_DIR);
    const inherited = config.sandbox && config.closeInheritedFds
      ? await inheritedDescriptors(config.envPath, config.perlPath)
      : null;
    return new ExecSandbox(config, drop, inherited, await _systemArgs(config), etcDir);
  }

  /** Whether sandboxed runs close inherited descriptors with perl (see {@linkcode inheritedFds}). */
  get sweepsDescriptors(): boolean {
    const c = this.config;
    return c.sandbox && c.closeInheritedFds && this.inheritedFds?.length !== 0;
  }

  /** Creates (if needed) and returns the exec directory of `user`, owned by the run uid. */
  async userDir(user: string): Promise<string> {
    const dir = join(this.config.root, user);
    try {
      await Deno.mkdir(dir, { mode: 0o700 });
      if (this.drop) await Deno.chown(dir, this.drop.uid, this.drop.gid);
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
    return dir;
  }

  /** The program, arguments and credentials that run `req`. */
  launch(req: LaunchRequest): Launch {
    const c = this.config;
    const caps = req.caps;
    const limits = [
      `--nproc=${caps.processes}`,
      `--as=${caps.memoryBytes}`,
      // SIGXCPU at the limit, SIGKILL a second later for a process that ignores it.
      `--cpu=${caps.cpuSeconds}:${caps.cpuSeconds + 1}`,
      `--fsize=${caps.fileBytes}`,
      "--core=0",
      "--",
    ];
    const drop = this.drop
      ? [
        c.setprivPath,
        `--reuid=${this.drop.uid}`,
        `--regid=${this.drop.gid}`,
        "--clear-groups",
        "--",
      ]
      : [];
    if (!c.sandbox) {
      // The new session and the dropped user come from setsid and setpriv, as in the sandbox,
      // not from the spawn's own `detached`, uid and gid: with those the runtime forks the whole
      // server (9–30 ms of a blocked event loop per run, measured) instead of a cheap vfork.
      // (No `LC_ALL=C` here: the command itself would have to be the one to drop it.)
      return {
        program: c.envPath,
        args: ["--", c.setsidPath, "--", ...drop, c.prlimitPath, ...limits, ...req.argv],
        cwd: req.cwd,
        sandboxed: false,
        env: { ...req.env },
      };
    }
    // The wrappers run in the C locale; the last one gives the command its own environment back.
    const unsetLcAll = !Object.hasOwn(req.env, "LC_ALL");
    const env = unsetLcAll ? { ...req.env, LC_ALL: "C" } : { ...req.env };
    const inner = SANDBOX_WORK_DIR + req.cwd.slice(req.userDir.length);
    const args = [
      `--ignore-signal=${_PASSED_SIGNALS}`,
      "--",
      // Not a group leader (spawned into the server's group), so setsid(2) needs no fork: bwrap
      // keeps the spawned pid, which becomes the id of its new process group.
      c.setsidPath,
      "--",
      ...drop,
      c.bwrapPath,
      "--unshare-user",
      "--disable-userns", // no nested user namespaces: less kernel surface
      "--unshare-pid",
      "--unshare-ipc",
      "--unshare-uts",
      ...(c.network ? [] : ["--unshare-net"]),
      "--hostname",
      "parley",
      "--die-with-parent",
      ...this.#systemArgs,
      "--ro-bind",
      join(this.#etcDir, "passwd"),
      "/etc/passwd",
      "--ro-bind",
      join(this.#etcDir, "group"),
      "/etc/group",
      "--proc",
      "/proc",
      "--dev",
      "/dev",
      "--size",
      String(caps.tmpBytes),
      "--tmpfs",
      "/tmp",
      "--bind",
      req.userDir,
      SANDBOX_WORK_DIR,
      "--chdir",
      inner,
      "--remount-ro",
      "/",
      "--",
      c.prlimitPath,
      ...limits,
      ...(this.sweepsDescriptors
        ? [c.perlPath, "-e", _closeFdsPerl(unsetLcAll), "--"]
        : [c.envPath, "--default-signal", ...(unsetLcAll ? ["-u", "LC_ALL"] : []), "--"]),
      ...req.argv,
    ];
    return { program: c.envPath, args, cwd: req.userDir, sandboxed: true, env };
  }
}

/**
 * Mounts for the system directories: `/usr` read-only, and `/bin`, `/lib*`
 * as the host has them (symlinks into `/usr` on merged-/usr systems,
 * otherwise read-only binds), plus the read-only `/etc` files and extra
 * paths from the config.
 */
async function _systemArgs(c: ExecConfig): Promise<string[]> {
  const args = ["--ro-bind", "/usr", "/usr"];
  for (const dir of _SYSTEM_DIRS) {
    let target: string | null = null;
    try {
      const st = await Deno.lstat(dir);
      if (st.isSymlink) target = await Deno.readLink(dir);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue;
      // Not allowed to look (scoped --allow-read): bind whatever is there.
    }
    if (target !== null) args.push("--symlink", target, dir);
    else args.push("--ro-bind-try", dir, dir);
  }
  for (const f of [..._ETC_FILES, ...(c.network ? _ETC_NETWORK : [])]) {
    args.push("--ro-bind-try", `/etc/${f}`, `/etc/${f}`);
  }
  for (const p of c.readOnlyPaths) args.push("--ro-bind", p, p);
  return args;
}
