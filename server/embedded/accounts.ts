/**
 * The embedded accounts backend (see `../backend/accounts.ts`): the account
 * file under the data dir, watched for changes by other processes.
 *
 * @module
 */
import type { ServerConfig } from "../config.ts";
import type { Logger } from "../log.ts";
import { migrationNotice } from "../backend/account_record.ts";
import { UserStore, type WatchOptions } from "./user_store.ts";

/**
 * Opens (creating as needed) the account file under `config.dataDir` and
 * watches it, so changes by `parley user` reach a running server. Closing
 * the store stops the watch.
 */
export async function openEmbeddedAccounts(
  config: Pick<ServerConfig, "dataDir">,
  log: Logger,
  options: Omit<WatchOptions, "onError"> = {},
): Promise<UserStore> {
  const store = await UserStore.open(config.dataDir);
  const migrated = await store.migrate();
  if (migrated > 0) log.info(migrationNotice(migrated));
  store.watch({
    ...options,
    onError: (e) => log.warn("could not re-read the account file", { error: e.message }),
  });
  return store;
}
