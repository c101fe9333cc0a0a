/**
 * Access control over HTTP: every request for a stream (HLS files, HTTP-FLV, the player
 * and publisher pages), for the streams API and for the metrics is put to the registry's
 * `authorize` hook before the routes see it.
 *
 * @module
 */

import type { AuthAction, Credentials, Registry } from "../../mod.ts";
import { isSafeName, parseStreamPath } from "./paths.ts";
import { type HttpRoute, textResponse } from "./server.ts";

/** Options for {@linkcode withAccessControl}. */
export interface HttpAccessOptions {
  /** The realm of the `Basic` challenge (default `"arcly-stream"`). */
  realm?: string;
}

/** What a request asks for; `undefined` for requests no rule covers. */
interface Asked {
  readonly action: AuthAction;
  readonly app: string;
  readonly stream: string;
  readonly protocol: string;
}

/** The query parameters that carry credentials, kept on the URIs of a playlist. */
const CREDENTIAL_PARAMS = ["user", "pass", "password", "token", "jwt"];

const PLAYLIST_TYPE = "application/vnd.apple.mpegurl";
const MAX_PLAYLIST_BYTES = 1 << 20;

/** Which action a request is, by its path. */
function classify(pathname: string): Asked | undefined {
  if (pathname === "/metrics") return { action: "metrics", app: "", stream: "", protocol: "http" };
  if (pathname === "/v1" || pathname.startsWith("/v1/")) {
    const named = /^\/v1\/streams\/([^/]+)\/([^/]+)$/.exec(pathname);
    const app = named && isSafeName(named[1]) ? named[1] : "";
    const stream = app && named && isSafeName(named[2]) ? named[2] : "";
    return { action: "api", app: stream ? app : "", stream, protocol: "http" };
  }
  if (pathname.startsWith("/assets/")) return undefined; // shared files of the pages
  // every stream-shaped path is asked about, whatever its name: a route may serve names
  // the HTTP paths would not make (an RTMP stream `cam!`), and a refusal must not depend
  // on whether a stream exists
  const path = parseStreamPath(pathname);
  if (!path) return undefined;
  const { app, stream, rest } = path;
  if (/^(whip|whep)(\/|$)/.test(rest)) return undefined; // WHIP/WHEP ask for themselves
  if (rest === "" && stream.endsWith(".flv")) {
    return { action: "read", app, stream: stream.slice(0, -4), protocol: "http-flv" };
  }
  if (rest === "publish") return { action: "publish", app, stream, protocol: "http" };
  if (rest === "") return { action: "read", app, stream, protocol: "http" };
  return { action: "read", app, stream, protocol: "hls" };
}

/** The credentials of an `Authorization` header (Basic or Bearer). */
function headerCredentials(header: string | null): Credentials | undefined {
  if (!header) return undefined;
  const space = header.indexOf(" ");
  const scheme = header.slice(0, Math.max(0, space)).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (scheme === "bearer" && value !== "") return { token: value };
  if (scheme !== "basic") return undefined;
  let text: string;
  try {
    text = new TextDecoder().decode(Uint8Array.from(atob(value), (c) => c.charCodeAt(0)));
  } catch {
    return undefined;
  }
  const colon = text.indexOf(":");
  return colon < 0 ? undefined : { user: text.slice(0, colon), password: text.slice(colon + 1) };
}

/**
 * `routes`, each request first put to `registry.authorize`: `GET /metrics` as `metrics`,
 * `/v1/…` as `api` (naming the stream for `/v1/streams/APP/NAME`), `/APP/NAME/publish`
 * as `publish`, and HLS files, `/APP/NAME.flv` and the player page `/APP/NAME/` as
 * `read`. WHIP/WHEP endpoints, `/assets/…`, `OPTIONS` and paths of other shapes go
 * through unasked (WHIP/WHEP ask for themselves).
 *
 * Credentials come from `Authorization: Basic` or `Bearer`, or the query (`?token=`,
 * `?jwt=`, `?user=&pass=`). A refusal is the same whether the stream exists or not:
 * `401` with a `Basic` challenge when the request carried no credentials, else `403`.
 * When a playlist was asked for with credentials in its query, every URI in it carries
 * the same parameters, so hls.js and native players fetch the next playlist, the init
 * section, segments and parts with them.
 *
 * @example
 * ```ts
 * import { Registry } from "@arcly/stream";
 * import { httpFlv, serveHttp, withAccessControl } from "@arcly/stream/http";
 *
 * const registry = new Registry({ authorize: (r) => r.credentials?.token === "s3cret" });
 * const route = withAccessControl(registry, [httpFlv(registry)]);
 * const server = serveHttp({ routes: [route], hostname: "127.0.0.1", port: 0 });
 * await server.close();
 * ```
 */
export function withAccessControl(
  registry: Registry,
  routes: HttpRoute[],
  options: HttpAccessOptions = {},
): HttpRoute {
  const realm = (options.realm ?? "arcly-stream").replace(/["\\]/g, "");
  return async (request, url, info) => {
    const asked = request.method === "OPTIONS" ? undefined : classify(url.pathname);
    if (asked) {
      const credentials = headerCredentials(request.headers.get("authorization"));
      const { hostname, port } = info.remoteAddr;
      const allowed = await registry.authorize({
        ...asked,
        query: url.search.slice(1),
        peer: hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`,
        credentials,
      });
      if (!allowed) {
        const offered = credentials !== undefined ||
          CREDENTIAL_PARAMS.some((p) => url.searchParams.has(p));
        const cors = { "access-control-allow-origin": "*" };
        return offered
          ? textResponse(403, "forbidden", cors)
          : textResponse(401, "authentication required", {
            ...cors,
            "www-authenticate": `Basic realm="${realm}"`,
          });
      }
    }
    for (const route of routes) {
      const response = await route(request, url, info);
      if (!response) continue;
      return asked?.protocol === "hls" ? await carryCredentials(response, url) : response;
    }
    return undefined;
  };
}

/** A playlist response whose URIs carry the credential parameters of `url`. */
async function carryCredentials(response: Response, url: URL): Promise<Response> {
  const type = response.headers.get("content-type") ?? "";
  if (!type.startsWith(PLAYLIST_TYPE) || !response.ok || response.body === null) return response;
  const carried = new URLSearchParams();
  for (const name of CREDENTIAL_PARAMS) {
    for (const value of url.searchParams.getAll(name)) carried.append(name, value);
  }
  const suffix = carried.toString();
  if (suffix === "") return response;
  const length = Number(response.headers.get("content-length") ?? 0);
  if (length > MAX_PLAYLIST_BYTES) return response;
  const text = await response.text();
  const withSuffix = (uri: string) =>
    /^[a-z][a-z0-9+.-]*:/i.test(uri) ? uri : `${uri}${uri.includes("?") ? "&" : "?"}${suffix}`;
  const rewritten = text.split("\n").map((line) => {
    if (line.startsWith("#")) {
      return line.replace(/URI="([^"]*)"/g, (_m, uri: string) => `URI="${withSuffix(uri)}"`);
    }
    return line.trim() === ""
      ? line
      : withSuffix(line.trimEnd()) + (line.endsWith("\r") ? "\r" : "");
  }).join("\n");
  const headers = new Headers(response.headers);
  headers.delete("content-length");
  return new Response(rewritten, { status: response.status, headers });
}
