/**
 * Where a live player's memory goes: RTMP and HTTP-FLV servers in this process, one ffmpeg
 * publisher (lavfi 640x360 30 fps H.264 + AAC, about 600 kbit/s, 2 s GOP) and N players of
 * the load player (`bench/_load_player.c`). Once the players have played for `--warmup`
 * seconds it prints, per player, the growth of the process's RSS and of V8's heap used and
 * external (ArrayBuffer) bytes after a full GC, and, from two heap snapshots (before the
 * players joined and while they play), the objects that grew by at least 0.05 per player:
 * count and bytes per player by constructor.
 *
 * ```sh
 * deno run -A --v8-flags=--expose-gc bench/player_memory.ts [--players 1000] [--protocols rtmp,flv]
 *   [--warmup 3] [--window 3] [--top 25]
 * ```
 *
 * It also prints the process's CPU time per Mbit the players received over the `--window`
 * seconds after the measurement: read it from a run with `--top 0` (snapshots take a while).
 *
 * RSS also holds what the heap snapshots cost, so read RSS from a run with `--top 0` (no
 * snapshots) when comparing it with `bench/load.ts`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import v8 from "node:v8";
import { Registry } from "../mod.ts";
import { serveRtmp } from "../ingest/rtmp/mod.ts";
import { httpFlv, serveHttp } from "../ingest/http/mod.ts";
import { buildLoadPlayer } from "./_load_player.ts";

const { values } = parseArgs({
  options: {
    players: { type: "string", default: "1000" },
    protocols: { type: "string", default: "rtmp,flv" },
    warmup: { type: "string", default: "3" },
    window: { type: "string", default: "3" },
    top: { type: "string", default: "25" },
  },
});
const PLAYERS = Number(values.players);
const WARMUP_S = Number(values.warmup);
const WINDOW_S = Number(values.window);
const TOP = Number(values.top);
const HOST = "127.0.0.1";
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --v8-flags=--expose-gc");

/** Self size and count per `type:name` of a heap snapshot's nodes. */
type Census = Map<string, { count: number; bytes: number }>;

function census(): Census {
  const path = Deno.makeTempFileSync({ suffix: ".heapsnapshot" });
  v8.writeHeapSnapshot(path);
  const snapshot = JSON.parse(Deno.readTextFileSync(path));
  Deno.removeSync(path);
  const fields: string[] = snapshot.snapshot.meta.node_fields;
  const types: string[] = snapshot.snapshot.meta.node_types[0];
  const [typeAt, nameAt, sizeAt] = ["type", "name", "self_size"].map((f) => fields.indexOf(f));
  const nodes: number[] = snapshot.nodes;
  const strings: string[] = snapshot.strings;
  const out: Census = new Map();
  for (let i = 0; i < nodes.length; i += fields.length) {
    const type = types[nodes[i + typeAt]];
    // Strings and code are keyed by type alone (their names are their contents).
    const keyed = type === "object" || type === "native" || type === "closure" ||
      type === "hidden" || type === "object shape";
    const key = keyed ? `${type}:${strings[nodes[i + nameAt]].slice(0, 60)}` : type;
    const entry = out.get(key) ?? { count: 0, bytes: 0 };
    entry.count++;
    entry.bytes += nodes[i + sizeAt];
    out.set(key, entry);
  }
  return out;
}

