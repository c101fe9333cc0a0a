/**
 * Every core: the primary (the main thread, worker 0) runs the whole server and starts
 * `workers - 1` Deno workers that each run RTMP and HTTP on the same ports (`reusePort`, so
 * the kernel spreads connections over them). The primary is the hub of the mirrored
 * streams: a publish in a worker is mirrored into the primary, which mirrors every stream to
 * every other worker, so a player on any core starts on the same replay buffer.
 *
 * What must stay in one place stays in the primary: RTSP (its RTP/RTCP UDP ports), SRT
 * (UDP), the TLS listeners, live HLS and recording (segment names and sequence numbers),
 * WHIP/WHEP sessions, the streams API and the metrics; the workers forward those HTTP
 * requests to it (`_forward.ts`).
 */

import type {
  Logger,
  PublishInfo,
  Registry,
  StreamHandle,
  StreamKey,
  Subscription,
} from "../mod.ts";
import type { MetricsCounts } from "../ingest/http/metrics.ts";
import type { ServerConfig } from "./config.ts";
import type { ForwardTarget } from "./_forward.ts";
import { MIRROR_PROTOCOL, type MirrorMessage, mirrorStream, MirrorStreams } from "./_mirror.ts";

/** What the primary tells a worker. */
export type ToWorker =
  | {
    readonly type: "start";
    readonly index: number;
    readonly config: ServerConfig;
    readonly forward?: ForwardTarget;
  }
  | { readonly type: "reload"; readonly config: ServerConfig }
  | { readonly type: "close" }
  /** The answer to a worker's `demand`: whether the stream is live or starting. */
  | { readonly type: "demanded"; readonly id: number; readonly starting: boolean }
  | MirrorMessage;

/** What a worker tells the primary. */
export type FromWorker =
  | { readonly type: "ready" }
  | { readonly type: "failed"; readonly error: string }
  | { readonly type: "log"; readonly level: keyof Logger; readonly message: string }
  | { readonly type: "closed" }
  /** A `reload` was applied (or refused, and logged). */
  | { readonly type: "reloaded" }
  /** A reader wants a stream that is not live there: start it (an on-demand source). */
  | { readonly type: "demand"; readonly id: number; readonly app: string; readonly stream: string }
  /**
   * What the worker counts: the primary's mirrors (by id) that have viewers there now, its
   * viewers per stream key, and its metrics counters.
   */
  | {
    readonly type: "stats";
    readonly reading: readonly string[];
    readonly viewers: Readonly<Record<StreamKey, number>>;
    readonly metrics: MetricsCounts;
  }
  | MirrorMessage;

/** How often a worker reports its counts (and soon after each publish and unpublish). */
const STATS_REPORT_MS = 1000;
/** How long a worker's reader waits for the primary to answer a demand. */
const DEMAND_TIMEOUT_MS = 10_000;

/** How long a worker may take to start, and to close, before it is terminated. */
const WORKER_START_TIMEOUT_MS = 30_000;
/** The longest a reload waits for the workers to take it, in ms. */
const RELOAD_TIMEOUT_MS = 5000;
const WORKER_CLOSE_TIMEOUT_MS = 10_000;

/** One worker as the primary sees it. */
interface Peer {
  readonly index: number;
  readonly worker: Worker;
  /** Aborted when the worker is gone: its mirrors stop. */
  readonly gone: AbortController;
  ready: boolean;
  closed: PromiseWithResolvers<void>;
  /** Reloads handed to the worker that it has not answered yet, oldest first. */
  readonly reloads: PromiseWithResolvers<void>[];
  /** The worker's latest counts. */
  stats?: Extract<FromWorker, { type: "stats" }>;
  /**
   * One subscription of the primary's, never read, per stream the worker has viewers of:
   * it makes them count as readers of the origin (an on-demand source stays up for them).
   */
  readonly viewing: Map<StreamHandle, Subscription>;
}

/** The primary's side: the workers, and the mirrors between them. */
export class WorkerGroup {
  #registry: Registry;
  #logger: Logger;
  #peers: Peer[] = [];
  #mirrors: MirrorStreams;
  /** Which worker each live stream of the primary came from (0: the primary itself). */
  #origins = new WeakMap<StreamHandle, { origin: number; protocol: string }>();
  /** The worker whose publish is being republished now, while `startPublish` runs. */
  #incoming?: { origin: number; protocol: string };
  #next = 0;
  /** The primary's streams mirrored to workers, by the id they were sent with. */
  #sent = new Map<string, StreamHandle>();
  /** How many mirrors to workers read each stream of the primary. */
  #outgoing = new Map<StreamHandle, number>();
  #stopListening: () => void;

