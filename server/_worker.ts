/**
 * The entry point of one worker of a multi-core server (see `_workers.ts`): it waits for
 * its `start` message, runs the worker's part of the server (RTMP and HTTP on the shared
 * ports) and links its registry to the primary's.
 */

/// <reference lib="deno.worker" />

import type { Logger } from "../mod.ts";
import type { FromWorker, ToWorker } from "./_workers.ts";
import { WorkerLink } from "./_workers.ts";
import { serveAsWorker } from "./serve.ts";

const post = (message: FromWorker) => self.postMessage(message);
const logger: Logger = {
  info: (message) => post({ type: "log", level: "info", message }),
  warn: (message) => post({ type: "log", level: "warn", message }),
  error: (message) => post({ type: "log", level: "error", message }),
};

let server: ReturnType<typeof serveAsWorker> | undefined;
let link: WorkerLink | undefined;

self.onmessage = async (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  switch (message.type) {
    case "start":
      try {
        server = serveAsWorker(message.config, logger, message.forward);
        await server.ready;
      } catch (error) {
        post({ type: "failed", error: error instanceof Error ? error.message : String(error) });
        return;
      }
      link = new WorkerLink(server.registry, logger, post, server.counts.bind(server));
      post({ type: "ready" });
      return;
    case "reload":
      await server?.reload(message.config).catch((error) =>
        logger.error(`reload refused: ${error instanceof Error ? error.message : error}`)
      );
      post({ type: "reloaded" });
      return;
    case "close":
      link?.close();
      await server?.close();
      post({ type: "closed" });
      self.close();
      return;
    default:
      link?.receive(message);
  }
};
