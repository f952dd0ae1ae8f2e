/**
 * The files backend contract (`files_contract.ts`) against the NATS
 * implementation on one nats-server; skipped with a message when nats-server
 * is not installed.
 */
import { natsAvailable } from "../cluster/nats_fixture.ts";
import { filesContract } from "./files_contract.ts";
import { openNatsFilesFixture } from "./files_nats_fixture.ts";

if (natsAvailable()) filesContract("nats files", openNatsFilesFixture);
