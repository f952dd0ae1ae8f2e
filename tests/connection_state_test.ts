import { assertEquals, assertStrictEquals } from "@std/assert";
import type { ClientContext } from "../server/context.ts";
import { ConnectionState } from "../server/connection_state.ts";

function _ctx(connId: number): ClientContext {
  return { connId } as unknown as ClientContext;
}

Deno.test("connection state is made once per connection and kept apart per connection", () => {
  let made = 0;
  const state = new ConnectionState<{ n: number }>(() => ({ n: ++made }));
  const a = _ctx(1);
  const b = _ctx(2);
  assertEquals(state.peek(a), undefined);
  const first = state.get(a);
  assertStrictEquals(state.get(a), first);
  assertEquals(state.get(b), { n: 2 });
  assertEquals(made, 2);
  state.set(a, { n: 10 });
  assertEquals(state.get(a), { n: 10 });
  assertEquals(state.delete(a), true);
  assertEquals(state.peek(a), undefined);
  assertEquals(state.get(a), { n: 3 });
});

Deno.test("connection state holds falsy values without making new ones", () => {
  const state = new ConnectionState<number>(() => 1);
  state.set(_ctx(1), 0);
  const ctx = _ctx(2);
  state.set(ctx, 0);
  assertEquals(state.get(ctx), 0);
});
