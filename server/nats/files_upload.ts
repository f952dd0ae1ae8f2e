/**
 * Uploads of the NATS files backend. An upload key (user, path, size,
 * sha256 or tag) names a record `u.<user>.<key>` holding its chunk set
 * (`gen`); any node finds it, so any node resumes it. Chunks are published as
 * they fill (8 in flight) with `Nats-Msg-Id = <gen>.<index>.<length>` so a
 * retried chunk is stored once; closing without finishing stores the tail as
 * a short last chunk, which a resume reads back and rewrites full (the stream
 * keeps one message per subject). One session per key runs at once: a lease
 * in the record, taken with CAS (`files_cas.ts`: of sessions racing for one
 * key on any nodes exactly one begins), renewed by writes (30 s by default);
 * a session that takes over an expired lease releases the dead session's
 * reservation. A finished upload whose content is already stored references
 * that copy and drops its own (`files_content.ts`).
 *
 * @module
 */
import { headers } from "@nats-io/transport-node";
import { createHash, type Hash } from "node:crypto";
import type {
  BeginUploadOptions,
  FileLimits,
  UploadSession,
  UploadTarget,
} from "../backend/files.ts";
import { RequestError } from "../errors.ts";
import {
  chunkSubject,
  getJson,
  leased,
  type NatsFilesCtx,
  newGen,
  purgeGen,
  storedBytes,
  uploadKey,
  type UploadRecord,
} from "./files_ctx.ts";
import { bumpUsage, readUsage } from "./files_usage.ts";
import { readChunk } from "./files_reader.ts";
import type { NatsIndex } from "./files_index.ts";
import { makeRoom } from "./files_gc.ts";
import { casJson, readKey } from "./files_cas.ts";
import { adoptContent, contentKey, type ContentRecord } from "./files_content.ts";

const _IN_FLIGHT = 8;

/** Refuses early what a begin would refuse; the stored bytes and whether a session runs. */
export async function uploadOffset(
  ctx: NatsFilesCtx,
  index: NatsIndex,
  t: UploadTarget,
  limits: FileLimits,
): Promise<{ offset: number; busy: boolean }> {
  if (!t.overwrite && (await index.get(t.user, t.parts))) {
    throw new RequestError("exists", "file exists");
  }
  const rec = await getJson<UploadRecord>(ctx.kv, await uploadKey(t));
  const u = await readUsage(ctx, t.user);
  const held = rec && !leased(rec.value) ? rec.value.partial : 0;
  if (u.files + u.partial + u.reserved - held + t.size > limits.quotaBytes) {
    throw new RequestError("quota", "quota exceeded");
  }
  if (!rec) return { offset: 0, busy: false };
  return { offset: await storedBytes(ctx, rec.value.gen), busy: leased(rec.value) };
}

/** Takes the lease of `t`'s upload (creating its record) and opens a session at `options.offset`. */
export async function beginUpload(
  ctx: NatsFilesCtx,
  index: NatsIndex,
  t: UploadTarget,
  options: BeginUploadOptions,
): Promise<UploadSession> {
  if (!t.overwrite && (await index.get(t.user, t.parts))) {
    throw new RequestError("exists", "file exists");
  }
  const key = await uploadKey(t);
  const lease = { id: newGen(), until: Date.now() + ctx.leaseMs };
  let read = await readKey<UploadRecord>(ctx, key);
  if (read.value && leased(read.value)) throw new RequestError("busy", "upload running elsewhere");
  if (!read.value) {
    await makeRoom(ctx, t.user, options.limits.maxPartials);
    read = await readKey<UploadRecord>(ctx, key);
    // A session on another node may have taken the lease while room was made: the CAS below
    // is at this read's revision and would succeed, so a live lease must refuse here too.
    if (read.value && leased(read.value)) {
      throw new RequestError("busy", "upload running elsewhere");
    }
  }
  const cur = read.value;
  const rec: UploadRecord = cur
    ? { ...cur, lease }
    : { parts: [...t.parts], size: t.size, gen: newGen(), partial: 0, created: Date.now(), lease };
  // A restart from 0 writes a new chunk set; the old one is left to the GC sweep.
  if (cur && options.offset === 0) rec.gen = newGen();
  const stored = cur ? await storedBytes(ctx, rec.gen) : 0;
  if (options.offset > stored || options.offset < 0) {
    throw new RequestError("changed", `the store holds ${stored} bytes`);
  }
  // Reserve the whole size; the bytes held as partial become part of the reservation. An
  // expired lease (its node died) still holds a reservation: whoever drops the lease releases it.
  const stale = cur?.lease ? t.size : 0;
  await bumpUsage(
    ctx,
    t.user,
    { reserved: t.size - stale, partial: -rec.partial },
    options.limits,
  );
  const held = rec.partial;
  rec.partial = 0;
  let won: number | undefined;
  try {
    won = await casJson(ctx, key, rec, read.rev);
  } finally {
    if (won === undefined) {
      await bumpUsage(ctx, t.user, { reserved: stale - t.size, partial: held });
    }
  }
  if (won === undefined) throw new RequestError("busy", "upload running elsewhere");
  const s = new NatsUpload(ctx, index, t, key, rec, options.limits);
  try {
    await s.start(options.offset, options.hashGate, options.callerHashes === true);
  } catch (e) {
    await s.close();
    throw e;
  }
  return s;
}

function _raise(r: { error: unknown } | undefined): void {
  if (r) throw r.error;
}

class NatsUpload implements UploadSession {
  offset = 0;
  #hash: Hash | undefined = createHash("sha256");
  #tail = new Uint8Array(0);
  #next = 0;
  #written = 0;
  #inFlight: Promise<{ error: unknown } | undefined>[] = [];
  #done = false;
  #renewed = Date.now();

