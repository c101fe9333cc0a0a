/**
 * One node of an origin/edge cluster: its publishes claimed in the Redis directory before
 * they are accepted (one publisher per key across the cluster), the claims refreshed while
 * the streams live and released when they end, and the edge copies of streams other nodes
 * have, pulled on demand.
 *
 * @module
 */

import {
  type AuthorizeHook,
  type DemandHook,
  escapeForLog,
  isValidName,
  type Logger,
  type Registry,
  silentLogger,
} from "../../mod.ts";
import type { DemandedSource } from "../sources.ts";
import { redactUrl } from "../redact.ts";
import { MIRROR_PROTOCOL } from "../_mirror.ts";
import { type ClaimOutcome, type ClusterClaim, ClusterDirectory } from "./directory.ts";
import type { ClusterDirectoryOptions } from "./directory.ts";

/** Options for {@linkcode ClusterNode}: the directory's. */
export type ClusterNodeOptions = ClusterDirectoryOptions;

/**
 * Where {@linkcode ClusterNode.demand} starts streams: the server's pull sources
 * (`Sources` of `server/sources.ts`).
 */
export interface SourceStarter {
  /** Start the path source of `app/stream`, if its path has one; true when one runs. */
  demand(app: string, stream: string): boolean;
  /** Start an on-demand source for `key` that no path configures; true when one runs. */
  startOnDemand(key: string, source: DemandedSource): boolean;
}

/** What an edge copy is published as (`PublishInfo.protocol`): never claimed. */
const EDGE_PROTOCOL = "cluster";

/** A claim this node holds (or will claim once Redis is back), and since when. */
interface HeldClaim {
  /** When the publish was authorized, by `performance.now()`. */
  readonly since: number;
  /** False while Redis was down at the publish: claimed at the next refresh. */
  claimed: boolean;
  /** Another node held it when this one tried to take it back (logged once). */
  conflict?: string;
}

/**
 * The URL a node pulls `app/stream` from at the node that claimed it: the claim's advertise
 * URL with the stream named as that protocol names a stream to read (`rtmp://HOST:PORT/APP/NAME`,
 * `srt://HOST:PORT?streamid=read:APP/NAME`); `undefined` for an advertise URL of another
 * protocol.
 *
 * @example
 * ```ts
 * import { pullUrl } from "@arcly/stream/cluster";
 *
 * pullUrl({ node: "a", advertise: "rtmp://10.0.0.5:1935" }, "live", "cam")?.href;
 * // "rtmp://10.0.0.5:1935/live/cam"
 * pullUrl({ node: "a", advertise: "srt://10.0.0.5:8890" }, "live", "cam")?.searchParams.get("streamid");
 * // "read:live/cam"
 * ```
 */
export function pullUrl(claim: ClusterClaim, app: string, stream: string): URL | undefined {
  let url: URL;
  try {
    url = new URL(claim.advertise);
  } catch {
    return undefined;
  }
  if (url.protocol === "rtmp:" || url.protocol === "rtmps:") {
    url.pathname = `${url.pathname.replace(/\/$/, "")}/${app}/${stream}`;
    return url;
  }
  if (url.protocol === "srt:") {
    url.searchParams.set("streamid", `read:${app}/${stream}`);
    return url;
  }
  return undefined;
}

/**
 * A node of the cluster, on `registry`: {@linkcode ClusterNode.authorize} wraps the access
 * policy so that a publish is accepted only once this node has claimed its key in Redis
 * (another node's claim refuses it; while Redis is down the publish goes on and is claimed
 * when Redis is back). Claims are refreshed every third of the TTL while their stream is
 * live here, released when it ends, and released too when the publish they were taken for
 * never started (within a TTL). {@linkcode ClusterNode.demand} is the registry's demand
 * hook: a reader of a stream this node does not have gets an edge copy pulled from the node
 * that has it ({@linkcode ClusterNode.edge}), one upstream per stream per node.
 *
 * Streams this node pulls from others (edge copies, published as protocol `cluster`) are
 * never claimed, nor are mirrors of another worker's streams; any other publish that did not
 * pass `authorize` (a path's pull source) is claimed as it starts, so that other nodes find it.
 *
 * @example
 * ```ts ignore
 * import { Registry } from "@arcly/stream";
 * import { ClusterNode } from "@arcly/stream/cluster";
 *
 * const registry = new Registry();
 * const node = new ClusterNode(registry, {
 *   redis: "redis://127.0.0.1:6379",
 *   node: "a",
 *   advertise: "srt://10.0.0.5:8890",
 * });
 * registry.configure({ authorize: node.authorize(() => true) });
 * await node.locate("live", "cam"); // the URL to pull it from, if another node has it
 * await node.close();
 * ```
 */
