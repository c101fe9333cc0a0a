/**
 * nginx with the RTMP module (Debian's `nginx-light` and `libnginx-mod-rtmp`) for tests: a
 * temporary config on a free loopback port, one process (`master_process off`, so the kill at
 * the end of a test leaves no orphaned worker), ready once it accepts connections.
 */

import type { Procs, Spawned } from "./ffmpeg.ts";
import { waitFor } from "./serve.ts";

/** A running nginx-rtmp. */
export interface NginxRtmp {
  /** Its RTMP port on 127.0.0.1. */
  readonly port: number;
  /** Resolves when the process has exited (killed by `procs.killAll()` or its time limit). */
  readonly exited: Promise<Spawned>;
  /** Stop it (SIGTERM, at once), wait for it and remove its directory. */
  stop(): Promise<void>;
}

/** A free TCP port on loopback (bound and released). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/**
 * Start nginx-rtmp as a child of `procs` (killed after `limitMs`) with `applications` in its
 * one `server` block (default: a live application named `live`).
 */
export async function startNginxRtmp(
  procs: Procs,
  { applications = "application live { live on; }", limitMs = 60_000 } = {},
): Promise<NginxRtmp> {
  const dir = await Deno.makeTempDir({ prefix: "arcly-nginx-" });
  const port = freePort();
  await Deno.writeTextFile(
    `${dir}/nginx.conf`,
    `load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 64; }
rtmp { server { listen 127.0.0.1:${port}; ${applications} } }
`,
  );
  const exited = procs.spawn("nginx", [
    "-p",
    dir,
    "-e",
    `${dir}/error.log`,
    "-c",
    `${dir}/nginx.conf`,
  ], {
    limitMs,
  });
  const accepts = () =>
    Deno.connect({ hostname: "127.0.0.1", port }).then((c) => (c.close(), true), () => undefined);
  await waitFor("nginx-rtmp accepting connections", accepts, 10_000);
  return {
    port,
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
