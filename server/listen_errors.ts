/**
 * Why a server could not listen, in words an operator can act on: a port in
 * use, a port that needs privileges, an address this machine does not have.
 *
 * @module
 */

/** What `parley serve` prints for a failed listen, and the exit code. */
export interface ListenProblem {
  message: string;
  exit: number;
}

/**
 * The problem behind `e`, an error from `Deno.listen`/`Deno.listenTls` on
 * `host:port`, or undefined when `e` is not about listening.
 */
export function listenProblem(e: unknown, host: string, port: number): ListenProblem | undefined {
  const where = `port ${port} on ${host}`;
  if (e instanceof Deno.errors.AddrInUse) {
    return {
      message: `${where} is in use (another parley serve?); pass --port N or stop the other server`,
      exit: 1,
    };
  }
  // A file error names its path ("… (os error 13): open '/x'"); a refused bind does not.
  if (e instanceof Deno.errors.PermissionDenied && !/'[^']*'/.test(e.message)) {
    return {
      message: `not allowed to listen on ${where} (ports below 1024 need root or ` +
        "CAP_NET_BIND_SERVICE); pass --port N with N from 1024 to 65535",
      exit: 1,
    };
  }
  if (e instanceof Deno.errors.AddrNotAvailable) {
    return {
      message: `cannot listen on ${host}: no network interface of this machine has that ` +
        "address; pass --host with one of its addresses (127.0.0.1: this machine only, " +
        "0.0.0.0: every interface)",
      exit: 2,
    };
  }
  const text = e instanceof Error ? e.message : "";
  if (/lookup address|Name or service not known|nodename nor servname|No such host/i.test(text)) {
    return {
      message: `cannot listen on ${host}: no such host name or address; pass --host with an ` +
        "address of this machine (127.0.0.1: this machine only, 0.0.0.0: every interface)",
      exit: 2,
    };
  }
  return undefined;
}
