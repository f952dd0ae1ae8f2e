/**
 * The scenario list, in the order of DESIGN.md §9.
 *
 * @module
 */
import type { Scenario } from "../lib/context.ts";
import { handshakeScenario } from "./handshake.ts";
import { idleScenario } from "./idle.ts";

/** Every scenario. */
export const SCENARIOS: Scenario[] = [idleScenario, handshakeScenario];