  private constructor(registry: Registry, logger: Logger) {
    this.#registry = registry;
    this.#logger = logger;
    this.#mirrors = new MirrorStreams(registry, logger, "refuse");
    this.#stopListening = registry.on("publish", (handle, info) => this.#published(handle, info));
  }

  /**
   * Start `count` workers (indices 1 to `count`) with `config` (their listeners already
   * bound by the primary, to share) and wait until each is ready.
   *
   * @throws when one fails to start; the others are closed.
   */
  static async start(
    registry: Registry,
    logger: Logger,
    count: number,
    config: ServerConfig,
    forward: ForwardTarget | undefined,
  ): Promise<WorkerGroup> {
    const group = new WorkerGroup(registry, logger);
    try {
      await Promise.all(
        Array.from({ length: count }, (_, i) => group.#spawn(i + 1, config, forward)),
      );
    } catch (error) {
      await group.close();
      throw error;
    }
    return group;
  }

  /** The metrics counters of every running worker but the primary, as last reported. */
  metricsElsewhere(): MetricsCounts[] {
    return this.#peers.flatMap((peer) => peer.ready && peer.stats ? [peer.stats.metrics] : []);
  }

  /**
   * The viewers of `handle` on every worker: the primary's own subscriptions but those that
   * mirror it to workers, and what each worker last reported for its key.
   */
  subscribers(handle: StreamHandle): number {
    let count = handle.subscriberCount - (this.#outgoing.get(handle) ?? 0);
    for (const peer of this.#peers) {
      if (peer.viewing.has(handle)) count--;
      if (peer.ready) count += peer.stats?.viewers[handle.key] ?? 0;
    }
    return count;
  }

  async #spawn(index: number, config: ServerConfig, forward?: ForwardTarget): Promise<void> {
    const worker = new Worker(new URL("./_worker.ts", import.meta.url), { type: "module" });
    const peer: Peer = {
      index,
      worker,
      gone: new AbortController(),
      ready: false,
      closed: Promise.withResolvers(),
      viewing: new Map(),
      reloads: [],
    };
    this.#peers.push(peer);
    const started = Promise.withResolvers<void>();
    const timer = setTimeout(
      () =>
        started.reject(new Error(`worker ${index} did not start in ${WORKER_START_TIMEOUT_MS} ms`)),
      WORKER_START_TIMEOUT_MS,
    );
    worker.onmessage = (event: MessageEvent<FromWorker>) => {
      const message = event.data;
      switch (message.type) {
        case "ready":
          peer.ready = true;
          started.resolve();
          for (const handle of this.#registry.list()) this.#mirrorTo(peer, handle);
          return;
        case "failed":
          started.reject(new Error(`worker ${index}: ${message.error}`));
          return;
        case "log":
          this.#logger[message.level](`worker ${index}: ${message.message}`);
          return;
        case "closed":
          peer.closed.resolve();
          return;
        case "reloaded":
          peer.reloads.shift()?.resolve();
          return;
        case "demand":
          void this.#demanded(peer, message.id, message.app, message.stream);
          return;
        case "stats":
          peer.stats = message;
          this.#viewers(peer, message.reading);
          return;
        default:
          this.#fromWorker(peer, message);
      }
    };
    worker.onerror = (event) => {
      event.preventDefault(); // one worker's failure must not end the process
      this.#logger.error(
        `worker ${index} failed, its connections are gone (the other workers go on): ${event.message}`,
      );
      started.reject(new Error(`worker ${index} failed: ${event.message}`));
      this.#drop(peer);
    };
    worker.postMessage({ type: "start", index, config, forward } satisfies ToWorker);
    try {
      await started.promise;
    } finally {
      clearTimeout(timer);
    }
  }

  /** A worker's message about its mirrored streams. */
  #fromWorker(peer: Peer, message: MirrorMessage): void {
    if (message.type === "refused") return; // the primary ends nothing of its own for a worker
    this.#incoming = message.type === "publish"
      ? { origin: peer.index, protocol: message.protocol }
      : undefined;
    try {
      this.#mirrors.receive(
        { ...message, id: `${peer.index}/${message.id}` },
        (reply) => this.#post(peer, { ...reply, id: message.id }),
      );
    } finally {
      this.#incoming = undefined;
    }
  }

  /** A publish in the primary's registry, its own or a worker's mirror: send it to the others. */
  #published(handle: StreamHandle, info: PublishInfo): void {
    const origin = info.protocol === MIRROR_PROTOCOL && this.#incoming
      ? this.#incoming
      : { origin: 0, protocol: info.protocol };
    this.#origins.set(handle, origin);
    for (const peer of this.#peers) if (peer.ready) this.#mirrorTo(peer, handle, info.peer);
  }

  #mirrorTo(peer: Peer, handle: StreamHandle, publisher?: string): void {
    // A stream published before the workers started is the primary's own.
    const origin = this.#origins.get(handle) ??
      { origin: 0, protocol: handle.metadata().ingestProtocol };
    if (origin.origin === peer.index || handle.closed) return;
    const id = `0/${this.#next++}`;
    const peerAddr = publisher ?? handle.metadata().publisherAddr;
    this.#sent.set(id, handle);
    this.#outgoing.set(handle, (this.#outgoing.get(handle) ?? 0) + 1);
    mirrorStream(
      handle,
      id,
      origin.protocol,
      peerAddr,
      (m) => this.#post(peer, m),
      peer.gone.signal,
    )
      .catch((error) =>
        this.#logger.error(`mirror of ${handle.key} to worker ${peer.index}: ${error}`)
      )
      .finally(() => {
        this.#sent.delete(id);
        const left = this.#outgoing.get(handle)! - 1;
        if (left > 0) this.#outgoing.set(handle, left);
        else this.#outgoing.delete(handle);
      });
  }

  /** Hold a reader of each stream (by mirror id) the worker has viewers of, and no other. */
  #viewers(peer: Peer, reading: readonly string[]): void {
    const read = new Set(reading.map((id) => this.#sent.get(id)));
    for (const [handle, subscription] of peer.viewing) {
      if (read.has(handle) && !handle.closed) continue;
      peer.viewing.delete(handle);
      void subscription.cancel().catch(() => {});
    }
    for (const handle of read) if (handle) this.#viewing(peer, handle);
  }

  #viewing(peer: Peer, handle: StreamHandle): void {
    if (peer.viewing.has(handle) || handle.closed || peer.gone.signal.aborted) return;
    peer.viewing.set(handle, handle.subscribe());
  }

  /** A worker's reader wants a stream: the primary's lookup may start it (on demand). */
  async #demanded(peer: Peer, id: number, app: string, stream: string): Promise<void> {
    const handle = await this.#registry.acquire(app, stream, { signal: peer.gone.signal });
    // The reader is the worker's: count it here until the worker's reports say it left.
    if (handle) this.#viewing(peer, handle);
    // Its mirror went to the worker at its publish, before this answer: messages keep order.
    this.#post(peer, { type: "demanded", id, starting: handle !== undefined });
  }

  #post(peer: Peer, message: ToWorker): void {
    if (!peer.gone.signal.aborted) peer.worker.postMessage(message);
  }

  /** Forget a worker that failed or closed: its streams end here and in the others. */
  #drop(peer: Peer): void {
    if (peer.gone.signal.aborted) return;
    peer.ready = false;
    peer.gone.abort();
    peer.worker.terminate();
    peer.closed.resolve();
    this.#viewers(peer, []);
    this.#mirrors.endFrom((id) => id.startsWith(`${peer.index}/`));
  }

  /**
   * Hand a reloaded config to every worker (each applies what it runs); resolves once each
   * has, or is gone, or after {@linkcode RELOAD_TIMEOUT_MS}.
   */
  async reload(config: ServerConfig): Promise<void> {
    const answers = [];
    for (const peer of this.#peers) {
      if (!peer.ready) continue;
      const answer = Promise.withResolvers<void>();
      peer.reloads.push(answer);
      this.#post(peer, { type: "reload", config });
      answers.push(Promise.race([answer.promise, peer.closed.promise]));
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<void>((resolve) => timer = setTimeout(resolve, RELOAD_TIMEOUT_MS));
    await Promise.race([Promise.all(answers), late]);
    clearTimeout(timer);
  }

  /** Close every worker (each ends its connections), waiting a bounded time for each. */
  async close(): Promise<void> {
    this.#stopListening();
    await Promise.all(this.#peers.map(async (peer) => {
      this.#post(peer, { type: "close" });
      const timer = setTimeout(() => peer.closed.resolve(), WORKER_CLOSE_TIMEOUT_MS);
      await peer.closed.promise;
      clearTimeout(timer);
      this.#drop(peer);
    }));
  }
}

