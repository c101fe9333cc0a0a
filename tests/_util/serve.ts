/**
 * Servers for end-to-end tests on free loopback ports: {@linkcode startServer} runs
 * `serve()` in this process, {@linkcode startServe} runs `cli.ts serve` as a child.
 */

import { serve, type Server, type ServerConfig } from "../../server/mod.ts";
import { LogLines } from "./log.ts";

const CLI = new URL("../../cli.ts", import.meta.url).pathname;

const LISTENERS = ["rtmp", "http", "rtsp", "srt"] as const;

/** A listener of {@linkcode startServer}. */
export type Listener = typeof LISTENERS[number];

/** A server running in this process, with its log. */
export interface InProcessServer {
  /** The running server. */
  readonly server: Server;
  /** The config it was started with (its listeners included), e.g. to reload a variation. */
  readonly config: ServerConfig;
  /** Bound ports by listener name, from the server's addresses. */
  readonly ports: Partial<Record<Listener, number>>;
  /** What the server logged. */
  readonly log: LogLines;
  /** Close the server. */
  stop(): Promise<void>;
}

/**
 * Start `serve(config)` with every listener in `listeners` on 127.0.0.1 port 0 and the
 * others off; resolves once it is ready.
 */
export async function startServer(
  listeners: Listener[],
  config: ServerConfig = {},
): Promise<InProcessServer> {
  const log = new LogLines();
  const listen = Object.fromEntries(
    LISTENERS.map((name) => [name, {
      ...config[name],
      listen: listeners.includes(name) ? "127.0.0.1:0" : "off",
    }]),
  );
  const full: ServerConfig = { ...config, ...listen };
  const server = serve(full, { logger: log });
  await server.ready;
  const ports = Object.fromEntries(
    LISTENERS.flatMap((name) => {
      const addr = server.addresses[name];
      return addr ? [[name, addr.port]] : [];
    }),
  );
  return { server, config: full, ports, log, stop: () => server.close() };
}

/** A running server: its ports by protocol, its log so far, and how to stop it. */
export interface ServeProcess {
  /** Ports by listener name (`rtmp`, `http`, …) as the server logged them. */
  readonly ports: Record<string, number>;
  /** Every line the server logged so far. */
  readonly log: string[];
  /** Send `signal` to the server, e.g. SIGHUP. */
  signal(signal: Deno.Signal): void;
  /** Send `signal` (default SIGTERM) and wait for the exit code; throws if it had exited before. */
  stop(signal?: Deno.Signal): Promise<number>;
}

/** Where and how {@linkcode startServe} runs the server. */
export interface ServeProcessOptions {
  /** The listeners given as flags, on or off (default all four; `[]` leaves them to config). */
  flagged?: string[];
  /** The working directory (default this process's). */
  cwd?: string;
  /** Environment variables to add. */
  env?: Record<string, string>;
}

/** The V8 flags `deno task serve` (the README's command) runs `cli.ts serve` with, from `deno.json`. */
export const SERVE_TASK_V8_FLAGS: string = (() => {
  const config = JSON.parse(Deno.readTextFileSync(new URL("../../deno.json", import.meta.url)));
  return /--v8-flags=(\S+)/.exec(config.tasks.serve)?.[1] ?? "";
})();

/**
 * Start `cli.ts serve` as `deno task serve` runs it (with {@linkcode SERVE_TASK_V8_FLAGS}),
 * with every listener in `listeners` on 127.0.0.1 port 0 and the
 * others off (of those `flagged`), plus `extraArgs`. Resolves once each listener has logged
 * its address.
 */
export async function startServe(
  listeners: string[],
  extraArgs: string[] = [],
  options: ServeProcessOptions = {},
): Promise<ServeProcess> {
  const v8Flags = SERVE_TASK_V8_FLAGS ? [`--v8-flags=${SERVE_TASK_V8_FLAGS}`] : [];
  const args = ["run", "-A", ...v8Flags, CLI, "serve", ...extraArgs];
  for (const name of options.flagged ?? LISTENERS) {
    args.push(`--${name}`, listeners.includes(name) ? "127.0.0.1:0" : "off");
  }
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: options.cwd,
    env: options.env,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const log: string[] = [];
  const ports: Record<string, number> = {};
  const ready = Promise.withResolvers<void>();
  const lines = child.stderr.pipeThrough(new TextDecoderStream()).pipeThrough(splitLines());
  const reading = (async () => {
    for await (const line of lines) {
      log.push(line);
      const match = /(\w+) listening on .*:(\d+)(?:\/udp)?$/.exec(line);
      if (match) ports[match[1]] = Number(match[2]);
      if (listeners.every((name) => name in ports)) ready.resolve();
    }
    ready.reject(new Error(`serve exited before listening:\n${log.join("\n")}`));
  })();
  let exited: number | undefined;
  child.status.then((status) => exited = status.code);
  const timer = setTimeout(() => ready.reject(new Error("serve did not start in 30 s")), 30_000);
  try {
    await ready.promise;
  } catch (error) {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.status;
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return {
    ports,
    log,
    signal: (signal) => child.kill(signal),
    async stop(signal: Deno.Signal = "SIGTERM") {
      if (exited !== undefined) {
        // Something else stopped it (a crash, or a signal from outside the test).
        await reading;
        throw new Error(`serve exited with ${exited} before stop():\n${log.join("\n")}`);
      }
      const kill = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* already gone */ }
      }, 15_000);
      try {
        child.kill(signal);
      } catch { /* already gone */ }
      const status = await child.status;
      clearTimeout(kill);
      await reading;
      return status.code;
    },
  };
}

/** Split a text stream into lines. */
function splitLines(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, controller) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const line of parts) controller.enqueue(line);
    },
    flush(controller) {
      if (rest) controller.enqueue(rest);
    },
  });
}

/** Poll `check` every 100 ms until it returns a value, or throw after `ms`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  ms = 20_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
