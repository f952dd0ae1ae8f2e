/**
 * The files backend's compare-and-set (`server/nats/files_cas.ts`) at R3 on a
 * 3-server cluster, raced harder than the backend tests race it: each round
 * creates a fresh key (revision 0) and then updates it at the created
 * revision, each time with {@linkcode WRITERS} writers spread over the three
 * servers, and every {@linkcode STEPDOWN_EVERY}th round asks the leader of the
 * bucket's stream to step down (`$JS.API.STREAM.LEADER.STEPDOWN`) while the
 * writers are in flight. At most one writer may win a race; when one wins, the key reads
 * back (from the stream leader) as exactly its write; when none wins, as the
 * key before or as a write whose writer got no answer. A race in which every
 * writer got an answer has exactly one winner. Skipped when nats-server is
 * missing.
 */
import { assert, assertEquals } from "@std/assert";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { casPublish } from "../../server/nats/files_cas.ts";
import { FS_BUCKET } from "../../server/nats/files_ctx.ts";
import { connectTo } from "../backend/files_nats_fixture.ts";
import { node } from "./nats_files_fixture.ts";
import { natsAvailable, startNatsCluster } from "./nats_fixture.ts";

const available = natsAvailable();
const ROUNDS = 30;
const WRITERS = 9;
const STEPDOWN_EVERY = 5;

/** What one writer's CAS returned: its new revision, undefined (lost), or an error (no answer). */
type Outcome = { rev: number | undefined } | { error: unknown };

Deno.test({
  name:
    "nats files CAS: at most one winner per revision among writers on three servers, leaders stepping down",
  ignore: !available,
  async fn() {
    await using stack = new AsyncDisposableStack();
    const cluster = stack.use(await startNatsCluster());
    // Opening the backend creates the bucket at R3.
    stack.use(await node(cluster.servers[0]!.url, "a", 3));
    const conns: NatsConnection[] = [];
    for (const s of cluster.servers) {
      const nc = await connectTo([s.url]);
      stack.defer(async () => {
        if (!nc.isClosed()) await nc.close();
      });
      conns.push(nc);
    }
    const jss = conns.map((nc) => jetstream(nc, { timeout: 20_000 }));
    const kv = await new Kvm(jss[0]!).open(FS_BUCKET);
    let stepdowns = 0;
    const stepDown = async (round: number) => {
      try {
        const r = await conns[round % 3]!.request(
          `$JS.API.STREAM.LEADER.STEPDOWN.KV_${FS_BUCKET}`,
          "",
          {
            timeout: 5_000,
          },
        );
        if ((r.json() as { success?: boolean }).success) stepdowns++;
      } catch {
        // No leader to answer yet (an election is running): this round races without a step-down.
      }
    };
    /** The key from the stream leader, waiting out an election (bounded). */
    const readBack = async (key: string) => {
      for (let attempt = 1;; attempt++) {
        try {
          return await kv.get(key);
        } catch (e) {
          if (attempt === 10) throw e;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    };
    let answered = 0;
    let unanswered = 0;
    /** Races {@linkcode WRITERS} writers on `key` at `rev`; checks what the key reads back as. */
    const race = async (round: number, key: string, rev: number, stepdown: boolean) => {
      const values = Array.from({ length: WRITERS }, (_, w) => JSON.stringify({ round, rev, w }));
      const writes = values.map((v, w) =>
        casPublish({ js: jss[w % 3]! }, `$KV.${FS_BUCKET}.${key}`, v, rev).then(
          (r): Outcome => ({ rev: r }),
          (error): Outcome => ({ error }),
        )
      );
      if (stepdown) await stepDown(round);
      const outcomes = await Promise.all(writes);
      const winners = outcomes.flatMap((o, w) => "rev" in o && o.rev !== undefined ? [w] : []);
      const silent = outcomes.flatMap((o, w) => "error" in o ? [w] : []);
      assert(winners.length <= 1, `round ${round} at ${rev}: winners ${winners}`);
      const e = await readBack(key);
      const now = e && e.length > 0 ? e.string() : undefined;
      if (winners.length === 1) {
        const w = winners[0]!;
        assertEquals(now, values[w], `round ${round} at ${rev}: the key is not the winner's`);
        assertEquals(e!.revision, (outcomes[w] as { rev: number }).rev);
      } else {
        assert(
          e === null ? rev === 0 : e.revision === rev || silent.some((w) => values[w] === now),
          `round ${round} at ${rev}: no winner, yet the key is ${now} at ${e?.revision}`,
        );
      }
      if (silent.length === 0) {
        answered++;
        assertEquals(winners.length, 1, `round ${round} at ${rev}: every writer lost`);
      } else {
        unanswered++;
      }
      return e?.revision ?? 0;
    };
    for (let round = 0; round < ROUNDS; round++) {
      const stepdown = round % STEPDOWN_EVERY === STEPDOWN_EVERY - 1;
      const key = `race.k${round}`;
      const created = await race(round, key, 0, stepdown);
      if (created > 0) await race(round, key, created, stepdown);
    }
    console.log(
      `races with every writer answered: ${answered}, with a writer unanswered: ${unanswered}, step-downs: ${stepdowns}`,
    );
    assert(answered >= ROUNDS, `only ${answered} races had every writer answered`);
  },
});
