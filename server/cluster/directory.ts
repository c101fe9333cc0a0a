/**
 * The cluster's stream directory in Redis: which node publishes which stream, as one key per
 * stream that the publishing node claims with a TTL, refreshes while the stream lives and
 * deletes when it ends, each write a compare-and-set so that a node never touches another's
 * claim.
 *
 * @module
 */

import { Redis } from "ioredis";
import { escapeForLog, type Logger, silentLogger } from "../../mod.ts";
import { redactUrl } from "../redact.ts";

/** Who holds a stream: the node's id and the URL other nodes pull its streams from. */
export interface ClusterClaim {
  /** The node's id. */
  readonly node: string;
  /** Where other nodes pull its streams from: `rtmp://HOST:PORT` or `srt://HOST:PORT`. */
  readonly advertise: string;
}

/**
 * What {@linkcode ClusterDirectory.claim} found: the stream is this node's now (or was
 * already), another node holds it, or Redis could not be asked.
 */
export type ClaimOutcome =
  | { readonly status: "claimed" }
  | { readonly status: "taken"; readonly holder: ClusterClaim }
  | { readonly status: "unreachable" };

/** Options for {@linkcode ClusterDirectory}. */
export interface ClusterDirectoryOptions {
  /** The Redis server: `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]` or `rediss://…` (TLS). */
  redis: string;
  /** This node's id, unique in the cluster. */
  node: string;
  /** Where other nodes pull this node's streams from: `rtmp://HOST:PORT` or `srt://HOST:PORT`. */
  advertise: string;
  /**
   * How long a claim lives unless refreshed, in ms (default 10,000): a node that dies stops
   * appearing within this time.
   */
  ttlMs?: number;
  /** The prefix of every key written (default `"arcly:stream:"`, then `APP/NAME`). */
  keyPrefix?: string;
  /** Deadline of the connect and of each command, in ms (default 2,000). */
  timeoutMs?: number;
  /** Where an outage and the recovery are logged, once each. */
  logger?: Logger;
}

/** Refresh the TTL of a claim that is ours (1), or say it is not (0). */
const REFRESH_IF_OURS =
  `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end
return 0`;

/** Delete a claim that is ours (1), or leave another's alone (0). */
const DELETE_IF_OURS =
  `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end
return 0`;

/** A claim longer than this is not one any node of ours wrote. */
const MAX_CLAIM_LENGTH = 2048;

/**
 * The value stored in Redis read back as a claim; `undefined` for one that no node of ours
 * wrote (the directory never trusts what it reads to be well-formed).
 */
function parseClaim(value: string | null): ClusterClaim | undefined {
  if (value === null || value.length > MAX_CLAIM_LENGTH) return undefined;
  try {
    const { node, advertise } = JSON.parse(value);
    if (typeof node !== "string" || typeof advertise !== "string") return undefined;
    return { node, advertise };
  } catch {
    return undefined;
  }
}

/**
 * One node's view of the cluster's stream directory in Redis. A stream key `APP/NAME` is
 * stored at `keyPrefix + APP/NAME` with the value `{"node":…,"advertise":…}` and a TTL:
 * {@linkcode ClusterDirectory.claim} writes it if no one holds it (`SET NX PX`),
 * {@linkcode ClusterDirectory.refresh} and {@linkcode ClusterDirectory.release} change it only
 * while it is this node's (a Lua compare-and-set), and {@linkcode ClusterDirectory.lookup}
 * reads it.
 *
 * While Redis is down every call answers at once (no queue, each command bounded by
 * `timeoutMs`): `claim` says `unreachable`, `refresh` and `release` return `false`, `lookup`
 * finds nothing. The outage is logged once, and the recovery once; the client reconnects by
 * itself (every 100 ms to 2 s).
 *
 * @example
 * ```ts ignore
 * import { ClusterDirectory } from "@arcly/stream/cluster";
 *
 * const directory = new ClusterDirectory({
 *   redis: "redis://127.0.0.1:6379",
 *   node: "a",
 *   advertise: "srt://10.0.0.5:8890",
 * });
 * await directory.claim("live/cam"); // { status: "claimed" }
 * await directory.lookup("live/cam"); // { node: "a", advertise: "srt://10.0.0.5:8890" }
 * await directory.release("live/cam"); // true
 * await directory.close();
 * ```
 */
export class ClusterDirectory {
  /** This node's id. */
  readonly node: string;
  /** Where other nodes pull this node's streams from. */
  readonly advertise: string;
  /** How long a claim lives unless refreshed, in ms. */
  readonly ttlMs: number;
  readonly #value: string;
  readonly #prefix: string;
  readonly #redis: Redis;
  readonly #logger: Logger;
  readonly #shown: string;
  #reachable = true;
  #closed = false;

