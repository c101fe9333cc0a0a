/**
 * The credentials of an {@linkcode AuthRequest}: those the protocol extracted, completed
 * from the query string that came with the stream name (`?user=&pass=`, `?token=`,
 * `?jwt=`), which is how RTMP, SRT and browsers carry them.
 *
 * @module
 */

import type { AuthRequest } from "../../mod.ts";

/** A request's credentials, every field present (`""` when absent). */
export interface RequestCredentials {
  /** User name. */
  readonly user: string;
  /** Password. */
  readonly password: string;
  /** Token (a static token or a JWT). */
  readonly token: string;
}

/** The query parameters that carry credentials, by what they carry. */
export const CREDENTIAL_PARAMS = {
  user: ["user"],
  password: ["pass", "password"],
  token: ["token", "jwt"],
} as const;

const MAX_QUERY_LENGTH = 8192;

/**
 * The credentials of `request`: the protocol's own where it has them, else the query's.
 *
 * @example
 * ```ts
 * import { credentialsOf } from "@arcly/stream/access";
 *
 * credentialsOf({
 *   action: "publish", app: "live", stream: "cam", protocol: "rtmp",
 *   query: "user=ann&pass=secret",
 * });
 * // { user: "ann", password: "secret", token: "" }
 * ```
 */
export function credentialsOf(request: AuthRequest): RequestCredentials {
  const given = request.credentials ?? {};
  let params: URLSearchParams | undefined;
  const fromQuery = (names: readonly string[]): string => {
    if (request.query === "" || request.query.length > MAX_QUERY_LENGTH) return "";
    params ??= new URLSearchParams(request.query);
    for (const name of names) {
      const value = params.get(name);
      if (value !== null) return value;
    }
    return "";
  };
  return {
    user: given.user ?? fromQuery(CREDENTIAL_PARAMS.user),
    password: given.password ?? fromQuery(CREDENTIAL_PARAMS.password),
    token: given.token ?? fromQuery(CREDENTIAL_PARAMS.token),
  };
}
