/**
 * The NATS files backend on a fresh single nats-server (from
 * `tests/cluster/nats_fixture.ts`), for the contract suite and the NATS tests.
 *
 * @module
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { type NatsFiles, openNatsFiles } from "../../server/nats/files.ts";
import { startNatsServer } from "../cluster/nats_fixture.ts";
import type { FilesFixture } from "./files_contract.ts";

/** Connects to `urls` with the reconnect settings a server process uses. */
export function connectTo(urls: string[]): Promise<NatsConnection> {
  return connect({ servers: urls, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
}

/** Opens the NATS files backend on a new nats-server, stopped on dispose. */
export async function openNatsFilesFixture(): Promise<FilesFixture> {
  const server = await startNatsServer();
  let nc = await connectTo(server.urls);
  let backend: NatsFiles = await openNatsFiles(nc, { node: "n1", replicas: 1 });
  return {
    get backend() {
      return backend;
    },
    async reopen() {
      await backend.close();
      await nc.close();
      nc = await connectTo(server.urls);
      backend = await openNatsFiles(nc, { node: "n1", replicas: 1 });
      return backend;
    },
    async [Symbol.asyncDispose]() {
      await backend.close();
      await nc.close();
      await server.close();
    },
  };
}
