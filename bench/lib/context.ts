/**
 * What every benchmark scenario receives.
 *
 * @module
 */
import type { ProcessGroup } from "./procs.ts";
import type { LocalSshd } from "./sshd.ts";
import type { Row } from "./report.ts";

/** Shared state of one benchmark run. */
export interface BenchContext {
  /** Short runs for development. */
  quick: boolean;
  /** Repetitions per measurement (median reported). */
  runs: number;
  /** Background processes, ended at the end of the run. */
  group: ProcessGroup;
  /** Loopback sshd for baselines, when installed. */
  sshd: LocalSshd | undefined;
  /** A directory on tmpfs for data dirs and test files. */
  tmp: string;
  /** Progress messages (stderr). */
  log(msg: string): void;
  /** Extra Deno flags for spawned `parley serve` processes (e.g. `--cpu-prof`). */
  serverFlags?: string[];
}

/** A benchmark scenario. */
export interface Scenario {
  /** Identifier for `--only`. */
  id: string;
  /** What it measures. */
  title: string;
  /** Runs and returns its comparison rows. */
  run(ctx: BenchContext): Promise<Row[]>;
}
