/** A logger for tests that keeps its lines. */

/** Lines a test logger collected. */
export class LogLines {
  lines: string[] = [];
  info = (m: string) => void this.lines.push(`info ${m}`);
  warn = (m: string) => void this.lines.push(`warn ${m}`);
  error = (m: string) => void this.lines.push(`error ${m}`);

  /** Wait until a line matches `re` (fails after `ms`). */
  async waitFor(re: RegExp, ms = 5000): Promise<string> {
    const until = Date.now() + ms;
    for (;;) {
      const line = this.lines.find((l) => re.test(l));
      if (line) return line;
      if (Date.now() > until) {
        throw new Error(`no log line matching ${re} in:\n${this.lines.join("\n")}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}
