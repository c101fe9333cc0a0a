import assert from "node:assert/strict";
import type { AuthRequest } from "../../../mod.ts";
import { credentialsOf } from "../../../server/access/mod.ts";
import { prng, randomText } from "../../_util/fuzz.ts";

const base: AuthRequest = { action: "read", app: "live", stream: "cam", query: "", protocol: "x" };

Deno.test("credentials: the protocol's first, the query's where it has none", () => {
  assert.deepEqual(credentialsOf(base), { user: "", password: "", token: "" });
  assert.deepEqual(credentialsOf({ ...base, query: "user=a&pass=b%20c&token=t" }), {
    user: "a",
    password: "b c",
    token: "t",
  });
  assert.deepEqual(credentialsOf({ ...base, query: "password=p&jwt=j" }).password, "p");
  assert.deepEqual(credentialsOf({ ...base, query: "jwt=j" }).token, "j");
  assert.deepEqual(
    credentialsOf({
      ...base,
      query: "user=q&token=t",
      credentials: { user: "rtsp", password: "" },
    }),
    { user: "rtsp", password: "", token: "t" },
  );
  assert.deepEqual(credentialsOf({ ...base, query: `token=${"x".repeat(9000)}` }).token, "");
});

Deno.test("fuzz: credentialsOf takes any query string", () => {
  const rand = prng(0xc3d);
  const alphabet = "user=pass&token%jwt+=?é\u0000";
  for (let i = 0; i < 3000; i++) {
    const query = randomText(rand, alphabet, 29);
    const c = credentialsOf({ ...base, query });
    assert.equal(typeof c.user + typeof c.password + typeof c.token, "stringstringstring");
  }
});
