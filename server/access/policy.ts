/**
 * The access policy: one set of rules deciding every `publish`, `read`, `api` and
 * `metrics` request of every protocol, plugged into the {@linkcode Registry} as its
 * `authorize` hook and swapped whole on a config reload.
 *
 * A request is allowed when one of these says so, asked in this order:
 *
 * 1. a **grant** whose permissions name the action and path, whose `ips` (if any) hold
 *    the peer's address, and whose `user` and `secret` (or `token`) match the request's
 *    credentials; a grant with neither `user` nor `token` needs no credentials;
 * 2. the **JWT** in the request's token (`Authorization: Bearer`, `?token=`, `?jwt=`, SRT
 *    `s=`), when `jwt` is configured: verified, then its claim (default `arcly`) must
 *    list a permission, e.g. `"arcly": [{ "action": "read", "path": "live/*" }]`;
 * 3. the **HTTP hook**, when `hook` is configured (see `hook.ts` for the JSON it gets).
 *
 * Anything else is refused, with the reasons logged (peer strings escaped).
 *
 * @module
 */

import {
  type AuthAction,
  type AuthorizeHook,
  type AuthRequest,
  type Logger,
  silentLogger,
} from "../../mod.ts";
import { type CidrRange, inRange, parseCidr, peerHost, peerIp } from "./cidr.ts";
import { credentialsOf, type RequestCredentials } from "./credentials.ts";
import { AuthHook, type AuthHookOptions } from "./hook.ts";
import { type JwtOptions, JwtVerifier, looksLikeJwt } from "./jwt.ts";
import { compilePathPattern, type PathMatcher } from "./pattern.ts";
import { checkStoredSecret, PBKDF2_PREFIX, SecretChecker } from "./secret.ts";

/** The actions a permission can name. */
export const ACTIONS: readonly AuthAction[] = ["publish", "read", "api", "metrics"];

/** One thing a grant or a JWT allows. */
export interface Permission {
  /** The action, or several. */
  action: AuthAction | AuthAction[];
  /**
   * The `APP/NAME` paths, as a glob (`live/*`) or `~REGEX` (see `pattern.ts`); omitted or
   * `""` for every path. `api` and `metrics` requests that name no stream have path `""`,
   * which only an omitted path (or `**`) matches.
   */
  path?: string;
}

/** Who may do what. */
export interface Grant {
  /** The user name the request must carry; omitted for a grant that needs no user. */
  user?: string;
  /** The user's password: `pbkdf2-sha256$…` from `hashSecret`, or plain text. */
  secret?: string;
  /** A static token the request must carry instead of a user (hashed or plain text). */
  token?: string;
  /** CIDR ranges (IPv4 or IPv6) the peer must be in; omitted for any address. */
  ips?: string[];
  /** What the grant allows. */
  permissions: Permission[];
}

/** JWT verification, with the claim that lists a token's permissions. */
export interface JwtAccessOptions extends JwtOptions {
  /** The claim holding `[{ action, path }]` permissions (default `"arcly"`). */
  claim?: string;
}

/** The access rules of a server. */
export interface AccessConfig {
  /** Grants; with none (and no JWT or hook) everything is refused. */
  grants?: Grant[];
  /** Accept JWTs. */
  jwt?: JwtAccessOptions;
  /** Ask an HTTP service about what no grant or JWT allowed. */
  hook?: AuthHookOptions;
}

/** A config that allows everything to everyone: the server's open default. */
export const OPEN_ACCESS: AccessConfig = {
  grants: [{ permissions: [{ action: [...ACTIONS] }] }],
};

/** What the policy decided, and why. */
export interface Decision {
  /** Whether the request may go ahead. */
  readonly allowed: boolean;
  /** Why: what allowed it, or every reason it was refused. */
  readonly reason: string;
}

/** An access config that cannot be used: `key` names where (e.g. `grants[1].ips[0]`). */
export class AccessConfigError extends Error {
  /** Where in the config the problem is. */
  readonly key: string;

  /** Make an error for `key`. */
  constructor(key: string, message: string) {
    super(`${key}: ${message}`);
    this.name = "AccessConfigError";
    this.key = key;
  }
}

interface CompiledPermission {
  readonly actions: ReadonlySet<AuthAction>;
  readonly path: PathMatcher;
}

interface CompiledGrant {
  readonly user?: string;
  readonly secret?: string;
  readonly token?: string;
  readonly ips?: readonly CidrRange[];
  readonly permissions: readonly CompiledPermission[];
}

interface Compiled {
  readonly grants: readonly CompiledGrant[];
  readonly jwt?: { readonly verifier: JwtVerifier; readonly claim: string };
  readonly hook?: AuthHook;
}

