/**
 * Access control for every protocol: one {@linkcode AccessPolicy} decides `publish`,
 * `read`, `api` and `metrics` requests from grants (users with hashed secrets, static
 * tokens, CIDR ranges, per-path and per-action permissions), JWTs (a static key or a
 * JWKS URL) and an HTTP auth hook. Its `authorize` is a {@linkcode Registry}'s
 * `authorize` hook; protocols only extract credentials and refuse in their own way.
 *
 * To hash a password for the config: `await hashSecret("password")` (PBKDF2-SHA256,
 * 600,000 iterations), e.g.
 * `deno eval 'import { hashSecret } from "./server/access/mod.ts"; console.log(await hashSecret(prompt("password:")!))'`.
 *
 * @example
 * ```ts
 * import { Registry } from "@arcly/stream";
 * import { AccessPolicy } from "@arcly/stream/access";
 *
 * const policy = new AccessPolicy({
 *   grants: [{ token: "s3cret-token", permissions: [{ action: "publish", path: "live/*" }] }],
 *   jwt: { jwksUrl: "https://auth.example/.well-known/jwks.json" },
 * });
 * const registry = new Registry({ authorize: policy.authorize });
 * ```
 *
 * @module
 */

export type { AuthAction, AuthorizeHook, AuthRequest, Credentials, Logger } from "../../mod.ts";
export type { RtspAuthOptions, RtspAuthScheme } from "../../ingest/rtsp/auth.ts";
export * from "./cidr.ts";
export * from "./credentials.ts";
export * from "./hook.ts";
export * from "./jwt.ts";
export * from "./pattern.ts";
export * from "./policy.ts";
export * from "./secret.ts";
export * from "./rtsp.ts";
