import { assertEquals, assertRejects } from "@std/assert";
import { concat } from "@std/bytes/concat";
import { ParleyClient } from "../client/client.ts";
import { RemoteError } from "../protocol/errors.ts";
import { startTestServer } from "./helpers.ts";

Deno.test("a client authenticates over TCP and gets an echo", async () => {
  await using t = await startTestServer();
  const c = await t.connect("ada");
  assertEquals(await c.call("diag.echo", { hello: "world", n: 1 }), { hello: "world", n: 1 });
});

Deno.test("a wrong key is refused with auth_failed", async () => {
  await using t = await startTestServer();
  await t.addUser("ada");
  const err = await assertRejects(
    () =>
      ParleyClient.connect({
        host: "127.0.0.1",
        port: t.port,
        user: "ada",
        key: new Uint8Array(32).fill(7),
        tls: false,
      }),
    RemoteError,
  );
  assertEquals((err as RemoteError).code, "auth_failed");
});

Deno.test("a stream echoes bytes exactly", async () => {
  await using t = await startTestServer();
  const c = await t.connect("ada");
  const { stream, result } = c.open("diag.stream", {});
  const data = new Uint8Array(3 * 1024 * 1024 + 17).map((_, i) => (i * 31) & 0xff);
  const reading = (async () => {
    const parts: Uint8Array[] = [];
    for (let b = await stream.read(); b; b = await stream.read()) parts.push(b);
    return concat(parts);
  })();
  await stream.write(data);
  stream.end();
  assertEquals(await result, { bytes: data.byteLength });
  assertEquals(await reading, data);
});
