/**
 * One-shot file commands (placeholder until implemented).
 *
 * @module
 */
import type { Command } from "../main.ts";

const _todo: Command = {
  run: () => {
    console.error("parley: this command is not available yet");
    return Promise.resolve(1);
  },
};
export const put: Command = _todo;
export const get: Command = _todo;
export const ls: Command = _todo;
export const stat: Command = _todo;
export const rm: Command = _todo;
export const mv: Command = _todo;
export const mkdir: Command = _todo;
export const rmdir: Command = _todo;
