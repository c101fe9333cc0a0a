import assert from "node:assert/strict";
import { DirectoryStorage, MemoryStorage } from "../../../media/hls/mod.ts";
import { concat, firstDifference } from "../../_util/bytes.ts";

Deno.test("MemoryStorage keeps copies, replaces, counts and deletes files", async () => {
  const s = new MemoryStorage();
  await s.write("a.ts", new Uint8Array(10));
  await s.write("b.ts", new Uint8Array(5));
  await s.write("a.ts", new Uint8Array(3));
  assert.deepEqual(s.names().sort(), ["a.ts", "b.ts"]);
  assert.equal(s.bytes, 8);
  assert.equal(s.read("a.ts")?.byteLength, 3);
  await s.delete("a.ts");
  await s.delete("missing.ts");
  assert.equal(s.read("a.ts"), undefined);
  assert.equal(s.bytes, 5);
  await s.write("c.ts", [new Uint8Array([1, 2]), new Uint8Array(0), new Uint8Array([3])]);
  assert.deepEqual(s.read("c.ts"), new Uint8Array([1, 2, 3]), "chunks are joined");
  assert.equal(s.bytes, 8);
  const lent = [new Uint8Array([7, 7]), new Uint8Array([8])];
  await s.write("d.ts", lent[0]);
  await s.write("e.ts", [lent[1]]);
  lent.forEach((b) => b.fill(0)); // the packager reuses memory once a write is done
  assert.deepEqual([s.read("d.ts"), s.read("e.ts")], [new Uint8Array([7, 7]), new Uint8Array([8])]);
});

for (const sync of [false, true]) {
  Deno.test(`DirectoryStorage${sync ? " (sync)" : ""} writes whole files into a new directory and deletes them`, async () => {
    const root = await Deno.makeTempDir();
    try {
      const s = new DirectoryStorage(`${root}/out/hls`, { sync });
      await s.write("index.m3u8", new TextEncoder().encode("#EXTM3U\n"));
      await s.write("index.m3u8", new TextEncoder().encode("#EXTM3U\n#EXT-X-ENDLIST\n"));
      await s.write("seg0.ts", new Uint8Array([9]));
      const big = new Uint8Array(300_000).map((_, i) => i * 7);
      await s.write("seg0.ts", [new Uint8Array([1, 2, 3]), big.subarray(0, 0), big]);
      assert.equal(
        await Deno.readTextFile(`${root}/out/hls/index.m3u8`),
        "#EXTM3U\n#EXT-X-ENDLIST\n",
      );
      const seg = await Deno.readFile(`${root}/out/hls/seg0.ts`);
      assert.deepEqual(seg.subarray(0, 3), new Uint8Array([1, 2, 3]));
      assert.deepEqual(seg.subarray(3), big, "chunks written back to back, replacing the old file");
      const names = [];
      for await (const e of Deno.readDir(`${root}/out/hls`)) names.push(e.name);
      assert.deepEqual(names.sort(), ["index.m3u8", "seg0.ts"], "no temporary files left");
      await s.delete("seg0.ts");
      await s.delete("seg0.ts");
      await assert.rejects(() => Deno.stat(`${root}/out/hls/seg0.ts`), Deno.errors.NotFound);
      for (const bad of ["../x.ts", "a/b.ts", ".hidden", ""]) {
        await assert.rejects(() => s.write(bad, new Uint8Array(1)), TypeError);
      }
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  });

  Deno.test(`DirectoryStorage${sync ? " (sync)" : ""} writes many small chunks and large ones in order, two files at once`, async () => {
    const root = await Deno.makeTempDir();
    try {
      const s = new DirectoryStorage(root, { sync });
      // Like an fMP4 segment: small samples (gathered before writing) between large ones
      // (written as they are, after what was gathered before them), then a long run of small
      // ones (gathered several times over), then a large one.
      const file = (seed: number) =>
        Array.from({ length: 700 }, (_, i) => {
          const large = (i < 300 && i % 10 === 9) || i === 699;
          const size = large ? 70_000 + i : 400 + (i * 37) % 3000;
          return new Uint8Array(size).fill((seed + i) & 0xff);
        });
      const [a, b] = [file(1), file(2)];
      await Promise.all([s.write("a.m4s", a), s.write("b.m4s", b)]);
      for (const [name, chunks] of [["a.m4s", a], ["b.m4s", b]] as const) {
        const got = await Deno.readFile(`${root}/${name}`);
        assert.equal(firstDifference(got, concat(chunks)), -1, name);
      }
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  });
}
