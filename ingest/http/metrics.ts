/**
 * Prometheus metrics for a {@linkcode Registry}: an {@linkcode Observer} that counts the
 * kernel's events, and a renderer that reads the live streams' QoS at scrape time.
 *
 * @module
 */

import type {
  Observer,
  PublishInfo,
  Registry,
  StreamHandle,
  StreamKey,
  UnpublishReason,
} from "../../mod.ts";

/** The counters of a {@linkcode Metrics}, as plain data another process can send. */
export interface MetricsCounts {
  /** Publishes started, by protocol. */
  readonly publishes: Readonly<Record<string, number>>;
  /** Publishes ended, by reason. */
  readonly unpublishes: Readonly<Record<string, number>>;
  /** Times a subscriber fell a ring behind. */
  readonly lagEvents: number;
  /** Frames skipped by lagging subscribers. */
  readonly laggedFrames: number;
  /** Subscribers evicted for lagging. */
  readonly evictions: number;
  /** GOPs longer than the GOP cache. */
  readonly gopTruncations: number;
}

/** Options for {@linkcode Metrics}: what other workers of the same server add. */
export interface MetricsOptions {
  /** The counters of other workers, added to this one's at every render (default none). */
  elsewhere?: () => Iterable<MetricsCounts>;
  /** A stream's subscribers, for `arcly_stream_subscribers` (default its `subscriberCount`). */
  subscribers?: (handle: StreamHandle) => number;
}
import type { HlsRequestKind } from "./_hls_cache.ts";

/** The kinds of HLS request counted, always rendered (0 until the first). */
const HLS_KINDS: readonly HlsRequestKind[] = ["playlist", "segment", "part", "init"];

/**
 * Counts publishes, lag, evictions and GOP truncations, and renders them with each live
 * stream's gauges in the Prometheus text format. It never looks at single frames, so it
 * adds nothing to the publishing path.
 *
 * @example
 * ```ts
 * import { Registry } from "@arcly/stream";
 * import { Metrics } from "@arcly/stream/http";
 *
 * const metrics = new Metrics();
 * const registry = new Registry({ observer: metrics });
 * registry.startPublish("live", "a", { protocol: "rtmp" });
 * console.log(metrics.render(registry));
 * ```
 */
export class Metrics implements Observer {
  #options: MetricsOptions;
  #publishes = new Map<string, number>();
  #unpublishes = new Map<string, number>();
  #lagEvents = 0;
  #laggedFrames = 0;
  #evictions = 0;
  #gopTruncations = 0;
  #hlsRequests = new Map<string, number>(HLS_KINDS.map((kind) => [kind, 0]));

  /** Count for one server, or for one worker of several (see {@linkcode MetricsOptions}). */
  constructor(options: MetricsOptions = {}) {
    this.#options = options;
  }

