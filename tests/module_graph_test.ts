/**
 * The layering rules of docs/architecture.md, checked on the module graph that `deno info --json`
 * reports (type-only imports count: they couple modules too). Tests and benchmarks may import
 * anything and are not checked.
 */

import assert from "node:assert/strict";

const root = new URL("../", import.meta.url);
const decoder = new TextDecoder();

/** One module's local imports, as paths relative to the repository root. */
type Graph = Map<string, Set<string>>;

interface DenoInfo {
  modules: {
    specifier: string;
    dependencies?: { code?: { specifier?: string }; type?: { specifier?: string } }[];
  }[];
}

function relative(specifier: string): string | undefined {
  return specifier.startsWith(root.href) ? specifier.slice(root.href.length) : undefined;
}

async function info(path: string): Promise<DenoInfo> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", new URL(path, root).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, decoder.decode(out.stderr));
  return JSON.parse(decoder.decode(out.stdout));
}

function addTo(graph: Graph, { modules }: DenoInfo): void {
  for (const module of modules) {
    const from = relative(module.specifier);
    if (from === undefined || graph.has(from)) continue;
    const to = new Set<string>();
    for (const dep of module.dependencies ?? []) {
      for (const specifier of [dep.code?.specifier, dep.type?.specifier]) {
        const path = specifier && relative(specifier);
        if (path) to.add(path);
      }
    }
    graph.set(from, to);
  }
}

async function sourceFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(new URL(dir, root))) {
    const path = `${dir}${entry.name}`;
    if (entry.isDirectory) files.push(...await sourceFiles(`${path}/`));
    else if (entry.name.endsWith(".ts")) files.push(path);
  }
  return files;
}

/** The entry points of deno.json's `exports`, e.g. `{ "./ts": "media/ts/mod.ts" }`. */
async function entryPoints(): Promise<Record<string, string>> {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));
  const entries: Record<string, string> = {};
  for (const [name, path] of Object.entries(config.exports as Record<string, string>)) {
    entries[name] = path.replace(/^\.\//, "");
  }
  return entries;
}

/** The graph of every entry point, `cli.ts` and any source file none of them reaches. */
async function wholeGraph(): Promise<Graph> {
  const graph: Graph = new Map();
  for (const path of [...Object.values(await entryPoints()), "cli.ts"]) {
    addTo(graph, await info(path));
  }
  for (const dir of ["bus/", "media/", "ingest/"]) {
    for (const path of await sourceFiles(dir)) if (!graph.has(path)) addTo(graph, await info(path));
  }
  return graph;
}

const graph = await wholeGraph();

/** Every import `from → to` whose importer matches `from` and whose target `allowed` refuses. */
function violations(from: (path: string) => boolean, allowed: (to: string) => boolean): string[] {
  const found: string[] = [];
  for (const [path, deps] of graph) {
    if (!from(path)) continue;
    for (const to of deps) if (!allowed(to)) found.push(`${path} → ${to}`);
  }
  return found.sort();
}

const folderOf = (path: string) => path.slice(0, path.lastIndexOf("/") + 1);

Deno.test("module graph: the graph covers every layer (a sanity check of the parsing)", () => {
  for (const path of ["mod.ts", "bus/stream.ts", "media/codec/h264.ts", "ingest/rtmp/server.ts"]) {
    assert.ok(graph.has(path), `${path} missing from ${[...graph.keys()].join(", ")}`);
  }
  assert.ok(graph.get("ingest/rtmp/server.ts")!.has("mod.ts"), "imports are read");
});

Deno.test("module graph: importing the kernel loads nothing outside bus/ (no muxer, no protocol)", async () => {
  const kernel: Graph = new Map();
  addTo(kernel, await info("mod.ts"));
  const outside = [...kernel.keys()].filter((path) =>
    path !== "mod.ts" && !path.startsWith("bus/")
  );
  assert.deepEqual(outside, []);
});

Deno.test("module graph: bus/ imports nothing outside bus/", () => {
  assert.deepEqual(violations((p) => p.startsWith("bus/"), (to) => to.startsWith("bus/")), []);
});

Deno.test("module graph: media/codec imports only bus/frame.ts", () => {
  const allowed = (to: string) => to === "bus/frame.ts" || to.startsWith("media/codec/");
  assert.deepEqual(violations((p) => p.startsWith("media/codec/"), allowed), []);
});

Deno.test("module graph: media/ imports only the kernel and media/ (nothing from ingest/ or cli.ts)", () => {
  const allowed = (to: string) =>
    to === "mod.ts" || to.startsWith("bus/") || to.startsWith("media/");
  assert.deepEqual(violations((p) => p.startsWith("media/"), allowed), []);
});

Deno.test("module graph: ingest/ imports the kernel, media/ and ingest/, never cli.ts", () => {
  const allowed = (to: string) =>
    to === "mod.ts" || to.startsWith("bus/") || to.startsWith("media/") || to.startsWith("ingest/");
  assert.deepEqual(violations((p) => p.startsWith("ingest/"), allowed), []);
});

Deno.test("module graph: a _private.ts file is imported only from its own folder and below", () => {
  const isPrivate = (path: string) => path.slice(path.lastIndexOf("/") + 1).startsWith("_");
  const found: string[] = [];
  for (const [path, deps] of graph) {
    for (const to of deps) {
      if (isPrivate(to) && !path.startsWith(folderOf(to))) found.push(`${path} → ${to}`);
    }
  }
  assert.deepEqual(found.sort(), []);
});

Deno.test("module graph: each entry point documents itself (deno doc --lint on it alone)", async () => {
  // An entry point whose API names a type it does not export (a kernel type, another entry
  // point's type) leaves that type undocumented on its own page: it must re-export it.
  const failed: string[] = [];
  for (const [name, path] of Object.entries(await entryPoints())) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["doc", "--lint", new URL(path, root).pathname],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const errors = decoder.decode(out.stderr).match(/^error\[[^\n]*/gm);
    if (out.code !== 0) failed.push(`${name} (${path}): ${errors?.join("; ") ?? out.code}`);
  }
  assert.deepEqual(failed, []);
});
