/**
 * SRT ingest throughput: one srt-live-transmit publisher sends an H.264 MPEG-TS file at
 * stepped bitrates into serveSrt on loopback (demuxed into the registry) and, in the same
 * run, into an srt-live-transmit listener relaying it to a pipe. For each rate it prints
 * what arrived (Mbit/s), what was lost for good, and the CPU each receiver spent.
 *
 *   deno run -A bench/srt.ts [--seconds 4] [--rates 2,5,10,20,40] [--pbkeylen 16]
 *
 * With `--pbkeylen 16|24|32` every step runs twice, in clear and encrypted (AES-CTR with
 * that key length, a passphrase on both ends), to show what decryption costs each receiver.
 *
 * Needs ffmpeg (to make the input) and srt-live-transmit. Our CPU is the whole Deno
 * process (`process.cpuUsage()`, which only runs the listener while a step runs); the
 * relay's is its utime + stime from /proc.
 */

import process from "node:process";
import { parseArgs } from "node:util";
import { Registry } from "../mod.ts";
import { serveSrt } from "../ingest/srt/mod.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    seconds: { type: "string", default: "4" },
    rates: { type: "string", default: "2,5,10,20,40" },
    pbkeylen: { type: "string" },
  },
});
const SECONDS = Number(args.values.seconds);
const RATES = args.values.rates.split(",").map(Number);
const CLOCK_TICKS = 100;
const PBKEYLEN = args.values.pbkeylen;
const PASSPHRASE = "bench passphrase 0123";
/** The URL options that encrypt, when `encrypted`. */
const secret = (encrypted: boolean) =>
  encrypted ? `passphrase=${PASSPHRASE}&pbkeylen=${PBKEYLEN}` : "";

const dir = await Deno.makeTempDir({ prefix: "arcly-bench-srt-" });
const input = `${dir}/input.ts`;

/** Feeds FILE to stdout at RATE bit/s for SECONDS, looping it, in 10 ms slices. */
const PACER = `
const file = Deno.readFileSync(Deno.env.get("FILE"));
const rate = Number(Deno.env.get("RATE")) / 8;
const seconds = Number(Deno.env.get("SECONDS"));
const total = Math.floor(rate * seconds / 1316) * 1316;
const out = Deno.stdout.writable.getWriter();
const start = performance.now();
let sent = 0;
let at = 0;
while (sent < total) {
  const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate / 1316) * 1316);
  while (sent < due) {
    const n = Math.min(due - sent, file.length - at);
    await out.write(file.subarray(at, at + n));
    sent += n;
    at = (at + n) % file.length;
  }
  await new Promise((r) => setTimeout(r, 10));
}
await out.close();
`;

interface Step {
  mbps: number;
  lostForGood: number;
  repaired: number;
  cpuPercent: number;
  cpuMsPerMbit: number;
}

/** Publish `rate` bit/s for SECONDS into `url`; resolves when the publisher has exited. */
async function publish(url: string, rate: number): Promise<number> {
  const sent = Math.floor((rate / 8) * SECONDS / 1316) * 1316;
  const pipeline =
    `"${Deno.execPath()}" eval --quiet '${PACER}' | srt-live-transmit -a no -c 1316 -t ${
      SECONDS + 2
    } file://con '${url}'`;
  const child = new Deno.Command("sh", {
    args: ["-c", pipeline],
    env: { FILE: input, RATE: String(rate), SECONDS: String(SECONDS) },
    stdout: "null",
    stderr: "null",
  }).spawn();
  await child.status;
  return sent;
}