  /** The counters as plain data (what a worker sends to the one that renders). */
  counts(): MetricsCounts {
    return {
      publishes: Object.fromEntries(this.#publishes),
      unpublishes: Object.fromEntries(this.#unpublishes),
      lagEvents: this.#lagEvents,
      laggedFrames: this.#laggedFrames,
      evictions: this.#evictions,
      gopTruncations: this.#gopTruncations,
    };
  }

  /** Count a publish by protocol. */
  onPublish(_key: StreamKey, info: PublishInfo): void {
    bump(this.#publishes, info.protocol || "unknown");
  }

  /** Count an unpublish by reason. */
  onUnpublish(_key: StreamKey, reason: UnpublishReason): void {
    bump(this.#unpublishes, reason);
  }

  /** Count a lag event and the frames it skipped. */
  onSubscriberLagged(_key: StreamKey, skipped: number): void {
    this.#lagEvents++;
    this.#laggedFrames += skipped;
  }

  /** Count an eviction. */
  onSubscriberEvicted(): void {
    this.#evictions++;
  }

  /** Count a truncated GOP. */
  onGopTruncated(): void {
    this.#gopTruncations++;
  }

  /**
   * Count an HLS request that reached this server (a cache in front answers the others),
   * by kind; give it to `LiveHls` as its `onRequest`.
   */
  onHlsRequest(kind: HlsRequestKind): void {
    bump(this.#hlsRequests, kind);
  }

  /** The Prometheus text exposition of the counters and of every live stream in `registry`. */
  render(registry: Registry): string {
    const lines: string[] = [];
    const all = [this.counts(), ...this.#options.elsewhere?.() ?? []];
    const sum = (count: (counts: MetricsCounts) => number) =>
      all.reduce((total, counts) => total + count(counts), 0);
    const byLabel = (pick: (counts: MetricsCounts) => Readonly<Record<string, number>>) => {
      const totals = new Map<string, number>();
      for (const counts of all) {
        for (const [label, n] of Object.entries(pick(counts))) {
          totals.set(label, (totals.get(label) ?? 0) + n);
        }
      }
      return totals;
    };
    const subscribers = this.#options.subscribers ?? ((h: StreamHandle) => h.subscriberCount);
    const metric = (name: string, type: string, help: string, samples: [string, number][]) => {
      lines.push(`# HELP arcly_${name} ${help}`, `# TYPE arcly_${name} ${type}`);
      for (const [labels, value] of samples) lines.push(`arcly_${name}${labels} ${value}`);
    };
    const streams = registry.list();
    const perStream = (value: (h: (typeof streams)[number]) => number) =>
      streams.map((h): [string, number] => [`{stream="${escapeLabel(h.key)}"}`, value(h)]);
    metric("streams", "gauge", "Live streams.", [["", streams.length]]);
    metric(
      "publishes_total",
      "counter",
      "Publishes started, by protocol.",
      labelled(byLabel((c) => c.publishes), "protocol"),
    );
    metric(
      "unpublishes_total",
      "counter",
      "Publishes ended, by reason.",
      labelled(byLabel((c) => c.unpublishes), "reason"),
    );
    metric("subscriber_lag_events_total", "counter", "Times a subscriber fell a ring behind.", [[
      "",
      sum((c) => c.lagEvents),
    ]]);
    metric("subscriber_lagged_frames_total", "counter", "Frames skipped by lagging subscribers.", [[
      "",
      sum((c) => c.laggedFrames),
    ]]);
    metric("subscriber_evictions_total", "counter", "Subscribers evicted for lagging.", [[
      "",
      sum((c) => c.evictions),
    ]]);
    metric("gop_truncations_total", "counter", "GOPs longer than the GOP cache.", [[
      "",
      sum((c) => c.gopTruncations),
    ]]);
    metric(
      "hls_requests_total",
      "counter",
      "HLS requests served at this origin, by kind (playlist, segment, part, init).",
      labelled(this.#hlsRequests, "kind"),
    );
    metric(
      "stream_subscribers",
      "gauge",
      "Open subscriptions per stream.",
      perStream(subscribers),
    );
    metric(
      "stream_frames_total",
      "counter",
      "Frames published per stream.",
      perStream((h) => h.qos().totalFrames),
    );
    metric(
      "stream_bytes_total",
      "counter",
      "Payload bytes published per stream.",
      perStream((h) => h.qos().totalBytes),
    );
    metric(
      "stream_video_bitrate_bps",
      "gauge",
      "Video bitrate over the last second.",
      perStream((h) => h.qos().videoBitrateBps),
    );
    metric(
      "stream_audio_bitrate_bps",
      "gauge",
      "Audio bitrate over the last second.",
      perStream((h) => h.qos().audioBitrateBps),
    );
    metric(
      "stream_fps",
      "gauge",
      "Video frames per second over the last second.",
      perStream((h) => h.qos().fps),
    );
    return lines.join("\n") + "\n";
  }
}

function bump(counts: Map<string, number>, label: string): void {
  counts.set(label, (counts.get(label) ?? 0) + 1);
}

function labelled(counts: Map<string, number>, name: string): [string, number][] {
  return [...counts].map(([label, value]) => [`{${name}="${escapeLabel(label)}"}`, value]);
}

function escapeLabel(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`));
}
