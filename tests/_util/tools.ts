/**
 * The external programs some tests drive (ffmpeg, ffprobe, srt-live-transmit, tstools,
 * GStreamer, Chromium) and one rule for a missing one. Outside CI a test that needs it is
 * skipped: it shows as ignored, and a line on stderr names what is missing. In CI (the `CI`
 * environment variable set, as CI services do) nothing is skipped: the test runs and fails on
 * the missing program, so CI never passes by skipping.
 *
 * @example
 * ```ts
 * const test = await testsWith({
 *   ffmpeg: ["ffmpeg", "ffprobe"],
 *   x265: ["ffmpeg", "ffprobe", "ffmpeg:libx265"],
 * });
 * test.ffmpeg("ffmpeg decodes what we write", async () => {});
 * test.x265({ name: "H.265 fixtures", fn: async () => {} });
 * ```
 */

import { CHROMIUM } from "./browser.ts";

/**
 * A program the tests run: a command on `PATH` (`ffmpeg`, `ffprobe`, `srt-live-transmit`,
 * `tsreport`, `gst-launch-1.0`), `chromium` (at {@linkcode CHROMIUM}), or `ffmpeg:ENCODER`, an ffmpeg that has that
 * encoder (`ffmpeg:libx265`, `ffmpeg:libopus`).
 */
export type Tool = string;

/** Whether `CI` is set: then every test runs, whatever is installed. */
export const IN_CI = !!Deno.env.get("CI");

const found = new Map<Tool, Promise<boolean>>();

/** Whether `tool` is installed (see {@linkcode Tool}). Looked up once per process. */
export function has(tool: Tool): Promise<boolean> {
  let known = found.get(tool);
  if (!known) {
    known = lookUp(tool);
    found.set(tool, known);
  }
  return known;
}

async function lookUp(tool: Tool): Promise<boolean> {
  if (tool === "chromium") return await isFile(CHROMIUM);
  const [program, encoder] = tool.split(":");
  const dirs = (Deno.env.get("PATH") ?? "").split(":").filter((dir) => dir !== "");
  let onPath = false;
  for (const dir of dirs) if (!onPath) onPath = await isFile(`${dir}/${program}`);
  if (!onPath || encoder === undefined) return onPath;
  const out = await new Deno.Command(program, {
    args: ["-hide_banner", "-encoders"],
    stdin: "null",
    stderr: "null",
  }).output();
  return new RegExp(`^ \\S{6} ${encoder} `, "m").test(new TextDecoder().decode(out.stdout));
}

function isFile(path: string): Promise<boolean> {
  return Deno.stat(path).then((info) => info.isFile, () => false);
}

const reported = new Set<string>();

/**
 * Whether tests that need every one of `tools` run: yes when all are installed or `CI` is
 * set. When they do not, the first time for a set of tools a line on stderr says which are
 * missing.
 */
export async function canRun(...tools: Tool[]): Promise<boolean> {
  const missing: Tool[] = [];
  for (const tool of tools) if (!(await has(tool))) missing.push(tool);
  if (missing.length === 0 || IN_CI) return true;
  const what = missing.join(", ");
  if (!reported.has(what)) {
    reported.add(what);
    console.error(`skipping the tests that need ${what}: not installed (with CI set they run)`);
  }
  return false;
}

/**
 * One test function per set of programs: `Deno.test` where that set can run (see
 * {@linkcode canRun}), `Deno.test.ignore` where it cannot. They take `Deno.test`'s arguments,
 * and a test keeps its own file and line in reports.
 */
export async function testsWith<K extends string>(
  sets: Record<K, readonly Tool[]>,
): Promise<Record<K, typeof Deno.test.ignore>> {
  const tests = {} as Record<K, typeof Deno.test.ignore>;
  for (const key of Object.keys(sets) as K[]) {
    tests[key] = await canRun(...sets[key]) ? Deno.test : Deno.test.ignore;
  }
  return tests;
}
