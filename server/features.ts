/**
 * The built-in feature set, in registration order.
 *
 * @module
 */
import type { ServerConfig } from "./config.ts";
import type { Feature, FeatureDeps } from "./feature.ts";
import { createDiagFeature } from "./diag.ts";
import { createChatFeature } from "./chat/mod.ts";
import { createFileFeature } from "./files/mod.ts";
import { createExecFeature } from "./exec/mod.ts";

/** Creates every built-in feature with its config section. */
export async function createFeatures(
  deps: Omit<FeatureDeps, "config">,
  config: ServerConfig,
): Promise<Feature[]> {
  return [
    createDiagFeature(),
    await createChatFeature({ ...deps, config: config.features.chat }),
    await createFileFeature({ ...deps, config: config.features.files }),
    await createExecFeature({ ...deps, config: config.features.exec }),
  ];
}
