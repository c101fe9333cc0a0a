/**
 * Headless Chromium for end-to-end tests: open a page served by the test, and collect the
 * result the page POSTs back. No DevTools protocol: the page reports over plain HTTP.
 */

/** Where Debian installs Chromium. */
export const CHROMIUM = "/usr/bin/chromium";

/** Flags every test run uses (root in a container, no network beyond loopback). */
const FLAGS = [
  "--headless=new",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-quic",
  "--no-first-run",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
  "--autoplay-policy=no-user-gesture-required",
  "--mute-audio",
];

/** A running browser; `close` kills it and removes its profile. */
export interface Browser {
  close(): Promise<void>;
}

/** Open `url` in a fresh headless Chromium profile with `extraFlags`. */
export async function openInChromium(url: string, extraFlags: string[] = []): Promise<Browser> {
  const profile = await Deno.makeTempDir({ prefix: "arcly-chromium-" });
  const child = new Deno.Command(CHROMIUM, {
    args: [...FLAGS, `--user-data-dir=${profile}`, ...extraFlags, url],
    stdout: "null",
    stderr: "null",
    stdin: "null",
  }).spawn();
  return {
    async close() {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      await child.status;
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    },
  };
}

/** The text of a file inside an npm package Deno has cached, e.g. hls.js's `dist/hls.min.js`. */
export async function npmFile(pkg: string, path: string): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", `npm:${pkg}`],
    stdout: "piped",
    stderr: "null",
  }).output();
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    npmPackages: Record<string, { localPath: string }>;
  };
  const name = pkg.slice(0, pkg.lastIndexOf("@"));
  const local = Object.entries(info.npmPackages).find(([id]) => id.startsWith(`${name}@`))?.[1]
    .localPath;
  if (!local) throw new Error(`npm package ${pkg} is not available`);
  return await Deno.readTextFile(`${local}/${path}`);
}

/** Resolves with the first JSON body POSTed to `/result`, or rejects after `ms`. */
export function resultCollector(ms: number) {
  const { promise, resolve, reject } = Promise.withResolvers<unknown>();
  const timer = setTimeout(() => reject(new Error(`no result from the browser in ${ms} ms`)), ms);
  promise.finally(() => clearTimeout(timer)).catch(() => {});
  const route = async (request: Request, url: URL): Promise<Response | undefined> => {
    if (url.pathname !== "/result" || request.method !== "POST") return undefined;
    resolve(await request.json());
    return new Response("ok");
  };
  return { result: promise, route };
}
