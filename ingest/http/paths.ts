/**
 * Stream names and the HTTP paths built on them (`/APP/NAME…`): a safe name can
 * never address anything else, in a URL path or as a directory name. Shared by
 * every HTTP route (HLS, HTTP-FLV, WHIP/WHEP) and the recorder.
 *
 * @module
 */

const NAME = /^[A-Za-z0-9_~-][A-Za-z0-9_.~-]*$/;

/**
 * Whether `name` is a safe app or stream name: letters, digits and `_.~-`, not
 * starting with a dot, at most 200 characters (so no slashes, `..` or escapes).
 *
 * @example
 * ```ts
 * import { isSafeName } from "./paths.ts";
 *
 * isSafeName("cam-1"); // true
 * isSafeName(".."); // false
 * ```
 */
export function isSafeName(name: string): boolean {
  return NAME.test(name) && name.length <= 200;
}

/**
 * Split `/APP/NAME<suffix>` (e.g. `/live/cam.flv`) or `/APP/NAME/<file>` into its parts;
 * `undefined` when the path has another shape or an unsafe app name. The stream part is
 * returned as found (it may still carry a suffix such as `.flv`): check it with
 * {@linkcode isSafeName} once the suffix is removed.
 *
 * @example
 * ```ts
 * import { parseStreamPath } from "./paths.ts";
 *
 * parseStreamPath("/live/cam/index.m3u8"); // { app: "live", stream: "cam", rest: "index.m3u8" }
 * ```
 */
export function parseStreamPath(
  pathname: string,
): { app: string; stream: string; rest: string } | undefined {
  const parts = pathname.split("/");
  if (parts.length < 3 || parts[0] !== "") return undefined;
  const [, app, stream, ...rest] = parts;
  if (!isSafeName(app) || stream === undefined) return undefined;
  return { app, stream, rest: rest.join("/") };
}
