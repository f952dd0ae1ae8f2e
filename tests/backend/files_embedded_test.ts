/**
 * The files backend contract (`files_contract.ts`) against the embedded
 * implementation, on real temporary directories.
 */
import { filesContract } from "./files_contract.ts";
import { openEmbeddedFilesFixture } from "./files_embedded_fixture.ts";

filesContract("embedded files", openEmbeddedFilesFixture);
