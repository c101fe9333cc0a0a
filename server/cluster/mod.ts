/**
 * An origin/edge cluster on Redis: each node claims the streams published to it in a Redis
 * directory ({@linkcode ClusterDirectory}), so that a key has one publisher across the
 * cluster, and finds there where to pull the streams it does not have
 * ({@linkcode ClusterNode.locate}). `serve()` runs one when its config has a `cluster`
 * section.
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
 * ```
 *
 * @module
 */

export * from "./directory.ts";
export * from "./node.ts";
// The kernel's types, which the cluster's API names.
export type * from "../../mod.ts";
export type { DemandedSource } from "../sources.ts";
export type { PullSourceOptions } from "../source.ts";
export type { PullClient, PullOptions } from "../../ingest/pull.ts";
