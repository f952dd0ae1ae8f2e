/**
 * The scenario list, in the order of DESIGN.md §9 (transfers first, with the
 * raw-throughput context row after them), then the cluster rows.
 *
 * @module
 */
import type { Scenario } from "../lib/context.ts";
import { execRttScenario } from "../exec_rtt.ts";
import { chatUnderUploadScenario } from "./chat_under_upload.ts";
import { clusterScenario } from "./cluster.ts";
import { downloadScenario } from "./download.ts";
import { encryptedScenario } from "./encrypted.ts";
import { fanoutScenario } from "./fanout.ts";
import { handshakeScenario } from "./handshake.ts";
import { idleScenario } from "./idle.ts";
import { throughputScenario } from "./throughput.ts";
import { uploadWithSftpScenario } from "./upload_with_sftp.ts";

/** Every scenario. */
export const SCENARIOS: Scenario[] = [
  uploadWithSftpScenario,
  downloadScenario,
  encryptedScenario,
  throughputScenario,
  fanoutScenario,
  chatUnderUploadScenario,
  idleScenario,
  execRttScenario,
  handshakeScenario,
  clusterScenario,
];
