/**
 * Server load benchmark: how many live players one core of a server holds, and what a
 * delivered megabit costs it, for `cli.ts serve` and, in the same run when installed,
 * node-media-server 4.4.3, nginx with the RTMP module and, for SRT, a fan-out on libsrt.
 *
 * ```sh
 * deno run -A bench/load.ts [--players 100,500,1000] [--protocols rtmp,flv,rtsp,srt,whep]
 *   [--servers arcly,nginx,nms,libsrt] [--window 10] [--warmup 3] [--ramp 1000] [--nms-dir DIR]
 *   [--serve-args "--flag value"] [--v8-flags=FLAGS] [--cpu-prof DIR] [--before DIR]
 *   [--before-args "..."] [--before-v8-flags=FLAGS]
 *   [--workers 1,2] [--load-cpu 1] [--srt-load lite|libsrt]
 * ```
 *
 * `--workers 1,2` runs `serve --workers N` for each N given (default 1), pinned to CPUs 0 to
 * N-1; the publisher and the load player stay on CPU `--load-cpu` (default 1), so on a
 * 2-core machine the 2-worker server shares that CPU with them: its figure is a floor of
 * what two cores of its own would hold.
 *
 * `serve` runs with the V8 flags of `deno task serve` (`deno.json`), as the README runs it
 * (`--v8-flags=` runs it without, `--v8-flags=FLAGS` with others).
 *
 * `--before DIR` adds `serve` of another checkout (e.g. a worktree of `main`) as server
 * `before` (name it in `--servers`), to compare two versions in one run; `--before-args`
 * and `--before-v8-flags` give it its own `serve` and V8 flags (alone, they compare two flag sets
 * of this checkout).
 *
 * `--cpu-prof DIR` runs `serve` under `deno run --cpu-prof` and leaves one profile per step
 * in DIR (open it in Chrome DevTools) to see where a player's cost goes.
 *
 * For each server, protocol and player count it starts the server fresh, pinned to CPU 0
 * (`taskset -c 0`), one ffmpeg publisher (lavfi testsrc 640x360 30 fps H.264 + AAC, about
 * 600 kbit/s, 2 s GOP, bench/_input.ts's cached 20 s file published in a loop with `-re` and
 * `-c copy`, about 1% of its CPU against 12% for a live encode) and the load player, both pinned
 * to CPU 1. The load players are
 * C programs built here with gcc, each one epoll loop:
 * - `bench/_load_player.c`: N RTMP players, HTTP-FLV GETs or RTSP players over interleaved
 *   TCP that count bytes and video frames;
 * - `bench/_load_srt_lite.c` (`--protocols srt`): N SRT callers reading
 *   `#!::r=live/bench,m=request` from `serve --srt` on a few shared UDP sockets, counting
 *   bytes and video PES starts and sending what libsrt's receiver sends (ACKs on its 10 ms
 *   timer, NAKs, keep-alives), for a fraction of libsrt's CPU: the load player must not run out
 *   of its core before the server does;
 * - `bench/_load_srt.c` (`--srt-load libsrt`): the same readers as libsrt callers (built
 *   against libsrt: Debian's `apt-get install libsrt-openssl-dev`), the reference the lite
 *   player's datagrams were checked against.
 *
 * For `--protocols whep` it is `bench/_load_whep.ts`: N werift WHEP viewers that count the
 * frames in their packets' clear RTP headers, decrypting nothing. RTSP, SRT and WHEP are
 * arcly-stream's only. WHEP viewers get the video only (WebRTC cannot carry the AAC; the server
 * transcodes nothing unless `--serve-args "--transcode-audio"`), and each join costs a DTLS
 * handshake on both sides: ramp them slowly (`--ramp 20`). Players connect at `--ramp` per
 * second, the window of `--window` seconds opens `--warmup` seconds after the last one
 * connected. A step is **held** when at least 99% of the players received at least 95% of the
 * video frames the publisher sent in the window (ffmpeg's `-progress` count: on a loaded
 * machine it may fall below 30 per second, and the table shows the rate it reached). Server
 * CPU comes from `/proc/PID/stat` over the window, RSS from `/proc/PID/status` at its end (per
 * player: its growth from before the players connected, with only the publisher and one probe
 * played; per added player: its growth from the step before, what one more player costs
 * without what V8 grows once for all); join is connect to first video frame; the load
 * player's CPU is its whole run's (join and warm-up included) and, in parentheses, that as a
 * share of its core.
 *
 * Comparisons, when present:
 * - nginx: Debian's `nginx-light` and `libnginx-mod-rtmp` (RTMP only; a temporary
 *   `nginx.conf` loads the module from `/usr/lib/nginx/modules/ngx_rtmp_module.so`).
 * - node-media-server: `npm install --prefix /tmp/nms443 node-media-server@4.4.3`, then
 *   `--nms-dir /tmp/nms443` (the default); run with the machine's `node`.
 * - libsrt (SRT only): `bench/_srt_fanout.c`, built here with gcc against libsrt, relays
 *   the publisher's messages to every reader on libsrt's own sockets and UDP path, parsing
 *   nothing: what one core does with libsrt here. Its publisher is the same ffmpeg sending
 *   MPEG-TS over SRT (`pkt_size=1316`) instead of FLV over RTMP; ffmpeg's mux fills its
 *   payloads fuller than a server muxing each frame as it comes, so it sends a reader fewer
 *   datagrams per megabit.
 *
 * Figures are for comparing servers within one run: on a shared machine report ratios.
 *
 * @module
 */

