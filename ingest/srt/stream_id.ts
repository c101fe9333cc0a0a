/**
 * SRT Stream IDs: which stream a caller wants and whether it publishes or reads.
 *
 * @module
 */

import { escapeForLog } from "../../mod.ts";
import { SrtError } from "./error.ts";
import { RejectReason } from "./handshake.ts";

/** What a Stream ID asks for. */
export interface StreamIdRequest {
  /** Publish into the stream, or read it. */
  readonly action: "publish" | "read";
  /** The app, e.g. `"live"`. */
  readonly app: string;
  /** The stream name within the app. */
  readonly stream: string;
  /** The query string after `?` in the resource name (`""` when none). */
  readonly query: string;
  /** The user name: `u=` of the access control syntax, or the `:USER:PASS` suffix's. */
  readonly user?: string;
  /** The password of the `:USER:PASS` suffix. */
  readonly password?: string;
  /** The `s=` session id of the access control syntax. */
  readonly session?: string;
}

const ACCESS_CONTROL_PREFIX = "#!::";
const MAX_NAME_LENGTH = 200;

/**
 * Parses a Stream ID in one of the forms the listener accepts:
 *
 * - `publish:APP/NAME` and `read:APP/NAME`, each optionally followed by `?QUERY` and
 *   then by `:USER:PASS` credentials (the password may hold colons);
 * - the SRT access control syntax `#!::r=APP/NAME,m=publish,u=USER,s=SESSION`, where
 *   `m` is `request` (read, the default) or `publish`, `t` if present must be `stream`,
 *   and other keys (`h`, application keys) are ignored.
 *
 * App and stream names are 1 to 200 characters without `/`, whitespace or control
 * characters, and not `.` or `..`.
 *
 * @throws {SrtError} with `reason` {@linkcode RejectReason.BAD_REQUEST} for a malformed
 * id, {@linkcode RejectReason.BAD_MODE} for another `m=` and
 * {@linkcode RejectReason.NOTSUP_MEDIA} for another `t=`.
 *
 * @example
 * ```ts
 * import { parseStreamId } from "@arcly/stream/srt";
 *
 * parseStreamId("publish:live/cam");
 * // { action: "publish", app: "live", stream: "cam", query: "" }
 * parseStreamId("#!::r=live/cam?token=x,m=publish,u=alice").user; // "alice"
 * parseStreamId("read:live/cam:ann:secret").password; // "secret"
 * ```
 */
export function parseStreamId(id: string): StreamIdRequest {
  if (id.startsWith(ACCESS_CONTROL_PREFIX)) return parseAccessControl(id);
  const colon = id.indexOf(":");
  const verb = colon < 0 ? "" : id.slice(0, colon);
  if (verb !== "publish" && verb !== "read") {
    throw new SrtError(
      `Stream ID ${JSON.stringify(id)} is not publish:APP/NAME, read:APP/NAME or #!::r=APP/NAME`,
      RejectReason.BAD_REQUEST,
    );
  }
  const rest = id.slice(colon + 1);
  const userAt = rest.indexOf(":");
  if (userAt < 0) return { action: verb, ...parseResource(rest) };
  const passAt = rest.indexOf(":", userAt + 1);
  if (passAt < 0) {
    throw new SrtError(
      `Stream ID ${JSON.stringify(id)} has a user but no password (${verb}:APP/NAME:USER:PASS)`,
      RejectReason.BAD_REQUEST,
    );
  }
  return {
    action: verb,
    ...parseResource(rest.slice(0, userAt)),
    user: rest.slice(userAt + 1, passAt),
    password: rest.slice(passAt + 1),
  };
}

function parseAccessControl(id: string): StreamIdRequest {
  const keys = new Map<string, string>();
  for (const pair of id.slice(ACCESS_CONTROL_PREFIX.length).split(",")) {
    const eq = pair.indexOf("=");
    if (eq <= 0) {
      throw new SrtError(
        `Stream ID item ${JSON.stringify(pair)} is not key=value`,
        RejectReason.BAD_REQUEST,
      );
    }
    keys.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  const resource = keys.get("r");
  if (resource === undefined) {
    throw new SrtError("Stream ID has no r= resource name", RejectReason.BAD_REQUEST);
  }
  const mode = keys.get("m") ?? "request";
  if (mode !== "request" && mode !== "publish") {
    throw new SrtError(
      `Stream ID mode m=${escapeForLog(mode)} is not supported`,
      RejectReason.BAD_MODE,
    );
  }
  const type = keys.get("t") ?? "stream";
  if (type !== "stream") {
    throw new SrtError(
      `Stream ID type t=${escapeForLog(type)} is not supported`,
      RejectReason.NOTSUP_MEDIA,
    );
  }
  const request: StreamIdRequest = {
    action: mode === "publish" ? "publish" : "read",
    ...parseResource(resource),
  };
  const user = keys.get("u");
  const session = keys.get("s");
  return {
    ...request,
    ...(user !== undefined && { user }),
    ...(session !== undefined && { session }),
  };
}

function parseResource(resource: string): { app: string; stream: string; query: string } {
  const q = resource.indexOf("?");
  const path = q < 0 ? resource : resource.slice(0, q);
  const query = q < 0 ? "" : resource.slice(q + 1);
  const slash = path.indexOf("/");
  const app = slash < 0 ? "" : path.slice(0, slash);
  const stream = slash < 0 ? "" : path.slice(slash + 1);
  if (!validName(app) || !validName(stream)) {
    throw new SrtError(
      `Stream ID resource ${JSON.stringify(resource)} is not APP/NAME`,
      RejectReason.BAD_REQUEST,
    );
  }
  return { app, stream, query };
}

function validName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_NAME_LENGTH && name !== "." && name !== ".." &&
    // deno-lint-ignore no-control-regex
    !/[\s/\x00-\x1f\x7f]/u.test(name);
}
