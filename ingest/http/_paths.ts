/** Stream URLs over HTTP: `/APP/NAME…`, with names that can never address anything else. */

const NAME = /^[A-Za-z0-9_~-][A-Za-z0-9_.~-]*$/;

/** Whether `name` is a safe app or stream name (no slashes, dots-only names or escapes). */
export function isSafeName(name: string): boolean {
  return NAME.test(name) && name.length <= 200;
}

/**
 * Split `/APP/NAME<suffix>` (e.g. `/live/cam.flv`) or `/APP/NAME/<file>` into its parts;
 * `undefined` when the path has another shape or an unsafe name.
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
