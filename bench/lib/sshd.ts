/**
 * A throwaway OpenSSH server on loopback for baselines (`scp`, `sftp`,
 * `ssh … true`), with generated host and client keys in a temp dir.
 *
 * @module
 */
import { join } from "@std/path";
import { freePort, have, type ProcessGroup, run, waitPort } from "./procs.ts";

/** A running loopback sshd. */
export interface LocalSshd {
  port: number;
  /** Arguments for ssh/scp/sftp: identity, port option name differs per tool. */
  sshArgs: string[];
  scpArgs: string[];
  dir: string;
}

/** Starts sshd if it is installed; undefined otherwise. */
export async function startSshd(group: ProcessGroup): Promise<LocalSshd | undefined> {
  if (!(await have("/usr/sbin/sshd")) || !(await have("ssh"))) return undefined;
  const dir = await Deno.makeTempDir({ prefix: "parley-bench-ssh-" });
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "host")]);
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "id")]);
  await Deno.copyFile(join(dir, "id.pub"), join(dir, "authorized_keys"));
  await Deno.chmod(join(dir, "authorized_keys"), 0o600);
  await Deno.mkdir("/run/sshd", { recursive: true });
  const port = freePort();
  const config = [
    `Port ${port}`,
    "ListenAddress 127.0.0.1",
    `HostKey ${join(dir, "host")}`,
    `PidFile ${join(dir, "sshd.pid")}`,
    `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "StrictModes no",
    "UsePAM no",
    "UseDNS no",
    "GSSAPIAuthentication no",
    "PermitRootLogin yes",
    "Subsystem sftp /usr/lib/openssh/sftp-server",
  ].join("\n");
  await Deno.writeTextFile(join(dir, "sshd_config"), config + "\n");
  group.spawn("/usr/sbin/sshd", ["-D", "-e", "-f", join(dir, "sshd_config")]);
  await waitPort(port);
  const common = [
    "-i",
    join(dir, "id"),
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "GSSAPIAuthentication=no",
  ];
  return {
    port,
    dir,
    sshArgs: [...common, "-p", String(port)],
    scpArgs: [...common, "-P", String(port)],
  };
}