/** A worker's side: its publishes go to the primary, the primary's streams come in as mirrors. */
export class WorkerLink {
  #registry: Registry;
  #post: (message: FromWorker) => void;
  #mirrors: MirrorStreams;
  #own = new Map<string, StreamHandle>();
  #next = 0;
  #demands = new Map<number, (starting: boolean) => void>();
  #nextDemand = 0;
  #stopListening: () => void;
  #stopListeningEnds: () => void;
  #counts: () => MetricsCounts;
  #reporting: ReturnType<typeof setInterval>;
  #reportSoon?: ReturnType<typeof setTimeout>;

  /**
   * Link `registry` to the primary through `post`: its publishes are mirrored there, a
   * reader of a stream that is not live asks the primary for it (an on-demand source runs
   * there), and the viewers of its mirrors are reported as reads of their origin.
   */
  constructor(
    registry: Registry,
    logger: Logger,
    post: (message: FromWorker) => void,
    counts: () => MetricsCounts,
  ) {
    this.#registry = registry;
    this.#post = post;
    this.#counts = counts;
    this.#mirrors = new MirrorStreams(registry, logger, "replace");
    registry.configure({ demand: (app, stream) => this.#demand(app, stream) });
    this.#reporting = setInterval(() => this.#report(), STATS_REPORT_MS);
    Deno.unrefTimer(this.#reporting);
    this.#stopListeningEnds = registry.on("unpublish", () => this.#soon());
    this.#stopListening = registry.on("publish", (handle, info) => {
      if (info.protocol === MIRROR_PROTOCOL) return;
      const id = String(this.#next++);
      this.#own.set(id, handle);
      this.#soon();
      mirrorStream(handle, id, info.protocol, info.peer, post)
        .catch((error) => logger.error(`mirror of ${handle.key}: ${error}`))
        .finally(() => this.#own.delete(id));
    });
  }

  /** Report the counts now. */
  #report(): void {
    const own = new Set(this.#own.values());
    const viewers: Record<StreamKey, number> = {};
    for (const handle of this.#registry.list()) {
      // A stream published here has one subscription that mirrors it to the primary.
      const count = handle.subscriberCount - (own.has(handle) ? 1 : 0);
      if (count > 0) viewers[handle.key] = count;
    }
    const reading = this.#mirrors.reading();
    this.#post({ type: "stats", reading, viewers, metrics: this.#counts() });
  }

  /** Report the counts shortly (a publish or unpublish just changed them). */
  #soon(): void {
    this.#reportSoon ??= setTimeout(() => {
      this.#reportSoon = undefined;
      this.#report();
    }, 50);
  }