import { freeTcpPort, freeUdpPort } from "../tests/_util/ports.ts";
import { SERVE_TASK_V8_FLAGS } from "../tests/_util/serve.ts";
import { parseArgs } from "node:util";
import { buildLoadPlayer } from "./_load_player.ts";
import { loadStreamInput } from "./_input.ts";

const { values } = parseArgs({
  options: {
    players: { type: "string", default: "100,500,1000" },
    protocols: { type: "string", default: "rtmp,flv" },
    servers: { type: "string", default: "arcly,nginx,nms" },
    window: { type: "string", default: "10" },
    warmup: { type: "string", default: "3" },
    ramp: { type: "string", default: "1000" },
    "nms-dir": { type: "string", default: "/tmp/nms443" },
    "serve-args": { type: "string", default: "" },
    "v8-flags": { type: "string", default: SERVE_TASK_V8_FLAGS },
    "before-v8-flags": { type: "string" },
    "cpu-prof": { type: "string" },
    before: { type: "string" },
    "before-args": { type: "string" },
    workers: { type: "string", default: "1" },
    "load-cpu": { type: "string", default: "1" },
    "srt-load": { type: "string", default: "lite" },
  },
});
if (!["lite", "libsrt"].includes(values["srt-load"])) {
  throw new Error(`--srt-load is lite or libsrt, not ${values["srt-load"]}`);
}
const WORKERS = values.workers.split(",").map(Number);
const LOAD_CPU = values["load-cpu"];
const STEPS = values.players.split(",").map(Number);
const PROTOCOLS = values.protocols.split(",") as Protocol[];
const WINDOW_S = Number(values.window);
const WARMUP_S = Number(values.warmup);
const RAMP = Number(values.ramp);
const NMS_DIR = values["nms-dir"];
const HOST = "127.0.0.1";
const ROOT = new URL("..", import.meta.url).pathname;
/** The SRT connections `serve` accepts here: more than any step has readers. */
const MAX_SRT_READERS = 20_000;

type Protocol = "rtmp" | "flv" | "rtsp" | "srt" | "whep";

/** A server under test, started fresh for every step. */
interface Server {
  readonly name: string;
  readonly protocols: readonly Protocol[];
  /** Why it cannot run here, when it cannot. */
  missing(): Promise<string | undefined>;
  start(dir: string): Promise<Running>;
}

