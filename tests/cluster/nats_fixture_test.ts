import { assert, assertEquals } from "@std/assert";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { natsAvailable, startNatsCluster, startNatsServer } from "./nats_fixture.ts";

const available = natsAvailable();

function alive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

Deno.test({
  name: "nats fixture: 3-server cluster comes up, takes an R3 stream, close kills every pid",
  ignore: !available,
}, async () => {
  const cluster = await startNatsCluster();
  const pids = cluster.servers.map((s) => s.pid);
  try {
    assertEquals(cluster.urls.length, 3);
    assertEquals(new Set(pids).size, 3);
    const nc = await connect({ servers: cluster.urls, name: "fixture-test" });
    try {
      assert(nc.info?.version.startsWith("2."));
      const jsm = await jetstreamManager(nc);
      // The meta leader may still be in election right after health: bounded retry.
      let info;
      for (let i = 0; i < 40 && !info; i++) {
        try {
          info = await jsm.streams.add({
            name: "FIXTURE",
            subjects: ["fixture.>"],
            num_replicas: 3,
          });
        } catch (e) {
          if (i === 39) throw e;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
      assertEquals(info!.config.num_replicas, 3);
      assertEquals(info!.cluster?.replicas?.length, 2);
    } finally {
      await nc.close();
    }
  } finally {
    await cluster.close();
  }
  for (const pid of pids) assert(!alive(pid), `pid ${pid} still running after close`);
  await Deno.stat(cluster.dir).then(
    () => assert(false, "temp dir left behind"),
    () => {},
  );
});

Deno.test({
  name: "nats fixture: a killed server restarts on its ports and rejoins",
  ignore: !available,
}, async () => {
  await using cluster = await startNatsCluster();
  const s = cluster.servers[1]!;
  const old = s.pid;
  await s.kill("SIGKILL");
  assert(!alive(old));
  assertEquals(s.running, false);
  await s.restart();
  assert(s.pid !== old && alive(s.pid));
  const nc = await connect({ servers: [s.url] });
  await nc.flush();
  await nc.close();
});

Deno.test({
  name: "nats fixture: single server with JetStream",
  ignore: !available,
}, async () => {
  await using server = await startNatsServer();
  assertEquals(server.urls.length, 1);
  const nc = await connect({ servers: server.urls });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.add({ name: "ONE", subjects: ["one.>"] });
    assertEquals(info.config.num_replicas, 1);
  } finally {
    await nc.close();
  }
});
