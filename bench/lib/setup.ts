/**
 * Installs missing baseline tools (Debian packages) when running as root.
 *
 * @module
 */
import { have, run } from "./procs.ts";

const _TOOLS: [cmd: string, pkg: string][] = [
  ["socat", "socat"],
  ["/usr/sbin/sshd", "openssh-server"],
  ["ssh", "openssh-client"],
  ["nats-server", "nats-server"],
  ["iperf3", "iperf3"],
];

/** apt-get installs whatever baseline tool is missing (best effort). */
export async function ensureTools(log: (msg: string) => void): Promise<void> {
  const missing: string[] = [];
  for (const [cmd, pkg] of _TOOLS) if (!(await have(cmd))) missing.push(pkg);
  if (missing.length === 0) return;
  if (Deno.uid() !== 0) {
    log(`missing baseline tools (${missing.join(", ")}); install them or run as root`);
    return;
  }
  log(`installing ${missing.join(", ")} with apt-get`);
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  await new Deno.Command("apt-get", { args: ["update", "-qq"], env, stdout: "null" }).output();
  const out = await new Deno.Command("apt-get", {
    args: ["install", "-y", "-qq", ...missing],
    env,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) log(`apt-get failed: ${new TextDecoder().decode(out.stderr).slice(0, 500)}`);
}

/**
 * Mounts a 6 GiB tmpfs on `dir` when root (so data dirs live in memory, as
 * DESIGN.md §9 asks); returns whether it mounted.
 */
export async function mountTmpfs(dir: string, log: (msg: string) => void): Promise<boolean> {
  if (Deno.uid() !== 0) {
    log(`not root: ${dir} is not a tmpfs, disk speed will show in the figures`);
    return false;
  }
  try {
    await run("mount", ["-t", "tmpfs", "-o", "size=6g", "tmpfs", dir]);
    return true;
  } catch (e) {
    log(`cannot mount a tmpfs: ${(e as Error).message}`);
    return false;
  }
}
