/**
 * Diagnostic operations used by tests, benchmarks and `parley ping`:
 * `diag.echo` returns its arguments, `diag.stream` echoes a stream's bytes,
 * `diag.sink` counts and discards them, `diag.source` sends N bytes.
 *
 * @module
 */
import type { Feature } from "./feature.ts";
import { RequestError } from "./errors.ts";
import type { MuxStream } from "../protocol/mux_stream.ts";

const _MAX_SOURCE = 64 * 1024 * 1024 * 1024;

function _need(stream: MuxStream | undefined): MuxStream {
  if (!stream) throw new RequestError("bad_request", "this operation needs a stream");
  return stream;
}

/** Creates the diagnostics feature. */
export function createDiagFeature(): Feature {
  return {
    name: "diag",
    register(reg) {
      reg.register("diag.echo", (_ctx, args) => Promise.resolve(args));
      reg.register("diag.stream", async (_ctx, _args, stream) => {
        const s = _need(stream);
        let n = 0;
        for (let chunk = await s.read(); chunk; chunk = await s.read()) {
          n += chunk.byteLength;
          await s.write(chunk);
        }
        return { bytes: n };
      });
      reg.register("diag.sink", async (_ctx, _args, stream) => {
        const s = _need(stream);
        let n = 0;
        for (let chunk = await s.read(); chunk; chunk = await s.read()) n += chunk.byteLength;
        return { bytes: n };
      });
      reg.register("diag.source", async (_ctx, args, stream) => {
        const s = _need(stream);
        const total = args.bytes;
        if (
          typeof total !== "number" || !Number.isSafeInteger(total) || total < 0 ||
          total > _MAX_SOURCE
        ) {
          throw new RequestError("bad_request", "bytes must be an integer from 0 to 64 GiB");
        }
        const chunkSize = typeof args.chunk === "number" && args.chunk > 0 && args.chunk <= 1 << 20
          ? args.chunk
          : 256 * 1024;
        const chunk = new Uint8Array(chunkSize);
        for (let sent = 0; sent < total; sent += chunkSize) {
          await s.write(chunk.subarray(0, Math.min(chunkSize, total - sent)));
        }
        s.end();
        return { bytes: total };
      });
    },
  };
}
