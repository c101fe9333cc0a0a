import assert from "node:assert/strict";
import { HANDSHAKE_SIZE, RtmpError, serverHandshake } from "../../../ingest/rtmp/mod.ts";
import { concat } from "../../_util/bytes.ts";
import { hex } from "../../_util/bytes.ts";

// An independent HMAC (WebCrypto) so the test does not check the code with itself.
async function hmac(key: Uint8Array, ...parts: Uint8Array[]): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey(
    "raw",
    key.slice(),
    { name: "HMAC", hash: "SHA-256" },
    false,
    [
      "sign",
    ],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, concat(parts)));
}

const tail = [
  0xf0,
  0xee,
  0xc2,
  0x4a,
  0x80,
  0x68,
  0xbe,
  0xe8,
  0x2e,
  0x00,
  0xd0,
  0xd1,
  0x02,
  0x9e,
  0x7e,
  0x57,
  0x6e,
  0xec,
  0x5d,
  0x2d,
  0x29,
  0x80,
  0x6f,
  0xab,
  0x93,
  0xb8,
  0xe6,
  0x36,
  0xcf,
  0xeb,
  0x31,
  0xae,
];
const text = new TextEncoder();
const playerKey = text.encode("Genuine Adobe Flash Player 001");
const serverKey = new Uint8Array([...text.encode("Genuine Adobe Flash Media Server 001"), ...tail]);

/** Digest position for the block at `block` (offset field sum mod 728). */
function position(p: Uint8Array, block: number): number {
  return block + 4 + (p[block] + p[block + 1] + p[block + 2] + p[block + 3]) % 728;
}

function pattern(seed: number): (buf: Uint8Array) => void {
  return (buf) => buf.forEach((_, i) => (buf[i] = (i * 31 + seed) & 0xff));
}

function c0c1(fill: number): Uint8Array {
  const c = new Uint8Array(1 + HANDSHAKE_SIZE);
  c[0] = 3;
  for (let i = 1; i < c.length; i++) c[i] = (i * 7 + fill) & 0xff;
  return c;
}

Deno.test("simple handshake: S1 has a zero time and version, S2 echoes C1", () => {
  const c = c0c1(1);
  c.fill(0, 5, 9); // client version 0: no digest
  const out = serverHandshake(c, { random: pattern(5) });
  assert.equal(out.length, 1 + 2 * HANDSHAKE_SIZE);
  assert.equal(out[0], 3);
  const s1 = out.subarray(1, 1 + HANDSHAKE_SIZE);
  assert.equal(hex(s1.subarray(0, 12)), "0000000000000000" + "fd1c3b5a"); // zeros, then (8 * 31 + 5) & 0xff...
  assert.deepEqual(out.subarray(1 + HANDSHAKE_SIZE), c.subarray(1));
});

for (const block of [8, 772]) {
  Deno.test(`digest handshake (digest block at ${block}): S1 and S2 verify with the server key`, async () => {
    const c = c0c1(block);
    const c1 = c.subarray(1);
    c1.set([9, 0, 124, 2], 4);
    const at = position(c1, block);
    c1.set(await hmac(playerKey, c1.subarray(0, at), c1.subarray(at + 32)), at);

    const out = serverHandshake(c, { random: pattern(block) });
    const s1 = out.subarray(1, 1 + HANDSHAKE_SIZE);
    const s2 = out.subarray(1 + HANDSHAKE_SIZE);
    assert.ok(s1[4] >= 3, "S1 announces a server version so clients validate its digest");
    const sAt = position(s1, block);
    const expected = await hmac(
      serverKey.subarray(0, 36),
      s1.subarray(0, sAt),
      s1.subarray(sAt + 32),
    );
    assert.equal(hex(s1.subarray(sAt, sAt + 32)), hex(expected));

    const key = await hmac(serverKey, c1.subarray(at, at + 32));
    const signature = await hmac(key, s2.subarray(0, HANDSHAKE_SIZE - 32));
    assert.equal(hex(s2.subarray(HANDSHAKE_SIZE - 32)), hex(signature));
  });
}

Deno.test("a C1 with a wrong digest gets the simple handshake", () => {
  const c = c0c1(3);
  c.set([9, 0, 124, 2], 5);
  const out = serverHandshake(c, { random: pattern(1) });
  assert.deepEqual(out.subarray(5, 9), new Uint8Array(4));
  assert.deepEqual(out.subarray(1 + HANDSHAKE_SIZE), c.subarray(1));
});

Deno.test("handshake rejects other versions and wrong sizes", () => {
  const rtmpe = c0c1(0);
  rtmpe[0] = 6;
  assert.throws(
    () => serverHandshake(rtmpe),
    (e) => e instanceof RtmpError && /RTMPE/.test(e.message),
  );
  const v9 = c0c1(0);
  v9[0] = 9;
  assert.throws(() => serverHandshake(v9), /unsupported RTMP version 9/);
  assert.throws(() => serverHandshake(new Uint8Array(10)), RangeError);
});