async function ours(rate: number, encrypted = false): Promise<Step> {
  const registry = new Registry();
  const server = await serveSrt({
    registry,
    hostname: "127.0.0.1",
    port: 0,
    passphrase: encrypted ? PASSPHRASE : undefined,
  });
  try {
    const before = server.stats().receive;
    const cpu0 = process.cpuUsage();
    const sent = await publish(
      `srt://127.0.0.1:${server.addr.port}?streamid=publish:live/bench&${secret(encrypted)}`,
      rate,
    );
    const cpu = process.cpuUsage(cpu0);
    const after = server.stats().receive;
    const delivered = after.deliveredBytes - before.deliveredBytes;
    const mbit = (delivered * 8) / 1e6;
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    return {
      mbps: mbit / SECONDS,
      lostForGood: Math.max(0, sent - delivered) / sent,
      repaired: after.lost - before.lost,
      cpuPercent: (cpuSeconds / SECONDS) * 100,
      cpuMsPerMbit: (cpuSeconds * 1000) / mbit,
    };
  } finally {
    await server.close();
  }
}

function procCpuSeconds(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

async function relay(rate: number, encrypted = false): Promise<Step> {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const child = new Deno.Command("srt-live-transmit", {
    args: [
      "-a",
      "no",
      "-t",
      String(SECONDS + 4),
      `srt://:${port}?${secret(encrypted)}`,
      "file://con",
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  let received = 0;
  const counting = (async () => {
    for await (const chunk of child.stdout) received += chunk.length;
  })();
  await new Promise((r) => setTimeout(r, 300));
  const cpu0 = procCpuSeconds(child.pid);
  let cpu1 = cpu0;
  const sampler = setInterval(() => {
    const now = procCpuSeconds(child.pid);
    if (!Number.isNaN(now)) cpu1 = now;
  }, 100);
  const sent = await publish(`srt://127.0.0.1:${port}?${secret(encrypted)}`, rate);
  clearInterval(sampler);
  const now = procCpuSeconds(child.pid);
  if (!Number.isNaN(now)) cpu1 = now;
  try {
    child.kill("SIGTERM");
  } catch {
    // already gone
  }
  await child.status;
  await counting;
  const mbit = (received * 8) / 1e6;
  const cpuSeconds = cpu1 - cpu0;
  return {
    mbps: mbit / SECONDS,
    lostForGood: Math.max(0, sent - received) / sent,
    repaired: NaN,
    cpuPercent: (cpuSeconds / SECONDS) * 100,
    cpuMsPerMbit: (cpuSeconds * 1000) / mbit,
  };
}

const make = await new Deno.Command("ffmpeg", {
  args: [
    "-v",
    "error",
    "-f",
    "lavfi",
    "-i",
    "testsrc2=size=1920x1080:rate=30:duration=4",
    "-f",
    "lavfi",
    "-i",
    "sine=duration=4",
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",
    "-qp",
    "0",
    "-g",
    "30",
    "-c:a",
    "aac",
    "-f",
    "mpegts",
    input,
  ],
}).output();
if (!make.success) throw new Error(new TextDecoder().decode(make.stderr));

const fmt = (s: Step) =>
  `${s.mbps.toFixed(2).padStart(7)} Mbit/s  lost ${
    (s.lostForGood * 100).toFixed(2).padStart(5)
  }%  ` +
  `CPU ${s.cpuPercent.toFixed(1).padStart(5)}%  ${s.cpuMsPerMbit.toFixed(2).padStart(6)} ms/Mbit`;
console.log(
  `input ${
    (Deno.statSync(input).size / 1e6).toFixed(1)
  } MB of H.264 1080p + AAC, ${SECONDS} s per step`,
);
console.log(
  "target     | serveSrt (Deno)                                        | srt-live-transmit relay",
);
try {
  for (const mbps of RATES) {
    for (const encrypted of PBKEYLEN ? [false, true] : [false]) {
      const a = await ours(mbps * 1e6, encrypted);
      const b = await relay(mbps * 1e6, encrypted);
      const label = PBKEYLEN ? (encrypted ? ` AES-${Number(PBKEYLEN) * 8}` : " clear  ") : "";
      console.log(
        `${String(mbps).padStart(4)} Mbit/s${label} | ${fmt(a)} (${a.repaired} repaired) | ${
          fmt(b)
        }`,
      );
    }
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
