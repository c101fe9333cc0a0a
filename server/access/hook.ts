/**
 * The HTTP auth hook: the decision is asked of the operator's own service.
 *
 * Every request the hook is asked about is POSTed to its URL as JSON:
 *
 * ```json
 * { "action": "read", "path": "live/cam", "protocol": "rtmp", "user": "ann",
 *   "password": "secret", "token": "", "ip": "192.0.2.7", "query": "token=x", "id": "" }
 * ```
 *
 * (`action` is `publish`, `read`, `api` or `metrics`; `path` is `APP/NAME`, `""` for an
 * `api` or `metrics` request that names no stream; absent values are `""`). A 2xx answer
 * allows; any other status, a network error or no answer within `timeoutMs` refuses.
 * Answers (allow or refuse, not failures) are remembered for `cacheMs` per distinct JSON
 * body, so a player reloading a playlist every second asks the service once per `cacheMs`.
 *
 * @module
 */

/** The JSON body the hook receives. */
export interface HookQuestion {
  /** `publish`, `read`, `api` or `metrics`. */
  action: string;
  /** `APP/NAME`, or `""`. */
  path: string;
  /** The protocol asking, e.g. `rtmp`, `rtsp`, `srt`, `whip`, `whep`, `hls`, `http`. */
  protocol: string;
  /** User name, or `""`. */
  user: string;
  /** Password, or `""`. */
  password: string;
  /** Token, or `""`. */
  token: string;
  /** The peer's IP address, or `""`. */
  ip: string;
  /** The query string that came with the stream name, or `""`. */
  query: string;
  /** The connection or session id, or `""`. */
  id: string;
}

/** Options for {@linkcode AuthHook}. */
export interface AuthHookOptions {
  /** The URL POSTed to. */
  url: string;
  /** An answer slower than this refuses (default 2,000 ms, at most 30,000). */
  timeoutMs?: number;
  /** How long an answer is reused (default 5,000 ms; 0 asks every time). */
  cacheMs?: number;
  /** Answers remembered, oldest dropped first (default 1024). */
  cacheSize?: number;
}

/**
 * Asks an HTTP service; identical questions asked while one is in flight share its answer.
 *
 * @example
 * ```ts
 * import { AuthHook } from "@arcly/stream/access";
 *
 * const hook = new AuthHook({ url: "http://127.0.0.1:9000/auth", timeoutMs: 1000 });
 * const { allowed, reason } = await hook.ask({
 *   action: "read", path: "live/cam", protocol: "hls", user: "", password: "",
 *   token: "abc", ip: "192.0.2.7", query: "token=abc", id: "",
 * });
 * console.log(allowed, reason);
 * ```
 */
export class AuthHook {
  #url: string;
  #timeoutMs: number;
  #cacheMs: number;
  #cacheSize: number;
  #answers = new Map<string, { allowed: boolean; reason: string; untilMs: number }>();
  #inFlight = new Map<string, Promise<{ allowed: boolean; reason: string }>>();

  /**
   * Make a hook for one URL.
   *
   * @throws {TypeError} for a URL that is not http(s).
   */
  constructor(options: AuthHookOptions) {
    const url = new URL(options.url);
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new TypeError(`the auth hook URL must be http or https, not ${url.protocol}`);
    }
    this.#url = url.href;
    this.#timeoutMs = Math.min(options.timeoutMs ?? 2000, 30_000);
    this.#cacheMs = options.cacheMs ?? 5000;
    this.#cacheSize = options.cacheSize ?? 1024;
  }

  /** Ask about one request; never throws. */
  ask(question: HookQuestion): Promise<{ allowed: boolean; reason: string }> {
    const body = JSON.stringify(question);
    const now = performance.now();
    const known = this.#answers.get(body);
    if (known && known.untilMs > now) return Promise.resolve(known);
    const pending = this.#inFlight.get(body);
    if (pending) return pending;
    const asking = this.#post(body).then((answer) => {
      this.#inFlight.delete(body);
      if (answer.cacheable && this.#cacheMs > 0) {
        if (this.#answers.size >= this.#cacheSize) {
          this.#answers.delete(this.#answers.keys().next().value!);
        }
        this.#answers.delete(body);
        this.#answers.set(body, { ...answer, untilMs: performance.now() + this.#cacheMs });
      }
      return { allowed: answer.allowed, reason: answer.reason };
    });
    this.#inFlight.set(body, asking);
    return asking;
  }

  async #post(body: string): Promise<{ allowed: boolean; reason: string; cacheable: boolean }> {
    try {
      const response = await fetch(this.#url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      await response.body?.cancel();
      const allowed = response.status >= 200 && response.status < 300;
      return {
        allowed,
        reason: allowed ? "the auth hook allowed it" : `the auth hook answered ${response.status}`,
        cacheable: true,
      };
    } catch (error) {
      const why = error instanceof DOMException && error.name === "TimeoutError"
        ? `no answer within ${this.#timeoutMs} ms`
        : (error as Error).message;
      return { allowed: false, reason: `the auth hook failed: ${why}`, cacheable: false };
    }
  }
}