  /** Connect to `options.redis` (in the background: calls made before it is up fail fast). */
  constructor(options: ClusterDirectoryOptions) {
    this.node = options.node;
    this.advertise = options.advertise;
    this.ttlMs = options.ttlMs ?? 10_000;
    this.#value = JSON.stringify({ node: this.node, advertise: this.advertise });
    this.#prefix = options.keyPrefix ?? "arcly:stream:";
    this.#logger = options.logger ?? silentLogger;
    this.#shown = escapeForLog(redactUrl(options.redis));
    const timeoutMs = options.timeoutMs ?? 2000;
    this.#redis = new Redis(options.redis, {
      connectTimeout: timeoutMs,
      commandTimeout: timeoutMs,
      // Fail fast while disconnected: a publish or a reader must not wait on an outage.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: (attempt: number) => Math.min(attempt * 100, 2000),
    });
    this.#redis.on("error", (error: Error) => this.#unreachable(error));
    this.#redis.on("ready", () => this.#recovered());
  }

  /** Whether the last word from Redis was an answer (not an error or a lost connection). */
  get reachable(): boolean {
    return this.#reachable;
  }

  /** Resolves once connected (true), or with false after `ms` without a connection. */
  async connected(ms: number): Promise<boolean> {
    if (this.#redis.status === "ready") return true;
    const { promise, resolve } = Promise.withResolvers<boolean>();
    const onReady = () => resolve(true);
    const timer = setTimeout(() => resolve(false), ms);
    this.#redis.once("ready", onReady);
    try {
      return await promise;
    } finally {
      clearTimeout(timer);
      this.#redis.off("ready", onReady);
    }
  }

  /**
   * Claim `key` (`APP/NAME`) for this node: written if no one holds it, its TTL renewed if
   * this node does already, refused if another node does (the outcome names it).
   */
  async claim(key: string): Promise<ClaimOutcome> {
    const at = this.#prefix + key;
    // A claim may expire between the two steps; then it is tried once more.
    for (let attempt = 0; attempt < 2; attempt++) {
      const written = await this.#ask(() =>
        this.#redis.set(at, this.#value, "PX", this.ttlMs, "NX")
      );
      if (written === undefined) return { status: "unreachable" };
      if (written === "OK") return { status: "claimed" };
      const ours = await this.#ask(() =>
        this.#redis.eval(REFRESH_IF_OURS, 1, at, this.#value, this.ttlMs)
      );
      if (ours === undefined) return { status: "unreachable" };
      if (ours === 1) return { status: "claimed" };
      const holder = await this.#ask(() => this.#redis.get(at));
      if (holder === undefined) return { status: "unreachable" };
      if (holder !== null) {
        return { status: "taken", holder: parseClaim(holder) ?? { node: "?", advertise: "" } };
      }
    }
    return { status: "unreachable" };
  }

  /** Renew the TTL of this node's claim of `key`; false when it is not this node's (or Redis is down). */
  async refresh(key: string): Promise<boolean> {
    const at = this.#prefix + key;
    return await this.#ask(() =>
      this.#redis.eval(REFRESH_IF_OURS, 1, at, this.#value, this.ttlMs)
    ) === 1;
  }

  /** Delete this node's claim of `key`; false when it was not this node's (or Redis is down). */
  async release(key: string): Promise<boolean> {
    const at = this.#prefix + key;
    return await this.#ask(() => this.#redis.eval(DELETE_IF_OURS, 1, at, this.#value)) === 1;
  }

  /** Who holds `key`, if anyone does (and Redis answers). */
  async lookup(key: string): Promise<ClusterClaim | undefined> {
    return parseClaim(await this.#ask(() => this.#redis.get(this.#prefix + key)) ?? null);
  }

  /** Disconnect. Claims are left to expire unless released first. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.#redis.quit();
    } catch {
      this.#redis.disconnect();
    }
  }

  /** Run one command: its answer, or `undefined` when Redis did not give one. */
  async #ask<T>(command: () => Promise<T>): Promise<T | undefined> {
    if (this.#closed) return undefined;
    try {
      const answer = await command();
      this.#recovered();
      return answer;
    } catch (error) {
      if ((error as Error).name === "ReplyError") {
        // Redis answered, with an error (e.g. another program's value of another type).
        this.#logger.warn(`cluster: Redis refused a command: ${escapeForLog(String(error))}`);
      } else {
        this.#unreachable(error as Error);
      }
      return undefined;
    }
  }

  #unreachable(error: Error): void {
    if (!this.#reachable || this.#closed) return;
    this.#reachable = false;
    this.#logger.warn(
      `cluster: Redis at ${this.#shown} is unreachable (${escapeForLog(error.message)}); ` +
        "local streams go on, publishes are not claimed and other nodes' streams not found until it is back",
    );
  }

  #recovered(): void {
    if (this.#reachable || this.#closed) return;
    this.#reachable = true;
    this.#logger.info(`cluster: Redis at ${this.#shown} is reachable again`);
  }
}
