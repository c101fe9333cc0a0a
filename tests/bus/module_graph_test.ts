import assert from "node:assert/strict";

Deno.test("importing the kernel loads nothing outside bus/ (no muxer, no protocol)", async () => {
  const root = new URL("../../", import.meta.url);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", new URL("mod.ts", root).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const graph = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { specifier: string }[];
  };
  const loaded = graph.modules.map((m) => m.specifier.replace(root.href, ""));
  assert.ok(loaded.includes("bus/stream.ts"), `graph looks wrong: ${loaded.join(", ")}`);
  const outside = loaded.filter((path) => path !== "mod.ts" && !path.startsWith("bus/"));
  assert.deepEqual(outside, []);
});
