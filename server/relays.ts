/**
 * The push relays of a running server: on each publish of a stream whose path has `push`
 * targets, one {@linkcode PushRelay} per target, stopped with the stream.
 *
 * @module
 */

import type { StreamHandle } from "../mod.ts";
import { PushRelay, type PushRelayOptions, type RelayStatus } from "./relay.ts";

/**
 * Every relay of every live stream, by stream.
 *
 * @example
 * ```ts ignore
 * import { PushRelays } from "@arcly/stream/server";
 *
 * const relays = new PushRelays({ logger: console });
 * registry.on("publish", (handle) => relays.start(handle, ["srt://backup:8890?streamid=publish:live/cam"]));
 * registry.on("unpublish", (handle) => relays.stop(handle));
 * relays.status(handle); // [{ target: "srt://backup:8890?…", state: "connecting", … }]
 * ```
 */
export class PushRelays {
  readonly #relays = new Map<StreamHandle, PushRelay[]>();
  readonly #options: PushRelayOptions;

  /** Relays made with `options` (logger, back-off, timeouts). */
  constructor(options: PushRelayOptions = {}) {
    this.#options = options;
  }

  /** Start relaying `handle` to each of `targets` (none: nothing happens). */
  start(handle: StreamHandle, targets: readonly string[]): void {
    if (targets.length === 0 || this.#relays.has(handle)) return;
    const relays = targets.map((url) => new PushRelay(handle, url, this.#options));
    this.#relays.set(handle, relays);
    void Promise.all(relays.map((relay) => relay.finished)).then(() => {
      if (this.#relays.get(handle) === relays) this.#relays.delete(handle);
    });
  }

  /** Stop the relays of `handle` (its stream ended). */
  stop(handle: StreamHandle): void {
    for (const relay of this.#relays.get(handle) ?? []) relay.stop();
  }

  /** The state of each relay of `handle`, or `undefined` when it has none. */
  status(handle: StreamHandle): RelayStatus[] | undefined {
    return this.#relays.get(handle)?.map((relay) => relay.status());
  }

  /** Stop every relay and wait until each has finished. */
  async close(): Promise<void> {
    const all = [...this.#relays.values()].flat();
    for (const relay of all) relay.stop();
    await Promise.all(all.map((relay) => relay.finished));
  }
}
