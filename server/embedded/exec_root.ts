/**
 * The exec root on disk: created with its mode (an existing one that others
 * may read or write is refused, never chmod'ed), and the minimal
 * `/etc/passwd` and `/etc/group` the sandbox shows its commands, kept in
 * `<root>/.etc` (user names cannot start with ".").
 *
 * @module
 */
import { dirname, join } from "@std/path";
import { configError } from "../config.ts";

/**
 * Creates the exec root with `mode`, or checks an existing one: a directory
 * that others may read or write (a shared dir such as /tmp) is refused, and
 * its mode is never changed.
 */
export async function prepareExecRoot(root: string, mode: number): Promise<void> {
  try {
    try {
      await Deno.mkdir(root, { mode });
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      await Deno.mkdir(dirname(root), { recursive: true });
      await Deno.mkdir(root, { mode });
    }
    await Deno.chmod(root, mode); // whatever the umask
    return;
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
  }
  const st = await Deno.stat(root);
  const bad = (why: string) =>
    configError("exec", `root ${root} ${why}; use a dedicated directory`);
  if (!st.isDirectory) throw bad("is not a directory");
  if (st.mode !== null && (st.mode & 0o7066) !== 0) {
    throw bad(`is readable or writable by others (mode ${(st.mode & 0o7777).toString(8)})`);
  }
}

/**
 * Writes the sandbox's `/etc/passwd` and `/etc/group` under `root` for runs
 * as `uid`/`gid` with home `home`; returns their directory.
 */
export async function writeSandboxEtc(
  root: string,
  ids: { uid: number; gid: number },
  home: string,
): Promise<string> {
  const etcDir = join(root, ".etc");
  await Deno.mkdir(etcDir, { recursive: true, mode: 0o755 });
  await Deno.chmod(etcDir, 0o755);
  const { uid, gid } = ids;
  const passwd = ["root:x:0:0:root:/root:/usr/sbin/nologin"];
  const group = ["root:x:0:"];
  if (uid !== 65534) passwd.push(`parley:x:${uid}:${gid}:parley:${home}:/bin/sh`);
  if (gid !== 65534) group.push(`parley:x:${gid}:`);
  passwd.push("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin");
  group.push("nogroup:x:65534:");
  await Deno.writeTextFile(join(etcDir, "passwd"), passwd.join("\n") + "\n", { mode: 0o644 });
  await Deno.writeTextFile(join(etcDir, "group"), group.join("\n") + "\n", { mode: 0o644 });
  return etcDir;
}
