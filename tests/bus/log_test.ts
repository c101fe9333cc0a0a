import assert from "node:assert/strict";
import { escapeForLog, isValidName, lineSafeLogger, PublishError, Registry } from "../../mod.ts";
import { LogLines } from "../_util/log.ts";

/** Every character a peer could use to break or disguise a line. */
const UNSAFE = [
  ...Array.from({ length: 0x20 }, (_, i) => String.fromCharCode(i)),
  "\x7f",
  ...Array.from({ length: 0x20 }, (_, i) => String.fromCharCode(0x80 + i)),
  "\u2028",
  "\u2029",
  "\u202e",
  "\u2066",
];

Deno.test("escapeForLog: every control, line separator and bidi control becomes a visible escape", () => {
  assert.equal(
    escapeForLog("cam\n2026-01-01 INFO publish live/x\x00\x1b[2J\r\t\\"),
    "cam\\n2026-01-01 INFO publish live/x\\x00\\x1b[2J\\r\\t\\\\",
  );
  assert.equal(escapeForLog("a\u2028b\u202ec\x85"), "a\\u2028b\\u202ec\\x85");
  for (const char of UNSAFE) {
    const escaped = escapeForLog(`x${char}y`);
    assert.match(escaped, /^x\\[a-z0-9]+y$/, JSON.stringify(char));
  }
  // Injective: different inputs never escape to the same text.
  const inputs = ["\n", "\\n", "\\\n", "\x0a", "\\x0a", "é", "日本", "a b"];
  const outputs = new Set(inputs.map(escapeForLog));
  assert.equal(outputs.size, new Set(inputs).size);
  assert.equal(escapeForLog("é 日本 cam-1.~_"), "é 日本 cam-1.~_");
});

Deno.test("lineSafeLogger: one message is one line whatever the call site forgot", () => {
  const log = new LogLines();
  const logger = lineSafeLogger(log);
  logger.info("publish live/a\nINFO publish live/forged");
  logger.warn(`bad \x00 name ${escapeForLog("already\nescaped")}`);
  logger.error("\u2028\x1b]0;title\x07");
  assert.deepEqual(log.lines, [
    "info publish live/a\\nINFO publish live/forged",
    "warn bad \\x00 name already\\nescaped",
    "error \\u2028\\x1b]0;title\\x07",
  ]);
});

Deno.test("Registry: names that are empty or have control characters are refused with bad-name", () => {
  assert.ok(isValidName("cam-1 é"));
  for (const name of ["", "a\nb", "a\x00", "\x1b[31m", "a\u2028b", "a\x7f"]) {
    assert.equal(isValidName(name), false, JSON.stringify(name));
    const registry = new Registry();
    assert.throws(
      () => registry.startPublish("live", name),
      (error) => {
        assert.ok(error instanceof PublishError);
        assert.equal(error.code, "bad-name");
        assert.doesNotMatch(error.message, /[\p{Cc}\u2028]/u);
        return true;
      },
    );
    assert.equal(registry.list().length, 0);
    assert.equal(registry.get("live", name), undefined);
  }
  // The message shows the key escaped, so it can be logged or sent back as it is.
  const registry = new Registry();
  const error = (() => {
    try {
      registry.startPublish("live", "x\ny");
    } catch (e) {
      return e as PublishError;
    }
  })();
  assert.match(error!.message, /live\/x\\ny/);
});
