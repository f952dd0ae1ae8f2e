/**
 * Placeholder until implemented.
 *
 * @module
 */

/** Not implemented yet. */
export function run(_args: string[]): Promise<number> {
  console.error("parley: this command is not available yet");
  return Promise.resolve(1);
}