function rssKiB(): number {
  const status = Deno.readTextFileSync("/proc/self/status");
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

/** RSS, V8's heap used and external, and each heap space's physical size, in KiB, after a full GC. */
function usage(): Record<string, number> {
  gc!();
  const { heapUsed, external } = Deno.memoryUsage();
  const out: Record<string, number> = {
    rss: rssKiB(),
    heapUsed: heapUsed / 1024,
    external: external / 1024,
  };
  for (const space of v8.getHeapSpaceStatistics()) {
    out[space.space_name] = space.physical_space_size / 1024;
  }
  return out;
}

const registry = new Registry();
const rtmp = serveRtmp({ registry, hostname: HOST, port: 0 });
const http = serveHttp({ routes: [httpFlv(registry)], hostname: HOST, port: 0 });
const lavfi = (input: string) => ["-f", "lavfi", "-i", input];
const publisher = new Deno.Command("ffmpeg", {
  args: [
    ...["-nostdin", "-v", "error", "-re"],
    ...lavfi("testsrc=size=640x360:rate=30"),
    ...lavfi("sine=frequency=440:sample_rate=44100"),
    ...["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-b:v", "530k"],
    ...["-g", "60", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k"],
    ...["-f", "flv", `rtmp://${HOST}:${rtmp.addr.port}/live/bench`],
  ],
  stdin: "null",
  stdout: "null",
}).spawn();
const tmp = await Deno.makeTempDir({ prefix: "arcly-player-memory-" });
const bin = await buildLoadPlayer(tmp);

/** This process's CPU time (user + system) so far, in µs. */
function cpuUs(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 1e4;
}

/**
 * Run `players` load players on `protocol`; `measure` runs once they have played for the
 * warm-up. Resolves with how many joined and the server's CPU-µs per Mbit delivered over the
 * window after `measure` (the bytes are the window's, prorated).
 */
async function play(
  protocol: string,
  players: number,
  measure: () => void,
): Promise<{ joined: number; usPerMbit: number }> {
  const port = protocol === "rtmp" ? rtmp.addr.port : http.addr.port;
  const child = new Deno.Command(bin, {
    args: [protocol, HOST, String(port), "live", "bench", String(players), "2000"]
      .concat([String(WARMUP_S), String(WINDOW_S)]),
    stdout: "piped",
  }).spawn();
  let text = "";
  let [cpu0, t0, cpu1, t1] = [0, 0, 0, 0];
  for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
    if (!text.startsWith("window\n") && (text + chunk).startsWith("window\n")) {
      measure();
      [cpu0, t0] = [cpuUs(), performance.now()];
    }
    text += chunk;
    if (cpu1 === 0 && text.includes("\n{")) [cpu1, t1] = [cpuUs(), performance.now()];
  }
  await child.status;
  const line = text.split("\n").find((l) => l.startsWith("{"));
  if (!line) return { joined: 0, usPerMbit: NaN };
  const { joined, windowBytes, windowMs } = JSON.parse(line);
  const mbit = windowBytes * 8 / 1e6 * Math.min(1, (t1 - t0) / windowMs);
  return { joined, usPerMbit: (cpu1 - cpu0) / mbit };
}

while (registry.get("live", "bench") === undefined) await new Promise((r) => setTimeout(r, 100));
for (const protocol of values.protocols.split(",")) {
  await play(protocol, 1, () => {}); // the first player makes what every player shares
  const before = usage();
  const heapBefore = TOP > 0 ? census() : new Map();
  let after = before;
  let heapAfter: Census = new Map();
  const { joined, usPerMbit } = await play(protocol, PLAYERS, () => {
    after = usage();
    if (TOP > 0) heapAfter = census();
  });
  const per = Object.entries(after).map(([name, kib]) =>
    `${name} ${((kib - before[name]) / PLAYERS).toFixed(2)}`
  ).filter((cell) => !cell.endsWith(" 0.00"));
  console.log(
    `${protocol}: ${PLAYERS} players (${joined} joined), KiB per player: ${per.join(", ")}; ` +
      `server CPU-µs per delivered Mbit ${usPerMbit.toFixed(0)}`,
  );
  const grown = [...heapAfter].map(([key, { count, bytes }]) => {
    const was = heapBefore.get(key) ?? { count: 0, bytes: 0 };
    return { key, count: (count - was.count) / PLAYERS, bytes: (bytes - was.bytes) / PLAYERS };
  }).filter((row) => row.count >= 0.05).sort((a, b) => b.bytes - a.bytes).slice(0, TOP);
  for (const row of grown) {
    console.log(
      `  ${row.bytes.toFixed(0).padStart(6)} B ${row.count.toFixed(2).padStart(6)}× ${row.key}`,
    );
  }
  await new Promise((r) => setTimeout(r, 1000)); // the players' connections close
}
publisher.kill();
await publisher.status;
await Promise.all([rtmp.close(), http.close()]);
await Deno.remove(tmp, { recursive: true });
