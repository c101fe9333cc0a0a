/** A tiny HTTP origin for the HLS pull tests: files of a directory, each request counted. */

/** What {@linkcode serveOrigin} answers, and what it was asked. */
export interface Origin {
  /** The URL of `path` on this origin. */
  url(path: string): URL;
  /** Paths requested, in order. */
  readonly requests: string[];
  /** Stops serving. */
  close(): Promise<void>;
}

/**
 * Serves the files of `dir` on 127.0.0.1 (port 0); `route` may answer a request first (a
 * refusal, a changing playlist, a hang). A missing file is a 404.
 */
export function serveOrigin(
  dir: string,
  route: (path: string, request: Request) => Promise<Response | undefined> | Response | undefined =
    () => undefined,
): Origin {
  const requests: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const path = new URL(request.url).pathname;
    requests.push(path);
    const answer = await route(path, request);
    if (answer) return answer;
    try {
      const body = await Deno.readFile(`${dir}${path}`);
      return new Response(body);
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  return {
    url: (path) => new URL(path, `http://127.0.0.1:${server.addr.port}/`),
    requests,
    close: () => server.shutdown(),
  };
}