function compilePermissions(value: unknown, key: string): CompiledPermission[] {
  if (!Array.isArray(value)) throw new AccessConfigError(key, "must be a list of permissions");
  return value.map((p, i) => {
    const at = `${key}[${i}]`;
    if (typeof p !== "object" || p === null) {
      throw new AccessConfigError(at, "must be { action, path }");
    }
    const { action, path } = p as Permission;
    const actions = Array.isArray(action) ? action : [action];
    for (const a of actions) {
      if (!ACTIONS.includes(a)) {
        throw new AccessConfigError(
          `${at}.action`,
          `${JSON.stringify(a)} is not one of ${ACTIONS.join(", ")}`,
        );
      }
    }
    if (path !== undefined && typeof path !== "string") {
      throw new AccessConfigError(`${at}.path`, "must be a string");
    }
    try {
      return { actions: new Set(actions), path: compilePathPattern(path ?? "") };
    } catch (error) {
      throw new AccessConfigError(`${at}.path`, (error as Error).message);
    }
  });
}

function compileSecret(value: unknown, key: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value === "") {
    throw new AccessConfigError(key, "must be a non-empty string");
  }
  const problem = checkStoredSecret(value);
  if (problem) throw new AccessConfigError(key, problem);
  return value;
}

function compileGrant(grant: unknown, key: string): CompiledGrant {
  if (typeof grant !== "object" || grant === null) {
    throw new AccessConfigError(key, "must be { user, secret, token, ips, permissions }");
  }
  const g = grant as Grant;
  if (g.user !== undefined && (typeof g.user !== "string" || g.user === "")) {
    throw new AccessConfigError(`${key}.user`, "must be a non-empty string");
  }
  const secret = compileSecret(g.secret, `${key}.secret`);
  const token = compileSecret(g.token, `${key}.token`);
  if ((g.user === undefined) !== (secret === undefined)) {
    throw new AccessConfigError(key, "a user needs a secret, and a secret a user");
  }
  if (g.user !== undefined && token !== undefined) {
    throw new AccessConfigError(key, "a grant has a user or a token, not both");
  }
  let ips: CidrRange[] | undefined;
  if (g.ips !== undefined) {
    if (!Array.isArray(g.ips)) throw new AccessConfigError(`${key}.ips`, "must be a list");
    ips = g.ips.map((ip, i) => {
      try {
        return parseCidr(String(ip));
      } catch (error) {
        throw new AccessConfigError(`${key}.ips[${i}]`, (error as Error).message);
      }
    });
  }
  return {
    user: g.user,
    secret,
    token,
    ips,
    permissions: compilePermissions(g.permissions, `${key}.permissions`),
  };
}

function compile(config: AccessConfig): Compiled {
  if (typeof config !== "object" || config === null) {
    throw new AccessConfigError("access", "must be { grants, jwt, hook }");
  }
  const grants = config.grants ?? [];
  if (!Array.isArray(grants)) throw new AccessConfigError("grants", "must be a list");
  let jwt: Compiled["jwt"];
  if (config.jwt !== undefined) {
    try {
      jwt = { verifier: new JwtVerifier(config.jwt), claim: config.jwt.claim ?? "arcly" };
    } catch (error) {
      throw new AccessConfigError("jwt", (error as Error).message);
    }
  }
  let hook: AuthHook | undefined;
  if (config.hook !== undefined) {
    try {
      hook = new AuthHook(config.hook);
    } catch (error) {
      throw new AccessConfigError("hook.url", (error as Error).message);
    }
  }
  return { grants: grants.map((g, i) => compileGrant(g, `grants[${i}]`)), jwt, hook };
}

function permits(
  permissions: readonly CompiledPermission[],
  action: AuthAction,
  path: string,
): boolean {
  return permissions.some((p) => p.actions.has(action) && p.path(path));
}

/** Options for {@linkcode AccessPolicy}. */
export interface AccessPolicyOptions {
  /** Where refusals are logged (default: silent). */
  logger?: Logger;
}

/**
 * The rules, compiled, and the `authorize` hook that applies them.
 * {@linkcode AccessPolicy.update} swaps the rules at once: requests decided afterwards
 * use the new ones, and nothing already admitted is touched.
 *
 * @example
 * ```ts
 * import { Registry } from "@arcly/stream";
 * import { AccessPolicy, hashSecret } from "@arcly/stream/access";
 *
 * const policy = new AccessPolicy({
 *   grants: [
 *     { user: "cam", secret: await hashSecret("s3cret", 10_000),
 *       permissions: [{ action: "publish", path: "live/*" }] },
 *     { ips: ["10.0.0.0/8", "::1"], permissions: [{ action: ["read", "api"] }] },
 *   ],
 * });
 * const registry = new Registry({ authorize: policy.authorize });
 * await registry.authorize({
 *   action: "publish", app: "live", stream: "a", query: "user=cam&pass=s3cret",
 *   protocol: "rtmp", peer: "192.0.2.1:5000",
 * }); // true
 * ```
 */
export class AccessPolicy {
  #compiled: Compiled;
  #secrets = new SecretChecker();
  #logger: Logger;

