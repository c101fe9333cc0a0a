/**
 * The RTSP side of the policy: the `auth` option of `serveRtsp` that challenges with
 * Digest where the policy's users allow it, else with Basic.
 *
 * @module
 */

import type { RtspAuthOptions } from "../../ingest/rtsp/mod.ts";
import type { AccessPolicy } from "./policy.ts";

/**
 * `serveRtsp`'s `auth` for `policy`: a refused request gets `401` with a Digest and a
 * Basic challenge when every user's secret is plain text ({@linkcode AccessPolicy.digestReady}),
 * else a Basic one only (ffmpeg picks Digest whenever it is offered, and Digest cannot
 * check a hashed secret). The schemes are chosen once, here; passwords are looked up in
 * the policy's current rules on every request.
 *
 * @example
 * ```ts
 * import { Registry } from "@arcly/stream";
 * import { serveRtsp } from "@arcly/stream/rtsp";
 * import { AccessPolicy, rtspAuth } from "@arcly/stream/access";
 *
 * const policy = new AccessPolicy({
 *   grants: [{ user: "cam", secret: "pw", permissions: [{ action: "publish" }] }],
 * });
 * const registry = new Registry({ authorize: policy.authorize });
 * const server = serveRtsp({ registry, port: 0, udp: false, auth: rtspAuth(policy) });
 * await server.close();
 * ```
 */
export function rtspAuth(policy: AccessPolicy, realm?: string): RtspAuthOptions {
  return {
    realm,
    password: (user) => policy.plainPassword(user),
    schemes: policy.digestReady ? ["digest", "basic"] : ["basic"],
  };
}
