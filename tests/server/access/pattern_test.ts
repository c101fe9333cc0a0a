import assert from "node:assert/strict";
import { compilePathPattern } from "../../../server/access/mod.ts";
import { prng, randomText } from "../../_util/fuzz.ts";

Deno.test("globs: * within a segment, ** across, the rest literal", () => {
  const cases: [string, string, boolean][] = [
    ["live/*", "live/cam", true],
    ["live/*", "live/", true],
    ["live/*", "other/cam", false],
    ["live/*", "live/a/b", false],
    ["live/**", "live/a/b", true],
    ["*/cam", "live/cam", true],
    ["live/cam?", "live/cam?", true],
    ["live/cam?", "live/cam1", false],
    ["live/cam.1", "live/cam.1", true],
    ["live/cam.1", "live/camx1", false],
    ["live/(a)", "live/(a)", true],
    ["", "anything/at-all", true],
    ["**", "", true],
    ["live/cam", "live/cam", true],
    ["live/cam", "live/cam2", false],
  ];
  for (const [pattern, path, expected] of cases) {
    assert.equal(compilePathPattern(pattern)(path), expected, `${pattern} ${path}`);
  }
});

Deno.test("~regex is unanchored unless it anchors itself; a broken one is a SyntaxError", () => {
  assert.equal(compilePathPattern("~^live/cam[0-9]+$")("live/cam12"), true);
  assert.equal(compilePathPattern("~^live/cam[0-9]+$")("live/cam12x"), false);
  assert.equal(compilePathPattern("~live/cam[0-9]+")("live/cam12x"), true);
  assert.equal(compilePathPattern("~^live/(a|b)$")("live/b"), true);
  assert.equal(compilePathPattern("~cam")("live/cam"), true);
  assert.equal(compilePathPattern("~^cam")("live/cam"), false);
  assert.throws(() => compilePathPattern("~live/(["), SyntaxError);
});

Deno.test("fuzz: glob patterns compile and match their own literal text", () => {
  const rand = prng(0x9a7);
  const alphabet = "live/cam*?.+()[]{}^$|\\-_~";
  for (let i = 0; i < 2000; i++) {
    const pattern = randomText(rand, alphabet, 15);
    if (pattern.startsWith("~")) continue;
    const match = compilePathPattern(pattern);
    const literal = pattern.replaceAll("*", "");
    assert.ok(match(literal), pattern);
  }
});
