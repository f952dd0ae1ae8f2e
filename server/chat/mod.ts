/**
 * The chat feature (placeholder until implemented).
 *
 * @module
 */
import type { Feature, FeatureDeps } from "../feature.ts";

/** Creates the chat feature. */
export function createChatFeature(_deps: FeatureDeps): Feature | Promise<Feature> {
  return { name: "chat", register() {} };
}
