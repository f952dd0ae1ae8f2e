/**
 * The exec feature (placeholder until implemented).
 *
 * @module
 */
import type { Feature, FeatureDeps } from "../feature.ts";

/** Creates the exec feature. */
export function createExecFeature(_deps: FeatureDeps): Feature | Promise<Feature> {
  return { name: "exec", register() {} };
}