export class ClusterNode {
  /** The Redis directory this node writes its claims to. */
  readonly directory: ClusterDirectory;
  readonly #registry: Registry;
  readonly #logger: Logger;
  readonly #held = new Map<string, HeldClaim>();
  /** The last step queued for each key: a key's claim, refresh and release run in order. */
  readonly #queue = new Map<string, Promise<unknown>>();
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #off: (() => void)[];
  #refreshing = false;

  /** Join the cluster: connect to Redis and follow `registry`'s unpublishes. */
  constructor(registry: Registry, options: ClusterNodeOptions) {
    this.#registry = registry;
    this.#logger = options.logger ?? silentLogger;
    this.directory = new ClusterDirectory(options);
    this.#off = [
      // A publish that no authorize claimed (a path's pull source) is claimed as it starts,
      // so that other nodes find it; edge copies are not.
      registry.on("publish", (handle, info) => {
        if (info.protocol === EDGE_PROTOCOL || info.protocol === MIRROR_PROTOCOL) return;
        if (this.#held.has(handle.key)) return;
        const held: HeldClaim = { since: performance.now(), claimed: false };
        this.#held.set(handle.key, held);
        void this.#refresh(handle.key, held);
      }),
      registry.on("unpublish", (handle) => {
        if (this.#held.delete(handle.key)) {
          this.#inOrder(handle.key, () => this.directory.release(handle.key));
        }
      }),
    ];
    this.#timer = setInterval(() => this.#refreshAll(), Math.max(1, this.directory.ttlMs / 3));
    Deno.unrefTimer(Number(this.#timer)); // a number under Deno, whatever the Node types say
  }

  /** The keys this node has claimed (or will claim once Redis is back). */
  get claims(): string[] {
    return [...this.#held.keys()];
  }

  /**
   * `inner` (the access policy's hook) with the cluster's claim after it: a publish that
   * `inner` allows is allowed once this node holds its key, refused (and logged) when another
   * node does. Reads and other requests are `inner`'s alone.
   */
  authorize(inner: AuthorizeHook): AuthorizeHook {
    return async (request) => {
      if (await inner(request) !== true) return false;
      if (request.action !== "publish") return true;
      const { app, stream } = request;
      const key = `${app}/${stream}`;
      // What the registry refuses itself (a bad name, an unknown app, a key live here) is
      // left to it: nothing is claimed for it.
      if (!isValidName(stream) || !this.#registry.apps.includes(app)) return true;
      if (this.#registry.get(app, stream)) return true;
      const outcome = await this.#inOrder(key, () => this.directory.claim(key));
      if (outcome.status === "taken" && outcome.holder.node !== this.directory.node) {
        this.#logger.warn(
          `cluster: refused publish ${JSON.stringify(key)} via ${request.protocol} from ${
            JSON.stringify(request.peer ?? "")
          }: node ${JSON.stringify(outcome.holder.node)} (${
            escapeForLog(outcome.holder.advertise)
          }) publishes it`,
        );
        return false;
      }
      this.#held.set(key, { since: performance.now(), claimed: outcome.status === "claimed" });
      return true;
    };
  }

  /**
   * Where to pull `app/stream` from: the URL at the node that claimed it, or `undefined`
   * when no other node has it (or Redis does not answer).
   */
  async locate(app: string, stream: string): Promise<URL | undefined> {
    if (!isValidName(app) || !isValidName(stream)) return undefined;
    const holder = await this.directory.lookup(`${app}/${stream}`);
    if (!holder || holder.node === this.directory.node) return undefined;
    return pullUrl(holder, app, stream);
  }

  /**
   * The edge copy to start for a reader of `app/stream` that this node does not have (for
   * `Sources.startOnDemand`): pulled from the node that claimed it, the owner looked up
   * again before every reconnect (so a stream published elsewhere after its node died is
   * followed there), and ended once no node has it. `undefined` when no other node has it.
   */
  async edge(app: string, stream: string): Promise<DemandedSource | undefined> {
    let found = await this.locate(app, stream);
    if (!found) return undefined;
    this.#logger.info(
      `cluster: ${JSON.stringify(`${app}/${stream}`)} is pulled from ${
        escapeForLog(redactUrl(found.href))
      }`,
    );
    return {
      url: async () => {
        const url = found ?? await this.locate(app, stream);
        found = undefined; // the first connection uses the lookup just made
        return url?.href;
      },
      protocol: EDGE_PROTOCOL,
      // An owner that is gone is found gone within a TTL: the copy need not wait longer for
      // it, to connect or for its media.
      retryWindowMs: this.directory.ttlMs,
      timeoutMs: this.directory.ttlMs,
    };
  }

  /**
   * The registry's demand hook for a node whose pull sources are `sources`: a stream's own
   * path source first, else an edge copy of it from the node that has it
   * ({@linkcode ClusterNode.edge}), one per stream on this node whoever asks.
   */
  demand(sources: SourceStarter): DemandHook {
    return async (app, stream) => {
      if (sources.demand(app, stream)) return true;
      const edge = await this.edge(app, stream);
      return edge !== undefined && sources.startOnDemand(`${app}/${stream}`, edge);
    };
  }

  /** Leave the cluster: release every claim (bounded by the directory's timeout) and disconnect. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    for (const off of this.#off) off();
    const keys = [...this.#held.keys()];
    this.#held.clear();
    for (const key of keys) this.#inOrder(key, () => this.directory.release(key));
    // The releases of streams that just ended too.
    await Promise.all(this.#queue.values());
    await this.directory.close();
  }

  /** Run `step` after every step queued before it for `key`. */
  #inOrder<T>(key: string, step: () => Promise<T>): Promise<T> {
    const previous = this.#queue.get(key) ?? Promise.resolve();
    const next = previous.then(step, step);
    const settled = next.catch(() => {});
    this.#queue.set(key, settled);
    settled.then(() => {
      if (this.#queue.get(key) === settled) this.#queue.delete(key);
    });
    return next;
  }

  /** One round of refreshes (skipped while the previous one still runs). */
  async #refreshAll(): Promise<void> {
    if (this.#refreshing) return;
    this.#refreshing = true;
    try {
      await Promise.all([...this.#held].map(([key, held]) => this.#refresh(key, held)));
    } finally {
      this.#refreshing = false;
    }
  }

  async #refresh(key: string, held: HeldClaim): Promise<void> {
    const [app, ...rest] = key.split("/");
    if (!this.#registry.get(app, rest.join("/"))) {
      // Claimed for a publish that never started (the protocol failed after authorizing).
      if (performance.now() - held.since < this.directory.ttlMs) return;
      this.#held.delete(key);
      await this.#inOrder(key, () => this.directory.release(key));
      return;
    }
    if (held.claimed && await this.#inOrder(key, () => this.directory.refresh(key))) return;
    // Not claimed yet (Redis was down at the publish), or the claim expired meanwhile.
    const outcome: ClaimOutcome = await this.#inOrder(key, () => this.directory.claim(key));
    if (this.#held.get(key) !== held) return; // ended while claiming: the release is queued
    held.claimed = outcome.status === "claimed";
    if (outcome.status === "taken" && held.conflict !== outcome.holder.node) {
      held.conflict = outcome.holder.node;
      this.#logger.warn(
        `cluster: ${JSON.stringify(key)} is published here and on node ${
          JSON.stringify(outcome.holder.node)
        }, which claimed it while this node could not; readers elsewhere are sent there`,
      );
    }
  }
}