interface Running {
  readonly pid: number;
  /** Settles when the server process exits. */
  readonly status: Promise<Deno.CommandStatus>;
  readonly rtmpPort: number;
  readonly httpPort: number;
  /** The RTSP listener's port (0: none). */
  readonly rtspPort: number;
  /** The SRT listener's UDP port (0: none). */
  readonly srtPort: number;
  /** Where the publisher sends: ffmpeg's output format and URL. */
  readonly publishTo: readonly [format: "flv" | "mpegts", url: string];
  stop(): Promise<void>;
}

/** What the load player prints when its window closes. */
interface LoadResult {
  players: number;
  joined: number;
  windowMs: number;
  windowBytes: number;
  cpuMs: number;
  frames: number[];
  joinMs: number[];
  /** How long the load player ran (measured here, not printed by it). */
  runMs: number;
}

interface Row {
  server: string;
  protocol: Protocol;
  players: number;
  joined: number;
  publishedFps: number;
  keptUp: number;
  held: boolean;
  cpuUsPerMbit: number;
  serverCpu: number;
  rssMiB: number;
  /** RSS growth from before the players connected to the window's end, per player. */
  kibPerPlayer: number;
  joinP50: number;
  mbitPerPlayer: number;
  /** The load player's CPU time over its run, ms. */
  loadCpu: number;
  /** That as a share of one core. */
  loadCpuShare: number;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Resolves once `port` accepts a TCP connection; throws after `ms`. */
async function accepting(port: number, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      (await Deno.connect({ hostname: HOST, port })).close();
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`nothing listens on ${port} after ${ms} ms`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/**
 * Spawn `argv` pinned to `cpu` (a `taskset -c` list) with a file-descriptor limit fit for
 * thousands of peers.
 */
function spawnPinned(
  cpu: number | string,
  argv: string[],
  log: string,
  stdout = false,
): Deno.ChildProcess {
  const quoted = argv.map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(" ");
  const output = stdout ? `2>>'${log}'` : `>>'${log}' 2>&1`;
  return new Deno.Command("bash", {
    args: ["-c", `ulimit -n 20000; exec taskset -c ${cpu} ${quoted} ${output}`],
    stdin: "null",
    stdout: stdout ? "piped" : "null",
    stderr: "null",
  }).spawn();
}

async function stopChild(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch { /* gone */ }
  const kill = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, 5_000);
  await child.status;
  clearTimeout(kill);
}

/** A started server once its ports (`httpPort`, `rtspPort` 0: none) accept connections. */
async function running(
  child: Deno.ChildProcess,
  rtmpPort: number,
  httpPort: number,
  rtspPort = 0,
  srtPort = 0,
): Promise<Running> {
  await accepting(rtmpPort);
  if (httpPort) await accepting(httpPort);
  if (rtspPort) await accepting(rtspPort);
  const stop = () => stopChild(child);
  const publishTo = ["flv", `rtmp://${HOST}:${rtmpPort}/live/bench`] as const;
  return {
    pid: child.pid,
    status: child.status,
    rtmpPort,
    httpPort,
    rtspPort,
    srtPort,
    publishTo,
    stop,
  };
}

/** Resolves once a UDP socket is bound to `HOST:port` (Linux: `/proc/net/udp`); throws after `ms`. */
async function udpBound(port: number, ms = 20_000): Promise<void> {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const deadline = Date.now() + ms;
  while (!(await Deno.readTextFile("/proc/net/udp")).includes(` ${local} `)) {
    if (Date.now() > deadline) throw new Error(`nothing is bound to UDP ${port} after ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * `cli.ts serve --workers N` of the checkout at `root`, pinned to CPUs 0 to N-1 (SRT stays
 * on the primary, whatever N).
 */
const arclyAt = (
  name: string,
  root: string,
  args: string,
  v8Flags: string,
  workers = 1,
): Server => ({
  name: workers === 1 ? name : `${name} (${workers} workers)`,
  protocols: ["rtmp", "flv", "rtsp", "srt", "whep"],
  async missing() {
    if (!await exists(`${root}cli.ts`)) return `no ${root}cli.ts`;
  },
  async start(dir) {
    const [rtmpPort, httpPort, rtspPort] = [freeTcpPort(), freeTcpPort(), freeTcpPort()];
    const [rtpPort, srtPort] = [await freeUdpPort(), await freeUdpPort()];
    const extra = args.split(" ").filter((a) => a !== "");
    // SRT's default of 1,000 connections would refuse the readers of a larger step.
    const config = `${dir}/arcly.yml`;
    await Deno.writeTextFile(config, `srt:\n  maxConnections: ${MAX_SRT_READERS}\n`);
    const child = spawnPinned(workers === 1 ? 0 : `0-${workers - 1}`, [
      Deno.execPath(),
      "run",
      "-A",
      ...(v8Flags ? [`--v8-flags=${v8Flags}`] : []),
      ...(values["cpu-prof"] ? ["--cpu-prof", `--cpu-prof-dir=${values["cpu-prof"]}`] : []),
      `${root}cli.ts`,
      "serve",
      "--config",
      config,
      "--quiet",
      "--rtmp",
      `${HOST}:${rtmpPort}`,
      "--http",
      `${HOST}:${httpPort}`,
      "--rtsp",
      `${HOST}:${rtspPort}`,
      "--rtsp-rtp-port", // players use TCP; a free port keeps parallel runs apart
      String(rtpPort),
      "--srt",
      `${HOST}:${srtPort}`,
      "--webrtc-host",
      HOST,
      "--workers",
      String(workers),
      ...extra,
    ], `${dir}/arcly.log`);
    return await running(child, rtmpPort, httpPort, rtspPort, srtPort);
  },
});

const NGINX_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so";
const nginx: Server = {
  name: "nginx-rtmp",
  protocols: ["rtmp"],
  async missing() {
    if (!await exists("/usr/sbin/nginx")) return "no /usr/sbin/nginx (apt-get install nginx-light)";
    if (!await exists(NGINX_MODULE)) {
      return `no ${NGINX_MODULE} (apt-get install libnginx-mod-rtmp)`;
    }
  },
  async start(dir) {
    const rtmpPort = freeTcpPort();
    const conf = `${dir}/nginx.conf`;
    await Deno.writeTextFile(
      conf,
      `load_module ${NGINX_MODULE};
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 20000;
error_log ${dir}/nginx-error.log warn;
pid ${dir}/nginx.pid;
events { worker_connections 19000; }
rtmp {
  server {
    listen ${HOST}:${rtmpPort};
    chunk_size 4096;
    application live { live on; }
  }
}
`,
    );
    const child = spawnPinned(0, [
      "/usr/sbin/nginx",
      "-p",
      dir,
      "-e",
      `${dir}/nginx-error.log`,
      "-c",
      conf,
    ], `${dir}/nginx.log`);
    return await running(child, rtmpPort, 0);
  },
};

const nms: Server = {
  name: "node-media-server",
  protocols: ["rtmp", "flv"],
  async missing() {
    if (!await exists(`${NMS_DIR}/node_modules/node-media-server/bin/app.js`)) {
      return `not in ${NMS_DIR} (npm install --prefix ${NMS_DIR} node-media-server@4.4.3)`;
    }
    if (!await exists("/usr/bin/node")) return "no node";
  },
  async start(dir) {
    const [rtmpPort, httpPort, rtmps, https] = [
      freeTcpPort(),
      freeTcpPort(),
      freeTcpPort(),
      freeTcpPort(),
    ];
    const bin = `${NMS_DIR}/node_modules/node-media-server/bin`;
    const config = JSON.parse(await Deno.readTextFile(`${bin}/config.json`));
    config.bind = HOST;
    config.store = { ...config.store, path: `${dir}/nms-data` };
    config.record = { ...config.record, path: `${dir}/nms-record` };
    config.rtmp.port = rtmpPort;
    config.http.port = httpPort;
    config.rtmps = { ...config.rtmps, port: rtmps, key: `${bin}/key.pem`, cert: `${bin}/cert.pem` };
    config.https = { ...config.https, port: https, key: `${bin}/key.pem`, cert: `${bin}/cert.pem` };
    await Deno.writeTextFile(`${dir}/nms.json`, JSON.stringify(config));
    const child = spawnPinned(0, [
      "/usr/bin/node",
      `${bin}/app.js`,
      "-c",
      `${dir}/nms.json`,
      "--no-admin",
    ], `${dir}/nms.log`);
    return await running(child, rtmpPort, httpPort);
  },
};

/** A C program of bench/ on libsrt (the load reader, the fan-out server), or why it cannot be built here. */
async function buildOnLibsrt(dir: string, source: string): Promise<string | Error> {
  if (!await exists("/usr/include/srt/srt.h")) {
    return new Error("no libsrt headers (apt-get install libsrt-openssl-dev)");
  }
  return await buildLoadPlayer(dir, source, ["-lsrt"]);
}

/**
 * `bench/_srt_fanout.c`: libsrt relaying one SRT publisher's messages to every reader, the
 * reference for what one core does with libsrt's own sockets and UDP path. Built on first use.
 */
function libsrtFanout(binDir: string): Server {
  let built: Promise<string | Error> | undefined;
  const build = () => built ??= buildOnLibsrt(binDir, "_srt_fanout.c");
  return {
    name: "libsrt fan-out",
    protocols: ["srt"],
    async missing() {
      const bin = await build();
      if (bin instanceof Error) return bin.message;
    },
    async start(dir) {
      const bin = await build() as string;
      const srtPort = await freeUdpPort();
      const child = spawnPinned(0, [bin, HOST, String(srtPort)], `${dir}/fanout.log`);
      await udpBound(srtPort);
      return {
        pid: child.pid,
        status: child.status,
        rtmpPort: 0,
        httpPort: 0,
        rtspPort: 0,
        srtPort,
        publishTo: ["mpegts", `srt://${HOST}:${srtPort}?streamid=publish:live/bench&pkt_size=1316`],
        stop: () => stopChild(child),
      };
    },
  };
}

