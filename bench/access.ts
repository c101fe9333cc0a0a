/**
 * What an access decision costs: `deno run -A bench/access.ts [ROUNDS]`. Prints the time
 * of one PBKDF2-SHA256 derivation at the default 600,000 iterations (the first check of a
 * user's password), then decisions per second of an AccessPolicy for a cached password
 * check, a CIDR grant, a static token and a verified ES256/RS256 JWT.
 */

import type { AuthRequest } from "../mod.ts";
import { AccessPolicy, hashSecret, SecretChecker } from "../server/access/mod.ts";
import { keyPair, signJwt } from "../tests/server/access/_sign.ts";

const rounds = Number(Deno.args[0] ?? 2000);
const request: AuthRequest = {
  action: "read",
  app: "live",
  stream: "cam",
  query: "",
  protocol: "hls",
  peer: "10.1.2.3:5000",
};

const stored = await hashSecret("pw");
const start = performance.now();
await new SecretChecker().check(stored, "pw");
console.log(
  `PBKDF2-SHA256 600k iterations, first check: ${(performance.now() - start).toFixed(0)} ms`,
);

async function rate(what: string, policy: AccessPolicy, over: Partial<AuthRequest>) {
  const r = { ...request, ...over };
  if (!(await policy.decide(r)).allowed) throw new Error(`${what}: refused`);
  const t = performance.now();
  for (let i = 0; i < rounds; i++) await policy.decide(r);
  const ms = performance.now() - t;
  console.log(
    `${what}: ${(rounds / ms * 1000).toFixed(0)} decisions/s (${
      (ms / rounds * 1000).toFixed(1)
    } µs each)`,
  );
}

const read = [{ action: "read" as const, path: "live/*" }];
await rate(
  "user with a hashed secret (cached)",
  new AccessPolicy({ grants: [{ user: "u", secret: stored, permissions: read }] }),
  { credentials: { user: "u", password: "pw" } },
);
await rate(
  "CIDR grant",
  new AccessPolicy({ grants: [{ ips: ["192.168.0.0/16", "10.0.0.0/8"], permissions: read }] }),
  {},
);
await rate(
  "static hashed token (cached)",
  new AccessPolicy({ grants: [{ token: await hashSecret("t", 10_000), permissions: read }] }),
  { query: "token=t" },
);
for (const alg of ["ES256", "RS256"] as const) {
  const { privateKey, jwk } = await keyPair(alg, "k");
  const token = await signJwt({ arcly: read }, privateKey, alg);
  await rate(`JWT ${alg}`, new AccessPolicy({ jwt: { key: jwk } }), { credentials: { token } });
}