  constructor(
    private ctx: NatsFilesCtx,
    private index: NatsIndex,
    private t: UploadTarget,
    private key: string,
    private rec: UploadRecord,
    private limits: FileLimits,
  ) {}

  /** Re-hashes the stored prefix up to `offset` and keeps its last short chunk as the tail. */
  async start(
    offset: number,
    gate: BeginUploadOptions["hashGate"],
    callerHashes = false,
  ): Promise<void> {
    const cb = this.ctx.chunkBytes;
    if (offset === 0 && callerHashes) this.#hash = undefined;
    if (offset === 0) return;
    await gate(async () => {
      const full = Math.floor(offset / cb);
      for (let k = 0; k < full; k++) this.#hash!.update(await readChunk(this.ctx, this.rec.gen, k));
      if (offset > full * cb) {
        const last = await readChunk(this.ctx, this.rec.gen, full);
        this.#tail = last.slice(0, offset - full * cb);
        this.#hash!.update(this.#tail);
      }
      this.#next = full;
    });
    this.offset = offset;
    this.#written = offset;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.#done) throw new RequestError("bad_request", "upload closed");
    if (this.#written + chunk.byteLength > this.t.size) {
      throw new RequestError("bad_request", "more bytes than the declared size");
    }
    this.#hash?.update(chunk);
    this.#written += chunk.byteLength;
    const joined = new Uint8Array(this.#tail.byteLength + chunk.byteLength);
    joined.set(this.#tail);
    joined.set(chunk, this.#tail.byteLength);
    const cb = this.ctx.chunkBytes;
    let at = 0;
    while (joined.byteLength - at >= cb) {
      await this.#publish(joined.subarray(at, at + cb));
      at += cb;
    }
    this.#tail = joined.slice(at);
    if (Date.now() - this.#renewed > this.ctx.leaseMs / 3) await this.#renew();
  }

  async #publish(data: Uint8Array): Promise<void> {
    const k = this.#next++;
    const h = headers();
    h.set("Nats-Msg-Id", `${this.rec.gen}.${k}.${data.byteLength}`);
    // Settled to a value so that an abandoned session (its node gone) leaves no rejection behind.
    const p = this.ctx.js.publish(chunkSubject(this.rec.gen, k), data, {
      headers: h,
      timeout: 20_000,
    }).then(() => undefined, (e: unknown) => ({ error: e }));
    this.#inFlight.push(p);
    if (this.#inFlight.length >= _IN_FLIGHT) _raise(await this.#inFlight.shift());
  }

  async #flush(): Promise<void> {
    if (this.#tail.byteLength > 0) {
      await this.#publish(this.#tail);
      this.#tail = new Uint8Array(0);
    }
    for (const r of await Promise.all(this.#inFlight.splice(0))) _raise(r);
  }

  async #renew(): Promise<void> {
    const cur = await getJson<UploadRecord>(this.ctx.kv, this.key);
    if (!cur || cur.value.lease?.id !== this.rec.lease?.id) {
      throw new RequestError("busy", "upload lease lost");
    }
    this.rec.lease = { id: this.rec.lease!.id, until: Date.now() + this.ctx.leaseMs };
    if (await casJson(this.ctx, this.key, this.rec, cur.rev) === undefined) {
      throw new RequestError("busy", "upload lease lost");
    }
    this.#renewed = Date.now();
  }

  async finish(sha256: string, computed?: string): Promise<{ sha256: string }> {
    if (this.#done) throw new RequestError("bad_request", "upload closed");
    await this.#flush();
    await this.#renew();
    const got = this.#hash?.copy().digest("hex") ?? computed;
    if (got === undefined) throw new RequestError("internal", "upload finished without a SHA-256");
    if (got !== sha256 || this.#written !== this.t.size) {
      this.#done = true;
      // An earlier finish of these bytes that then found the path taken may have made them the
      // stored copy of their content, which other paths may name since: then the sweep decides.
      const named = await readKey<ContentRecord>(this.ctx, contentKey(got));
      if (named.value?.gen !== this.rec.gen) await purgeGen(this.ctx, this.rec.gen);
      await this.ctx.kv.delete(this.key);
      await bumpUsage(this.ctx, this.t.user, { reserved: -this.t.size });
      throw new RequestError("checksum", "SHA-256 mismatch: upload discarded");
    }
    // One stored copy per content: reference the copy there is, if any.
    const gen = await adoptContent(this.ctx, sha256, this.t.size, this.rec.gen);
    // The index entry is the visibility point; the reservation becomes file bytes.
    await this.index.publishFile(this.t, { gen, sha256 }, this.limits);
    this.#done = true;
    await this.ctx.kv.delete(this.key);
    // This upload's chunks were never named by anything else.
    if (gen !== this.rec.gen) await purgeGen(this.ctx, this.rec.gen);
    return { sha256 };
  }

  async close(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    let stored = 0;
    try {
      await this.#flush();
    } finally {
      stored = await storedBytes(this.ctx, this.rec.gen);
      const cur = await getJson<UploadRecord>(this.ctx.kv, this.key);
      if (cur && cur.value.lease?.id === this.rec.lease?.id) {
        const next: UploadRecord = { ...cur.value, partial: stored };
        delete next.lease;
        if (await casJson(this.ctx, this.key, next, cur.rev) !== undefined) {
          await bumpUsage(this.ctx, this.t.user, { reserved: -this.t.size, partial: stored });
        }
      }
      // Otherwise the lease was taken over or expired, and whoever dropped it released the
      // reservation.
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
