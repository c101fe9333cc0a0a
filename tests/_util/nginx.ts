/**
 * nginx (Debian `nginx-light`, with `libnginx-mod-rtmp` for RTMP) run by a test: a config
 * in a temporary directory, in the foreground, bounded in time, removed when stopped.
 */

import type { Procs, Spawned } from "./ffmpeg.ts";

/** A running nginx. */
export interface Nginx {
  /** Its directory: the prefix, `nginx.conf`, logs and whatever the config puts there. */
  readonly dir: string;
  /** Resolves when nginx has exited. */
  readonly exited: Promise<Spawned>;
  /** Stop nginx (SIGTERM to the pid it wrote) and remove its directory. */
  stop(): Promise<void>;
}

/**
 * Start nginx with `config` (everything after the `daemon`, `pid` and `error_log` lines
 * this writes: `events`, `http`, `rtmp`, `load_module` must come first so it is given as
 * `modules`), as a child of `procs` killed after `limitMs`. `{dir}` in the config is the
 * directory it runs in.
 */
export async function startNginx(
  procs: Procs,
  config: string,
  { modules = "", limitMs = 60_000 }: { modules?: string; limitMs?: number } = {},
): Promise<Nginx> {
  const dir = await Deno.makeTempDir({ prefix: "arcly-nginx-" });
  // One process, no master and workers: killed at the limit it leaves no orphaned worker
  // holding its port, and it runs as the user running the test.
  await Deno.writeTextFile(
    `${dir}/nginx.conf`,
    `${modules}master_process off;\ndaemon off;\npid ${dir}/nginx.pid;\n` +
      `error_log ${dir}/error.log warn;\n` +
      config.replaceAll("{dir}", dir),
  );
  const exited = procs.spawn("nginx", ["-p", dir, "-c", `${dir}/nginx.conf`], { limitMs });
  return {
    dir,
    exited,
    async stop() {
      const pid = Number(await Deno.readTextFile(`${dir}/nginx.pid`).catch(() => ""));
      if (pid > 0) {
        try {
          Deno.kill(pid, "SIGTERM");
        } catch {
          // already exited
        }
      }
      await exited;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
