/** The `package` command's progress line on a terminal. */

/** Counts bytes and media time for the progress line, printed every 500 ms when shown. */
export class Progress {
  bytes = 0;
  mediaSeconds = 0;
  #firstDts: number | undefined;
  #started = performance.now();
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(show: boolean) {
    if (show) this.#timer = setInterval(() => this.#print("\r"), 500);
  }

  frame(dts: number, bytes: number): void {
    if (this.#timer === undefined) return;
    this.bytes = bytes;
    this.#firstDts ??= dts;
    this.mediaSeconds = Math.max(this.mediaSeconds, (dts - this.#firstDts) / 90_000);
  }

  stop(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#print("\r");
    console.error();
  }

  #print(prefix: string): void {
    const elapsed = (performance.now() - this.#started) / 1000;
    const speed = elapsed > 0 ? this.mediaSeconds / elapsed : 0;
    const text = `${prefix}media ${this.mediaSeconds.toFixed(1)} s, ${
      (this.bytes / 2 ** 20).toFixed(1)
    } MiB read, ${speed.toFixed(1)}x`;
    Deno.stderr.writeSync(new TextEncoder().encode(text));
  }
}