  /**
   * Compile `config`.
   *
   * @throws {AccessConfigError} for a config that cannot be used.
   */
  constructor(config: AccessConfig, options: AccessPolicyOptions = {}) {
    this.#compiled = compile(config);
    this.#logger = options.logger ?? silentLogger;
  }

  /**
   * Use `config` from now on.
   *
   * @throws {AccessConfigError} for a config that cannot be used; the old one stays.
   */
  update(config: AccessConfig): void {
    this.#compiled = compile(config);
  }

  /**
   * The plain-text password of `user`, for RTSP Digest (which needs it); `undefined`
   * when the user is unknown or its secret is hashed (then only Basic can check it).
   */
  plainPassword(user: string): string | undefined {
    return this.#compiled.grants.find((g) =>
      g.user === user && g.secret !== undefined && !g.secret.startsWith(PBKDF2_PREFIX)
    )?.secret;
  }

  /**
   * Whether RTSP Digest can check every user of the current rules: there are users and
   * all their secrets are plain text. Digest needs the password itself (RFC 2617), so
   * with a hashed secret only Basic can carry that user's password.
   */
  get digestReady(): boolean {
    const users = this.#compiled.grants.filter((g) => g.user !== undefined);
    return users.length > 0 && users.every((g) => !g.secret!.startsWith(PBKDF2_PREFIX));
  }

  /** The `authorize` hook for a {@linkcode Registry}: {@linkcode AccessPolicy.decide}, logged. */
  readonly authorize: AuthorizeHook = async (request) => {
    const decision = await this.decide(request);
    if (!decision.allowed) {
      const path = request.app === ""
        ? ""
        : ` ${JSON.stringify(`${request.app}/${request.stream}`)}`;
      this.#logger.warn(
        `access: refused ${request.action}${path} via ${request.protocol} from ${
          JSON.stringify(request.peer ?? "")
        }: ${decision.reason}`,
      );
    }
    return decision.allowed;
  };

  /** Decide one request. */
  async decide(request: AuthRequest): Promise<Decision> {
    const rules = this.#compiled;
    const action = request.action;
    const path = request.app === "" ? "" : `${request.app}/${request.stream}`;
    const credentials = credentialsOf(request);
    const ip = peerIp(request.peer);
    const reasons: string[] = [];

    const grant = await this.#grant(rules, action, path, ip, credentials, reasons);
    if (grant) return { allowed: true, reason: grant };

    if (rules.jwt && looksLikeJwt(credentials.token)) {
      try {
        const claims = await rules.jwt.verifier.verify(credentials.token);
        const listed = claims[rules.jwt.claim];
        const permissions = compilePermissions(listed ?? [], `the JWT's ${rules.jwt.claim}`);
        if (permits(permissions, action, path)) return { allowed: true, reason: "a JWT" };
        reasons.push(`the JWT does not allow ${action} ${JSON.stringify(path)}`);
      } catch (error) {
        reasons.push((error as Error).message);
      }
    }

    if (rules.hook) {
      const answer = await rules.hook.ask({
        action,
        path,
        protocol: request.protocol,
        user: credentials.user,
        password: credentials.password,
        token: credentials.token,
        ip: peerHost(request.peer),
        query: request.query,
        id: request.id ?? "",
      });
      if (answer.allowed) return { allowed: true, reason: answer.reason };
      reasons.push(answer.reason);
    }
    if (reasons.length === 0) reasons.push(`nothing allows ${action} ${JSON.stringify(path)}`);
    return { allowed: false, reason: [...new Set(reasons)].join("; ") };
  }

  /** The first grant that allows the request (cheap checks first, secrets last). */
  async #grant(
    rules: Compiled,
    action: AuthAction,
    path: string,
    ip: Uint8Array | undefined,
    credentials: RequestCredentials,
    reasons: string[],
  ): Promise<string | undefined> {
    let namedUser = false;
    for (const g of rules.grants) {
      if (!permits(g.permissions, action, path)) continue;
      if (g.ips && !(ip && g.ips.some((range) => inRange(ip, range)))) {
        reasons.push("the address is not in an allowed range");
        continue;
      }
      if (g.user !== undefined) {
        if (credentials.user !== g.user) {
          if (credentials.user === "") reasons.push("no user given");
          continue;
        }
        namedUser = true;
        if (await this.#secrets.check(g.secret!, credentials.password)) {
          return `user ${JSON.stringify(g.user)}`;
        }
        reasons.push(`wrong password for user ${JSON.stringify(g.user)}`);
        continue;
      }
      if (g.token !== undefined) {
        if (credentials.token === "") {
          reasons.push("no token given");
          continue;
        }
        if (await this.#secrets.check(g.token, credentials.token)) return "a token";
        if (!looksLikeJwt(credentials.token)) reasons.push("wrong token");
        continue;
      }
      return "an open grant";
    }
    if (credentials.user !== "" && !namedUser) {
      reasons.push(`user ${JSON.stringify(credentials.user)} may not ${action} this path`);
    }
    return undefined;
  }
}