/** The publisher, and how many video frames it has sent so far (from `-progress`). */
interface Publisher {
  readonly child: Deno.ChildProcess;
  readonly sent: () => number;
}

/** Publish `source` in a loop at its own rate (`-re`, stream copy) as `format` to `url`. */
function publisher(
  source: string,
  [format, url]: Running["publishTo"],
  dir: string,
): Publisher {
  let sent = 0;
  const child = spawnPinned(
    LOAD_CPU,
    [
      "ffmpeg",
      "-nostdin",
      "-progress",
      "pipe:1",
      "-stats_period",
      "0.1",
      "-v",
      "error",
      "-re",
      "-stream_loop",
      "-1",
      "-i",
      source,
      "-c",
      "copy",
      "-f",
      format,
      url,
    ],
    `${dir}/ffmpeg.log`,
    true,
  );
  void (async () => {
    let rest = "";
    for await (const text of child.stdout.pipeThrough(new TextDecoderStream())) {
      const lines = (rest + text).split("\n");
      rest = lines.pop()!;
      for (const line of lines) if (line.startsWith("frame=")) sent = Number(line.slice(6));
    }
  })();
  return { child, sent: () => sent };
}

/** Run the load player; `onWindow` runs when its window opens. */
async function load(
  bin: string,
  protocol: Protocol,
  port: number,
  players: number,
  warmupS: number,
  windowS: number,
  onWindow: () => void,
): Promise<LoadResult> {
  // WHEP viewers are werift peers (bench/_load_whep.ts); the others the C load player.
  const player = protocol === "whep"
    ? [Deno.execPath(), "run", "-A", `${ROOT}bench/_load_whep.ts`]
    : [bin, protocol];
  const child = new Deno.Command("taskset", {
    args: [
      "-c",
      LOAD_CPU,
      ...player,
      HOST,
      String(port),
      "live",
      "bench",
      String(players),
      String(RAMP),
      String(warmupS),
      String(windowS),
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const startedMs = performance.now();
  let text = "";
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout) {
    text += decoder.decode(chunk, { stream: true });
    if (text.startsWith("window\n") && onWindow !== noop) {
      onWindow();
      onWindow = noop;
    }
  }
  await child.status;
  const line = text.split("\n").find((l) => l.startsWith("{"));
  if (!line) throw new Error(`load player printed no result: ${text.slice(0, 200)}`);
  return { ...JSON.parse(line), runMs: performance.now() - startedMs };
}

function noop(): void {}

/** utime + stime of `pid` in µs. */
async function cpuUs(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks * (1e6 / 100);
}

async function rssMiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function step(
  server: Server,
  protocol: Protocol,
  players: number,
  bin: string,
): Promise<Row> {
  const dir = await Deno.makeTempDir({ prefix: "arcly-load-" });
  const running = await server.start(dir);
  const pub = publisher(source, running.publishTo, dir);
  let failed = false;
  try {
    const port = {
      rtmp: running.rtmpPort,
      flv: running.httpPort,
      rtsp: running.rtspPort,
      srt: running.srtPort,
      whep: running.httpPort,
    }[protocol];
    // Wait until one player gets video, so the window measures delivery, not the start.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const probe = await load(bin, protocol, port, 1, 0, 0.5, noop);
      if (probe.joined === 1) break;
      if (Date.now() > deadline) throw new Error(`${server.name}: no video after 20 s (${dir})`);
    }
    const rssIdle = await rssMiB(running.pid);
    let cpuStart = 0;
    let sentAtStart = 0;
    let started: Promise<number> = Promise.resolve(0);
    const result = await load(bin, protocol, port, players, WARMUP_S, WINDOW_S, () => {
      sentAtStart = pub.sent();
      started = cpuUs(running.pid);
    });
    const sent = pub.sent() - sentAtStart;
    const cpuEnd = await cpuUs(running.pid);
    const rss = await rssMiB(running.pid);
    cpuStart = await started;
    const expected = sent;
    const keptUp = result.frames.filter((f) => f >= 0.95 * expected).length / players;
    const mbit = result.windowBytes * 8 / 1e6;
    return {
      server: server.name,
      protocol,
      players,
      joined: result.joined,
      publishedFps: sent / (result.windowMs / 1000),
      keptUp,
      held: keptUp >= 0.99,
      cpuUsPerMbit: (cpuEnd - cpuStart) / mbit,
      serverCpu: (cpuEnd - cpuStart) / (result.windowMs * 1000),
      rssMiB: rss,
      kibPerPlayer: (rss - rssIdle) * 1024 / players,
      joinP50: percentile(result.joinMs, 0.5),
      mbitPerPlayer: mbit / players / (result.windowMs / 1000),
      loadCpu: result.cpuMs,
      loadCpuShare: result.cpuMs / result.runMs,
    };
  } catch (error) {
    failed = true;
    const timeout = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 200));
    const exited = await Promise.race([running.status, timeout]);
    const how = exited ? `; the server exited: code ${exited.code}, signal ${exited.signal}` : "";
    throw new Error(`${(error as Error).message}${how} (logs in ${dir})`);
  } finally {
    await stopChild(pub.child);
    await running.stop();
    if (!failed) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * RSS growth per player from the step before (same server and protocol) to `row`: what one
 * more player costs, without what grows once for all (V8's young generation, which V8 sizes
 * by the allocation rate up to a limit it reaches at about 2,000 players here).
 */
function kibPerAddedPlayer(row: Row, before: Row | undefined): string {
  if (!before || before.players >= row.players) return "–";
  return ((row.rssMiB - before.rssMiB) * 1024 / (row.players - before.players)).toFixed(0);
}

function print(row: Row, before: Row | undefined): void {
  const cells = [
    row.server,
    row.protocol,
    String(row.players),
    String(row.joined),
    row.publishedFps.toFixed(1),
    `${row.held ? "yes" : "no"} (${(row.keptUp * 100).toFixed(1)}%)`,
    row.cpuUsPerMbit.toFixed(0),
    `${(row.serverCpu * 100).toFixed(0)}%`,
    row.rssMiB.toFixed(0),
    row.kibPerPlayer.toFixed(0),
    kibPerAddedPlayer(row, before),
    row.joinP50.toFixed(0),
    row.mbitPerPlayer.toFixed(3),
    `${(row.loadCpu / 1000).toFixed(1)} s (${(row.loadCpuShare * 100).toFixed(0)}%)`,
  ];
  console.log(`| ${cells.join(" | ")} |`);
}

/** The servers by `--servers` name; an arcly one per `--workers` count. */
const tmp = await Deno.makeTempDir({ prefix: "arcly-load-bin-" });
const source = await loadStreamInput();
const all: Record<string, Server[]> = {
  arcly: WORKERS.map((n) =>
    arclyAt("arcly-stream", ROOT, values["serve-args"], values["v8-flags"], n)
  ),
  nginx: [nginx],
  nms: [nms],
  libsrt: [libsrtFanout(tmp)],
};
if (
  values.before || values["before-args"] !== undefined ||
  values["before-v8-flags"] !== undefined
) {
  const root = values.before?.replace(/\/?$/, "/") ?? ROOT;
  all.before = WORKERS.map((n) =>
    arclyAt(
      "arcly-stream before",
      root,
      values["before-args"] ?? "",
      values["before-v8-flags"] ?? values["v8-flags"],
      n,
    )
  );
}
const players: Record<Protocol, string | Error> = {
  rtmp: await buildLoadPlayer(tmp),
  flv: "",
  rtsp: "",
  srt: !PROTOCOLS.includes("srt")
    ? ""
    : values["srt-load"] === "libsrt"
    ? await buildOnLibsrt(tmp, "_load_srt.c")
    : await buildLoadPlayer(tmp, "_load_srt_lite.c"),
  whep: "", // bench/_load_whep.ts runs under Deno
};
players.flv = players.rtsp = players.rtmp;
console.log(
  `load: ${WARMUP_S} s warm-up, ${WINDOW_S} s window, ramp ${RAMP}/s, server on CPU 0 ` +
    `(0 to N-1 with N workers), publisher and load player on CPU ${LOAD_CPU}; load average ${
      (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ")
    }`,
);
console.log(
  "| server | protocol | players | joined | published fps | held (share ≥ 95% of frames) | server CPU-µs per delivered Mbit | server CPU | RSS MiB | RSS KiB per player | RSS KiB per added player | join p50 ms | Mbit/s per player | load player CPU |",
);
console.log("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
for (const protocol of PROTOCOLS) {
  for (const name of values.servers.split(",")) {
    if (!all[name]) throw new Error(`unknown server ${name}`);
  }
  for (const server of values.servers.split(",").flatMap((name) => all[name])) {
    if (!server.protocols.includes(protocol)) continue;
    const bin = players[protocol];
    const missing = bin instanceof Error ? bin.message : await server.missing();
    if (missing) {
      console.log(`| ${server.name} | ${protocol} | skipped: ${missing} |`);
      continue;
    }
    let before: Row | undefined;
    for (const count of STEPS) {
      try {
        const row = await step(server, protocol, count, bin as string);
        print(row, before);
        before = row;
      } catch (error) {
        console.log(
          `| ${server.name} | ${protocol} | ${count} | failed: ${(error as Error).message} |`,
        );
      }
    }
  }
}
await Deno.remove(tmp, { recursive: true });
