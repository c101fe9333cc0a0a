/** The command line's flag parsing (cli.ts `parseFlags`, `parseListen`). */

import assert from "node:assert/strict";
import { parseFlags, parseListen } from "../cli.ts";

const options = {
  out: { type: "string" },
  type: { type: "string", default: "ts" },
  host: { type: "string", multiple: true },
  quiet: { type: "boolean" },
} as const;

Deno.test("parseFlags: defaults, both value forms, repeats, switches, positionals and --", () => {
  assert.deepEqual(parseFlags([], options), {
    values: { out: undefined, type: "ts", host: undefined, quiet: false },
    positionals: [],
  });
  const parsed = parseFlags(
    ["in.flv", "--out", "a", "--out=b", "--host=h1", "--host", "h2", "--quiet", "-", "--", "--x"],
    options,
    true,
  );
  assert.deepEqual(parsed, {
    values: { out: "b", type: "ts", host: ["h1", "h2"], quiet: true },
    positionals: ["in.flv", "-", "--x"],
  });
  assert.deepEqual(parseFlags(["--out="], options).values.out, "", "an empty value is a value");
});

Deno.test("parseFlags: mistakes are usage errors naming the flag", () => {
  for (
    const [args, message] of [
      [["--nope"], /unknown option: --nope/],
      [["-h"], /unknown option: -h/],
      [["--toString"], /unknown option: --toString/],
      [["--out"], /--out needs a value/],
      [["--quiet=yes"], /--quiet takes no value/],
      [["in.flv"], /unexpected argument: in.flv/],
      [["--", "x"], /unexpected argument: x/],
    ] as const
  ) {
    assert.throws(() => parseFlags(args, options), { message });
  }
});

Deno.test("parseListen: port, host:port, [v6]:port and off", () => {
  assert.deepEqual(parseListen("1935", "rtmp"), { hostname: "0.0.0.0", port: 1935 });
  assert.deepEqual(parseListen("127.0.0.1:80", "http"), { hostname: "127.0.0.1", port: 80 });
  assert.deepEqual(parseListen("[::1]:8554", "rtsp"), { hostname: "::1", port: 8554 });
  assert.equal(parseListen("off", "srt"), undefined);
  assert.throws(() => parseListen("70000", "srt"), { message: /--srt takes PORT/ });
});
