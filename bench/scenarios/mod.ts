/**
 * The scenario list, in the order of DESIGN.md §9.
 *
 * @module
 */
import type { Scenario } from "../lib/context.ts";
import { handshakeScenario } from "./handshake.ts";
import { idleScenario } from "./idle.ts";
import { execRttScenario } from "../exec_rtt.ts";
import { uploadScenario } from "../upload.ts";

/** Every scenario. */
export const SCENARIOS: Scenario[] = [
  uploadScenario,
  idleScenario,
  execRttScenario,
  handshakeScenario,
];
