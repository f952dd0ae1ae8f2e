/**
 * The files feature (placeholder until implemented).
 *
 * @module
 */
import type { Feature, FeatureDeps } from "../feature.ts";

/** Creates the files feature. */
export function createFileFeature(_deps: FeatureDeps): Feature | Promise<Feature> {
  return { name: "files", register() {} };
}
