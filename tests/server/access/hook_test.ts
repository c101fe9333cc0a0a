import assert from "node:assert/strict";
import { AuthHook, type HookQuestion } from "../../../server/access/mod.ts";

const question: HookQuestion = {
  action: "read",
  path: "live/cam",
  protocol: "hls",
  user: "",
  password: "",
  token: "abc",
  ip: "127.0.0.1",
  query: "token=abc",
  id: "",
};

function hookServer(answer: (body: HookQuestion) => number | Promise<number>) {
  const seen: HookQuestion[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (r) => {
    const body = await r.json() as HookQuestion;
    seen.push(body);
    return new Response(null, { status: await answer(body) });
  });
  return { seen, server, url: `http://127.0.0.1:${server.addr.port}/auth` };
}

Deno.test("hook: 2xx allows, other statuses refuse; answers are cached for cacheMs", async () => {
  const { seen, server, url } = hookServer((b) => b.token === "abc" ? 204 : 401);
  try {
    const hook = new AuthHook({ url, cacheMs: 60_000 });
    assert.deepEqual(await hook.ask(question), {
      allowed: true,
      reason: "the auth hook allowed it",
    });
    assert.deepEqual(seen, [question]);
    assert.equal((await hook.ask(question)).allowed, true);
    assert.equal(seen.length, 1, "the second answer came from the cache");
    const wrong = await hook.ask({ ...question, token: "nope" });
    assert.deepEqual(wrong, { allowed: false, reason: "the auth hook answered 401" });
    const uncached = new AuthHook({ url, cacheMs: 0 });
    await uncached.ask(question);
    await uncached.ask(question);
    assert.equal(seen.length, 4);
  } finally {
    await server.shutdown();
  }
});

Deno.test("hook: a slow answer or an unreachable service refuses, and is not cached", async () => {
  const stall = Promise.withResolvers<number>();
  const { seen, server, url } = hookServer(() => stall.promise);
  try {
    const hook = new AuthHook({ url, timeoutMs: 200, cacheMs: 60_000 });
    const answer = await hook.ask(question);
    assert.equal(answer.allowed, false);
    assert.match(answer.reason, /no answer within 200 ms/);
    stall.resolve(200);
    await hook.ask(question);
    assert.equal(seen.length, 2, "the timeout was not cached");
  } finally {
    await server.shutdown();
  }
  const gone = await new AuthHook({ url, timeoutMs: 1000 }).ask(question);
  assert.equal(gone.allowed, false);
  assert.match(gone.reason, /the auth hook failed/);
  assert.throws(() => new AuthHook({ url: "file:///etc/passwd" }), TypeError);
});

Deno.test("hook: identical questions in flight share one request", async () => {
  const { seen, server, url } = hookServer(() => 200);
  try {
    const hook = new AuthHook({ url, cacheMs: 0 });
    const answers = await Promise.all(Array.from({ length: 5 }, () => hook.ask(question)));
    assert.ok(answers.every((a) => a.allowed));
    assert.equal(seen.length, 1);
  } finally {
    await server.shutdown();
  }
});