  /** Ask the primary for a stream that is not live here; its mirror is the answer. */
  #demand(app: string, stream: string): Promise<boolean> {
    const id = this.#nextDemand++;
    const { promise, resolve } = Promise.withResolvers<boolean>();
    const timer = setTimeout(() => resolve(false), DEMAND_TIMEOUT_MS);
    this.#demands.set(id, resolve);
    this.#post({ type: "demand", id, app, stream });
    return promise.finally(() => {
      clearTimeout(timer);
      this.#demands.delete(id);
    });
  }

  /** Apply a message of the primary about mirrored streams or a demand. */
  receive(message: MirrorMessage | Extract<ToWorker, { type: "demanded" }>): void {
    if (message.type === "demanded") {
      this.#demands.get(message.id)?.(message.starting);
      return;
    }
    if (message.type !== "refused") {
      this.#mirrors.receive(message, this.#post);
      return;
    }
    // The key was published on another worker first: this worker's publisher loses.
    const own = this.#own.get(message.id);
    if (own) this.#registry.endPublish(own, "error");
  }

  /** Stop mirroring new publishes and reporting reads. */
  close(): void {
    this.#stopListening();
    this.#stopListeningEnds();
    clearInterval(this.#reporting);
    clearTimeout(this.#reportSoon);
    for (const resolve of this.#demands.values()) resolve(false);
  }
}
