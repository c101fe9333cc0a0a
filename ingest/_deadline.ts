/** A deadline on one step of talking to a peer. */

/**
 * Rejects with `timeout()` after `ms`, or with `signal`'s reason when it aborts, unless
 * `promise` settles first.
 */
export function withDeadline<T>(
  promise: Promise<T>,
  ms: number,
  timeout: () => Error,
  signal?: AbortSignal,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(timeout()), ms);
      onAbort = () => reject(signal!.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
    }),
  ]).finally(() => {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener("abort", onAbort);
  });
}
