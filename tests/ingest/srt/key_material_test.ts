import assert from "node:assert/strict";
import {
  encodeKeyMaterial,
  KeyIndex,
  parseKeyMaterial,
  RejectReason,
  SrtError,
} from "../../../ingest/srt/mod.ts";
import { keyIndex, SrtCrypto } from "../../../ingest/srt/_crypto.ts";
import { flipBit, prng, randomBytes } from "../../_util/fuzz.ts";
import { hex, unhex } from "../../_util/bytes.ts";
import { dataPacket } from "./_engine.ts";

/** srt-live-transmit 1.5.1's KMREQ for `passphrase=0123456789abcdef`, AES-128 and AES-256. */
const SLT_KM_16 = unhex(
  "12202901000000000200020000000404017bc6b4c155d77ebcc11dd7bdcd2368" +
    "80738175b11f4882f9a5747aa653e0c2104ac828ecc1d4aa",
);
const SLT_KM_32 = unhex(
  "122029010000000002000200000004083ec8e6bd6f4301b965c6e3d6bfa3b382" +
    "992f50caa997a7a0117e48e4d24b5831f5fbf793fd76f2624ce6a4558a2619de" +
    "f586e5b4f6ecaa6d",
);
const PASSPHRASE = "0123456789abcdef";

Deno.test("key material: libsrt's messages parse and encode back byte for byte", () => {
  for (const [bytes, length] of [[SLT_KM_16, 16], [SLT_KM_32, 32]] as const) {
    const km = parseKeyMaterial(bytes);
    assert.equal(km.keys, KeyIndex.EVEN, "the first key is the even one");
    assert.equal(km.keyLength, length);
    assert.equal(km.salt.length, 16);
    assert.equal(km.wrapped.length, 8 + length);
    assert.equal(hex(encodeKeyMaterial(km)), hex(bytes));
  }
});

Deno.test("key material: libsrt's keys unwrap with its passphrase, not with another", async () => {
  for (const bytes of [SLT_KM_16, SLT_KM_32]) {
    const session = await SrtCrypto.open(PASSPHRASE, parseKeyMaterial(bytes));
    assert.ok(session.has(KeyIndex.EVEN));
    assert.ok(!session.has(KeyIndex.ODD));
    await assert.rejects(
      SrtCrypto.open("0123456789abcdeF", parseKeyMaterial(bytes)),
      (e) => e instanceof SrtError && e.reason === RejectReason.BADSECRET,
    );
  }
});

Deno.test("key material: malformed messages are refused as ROGUE", () => {
  const bad: [string, (b: Uint8Array) => void][] = [
    ["version", (b) => (b[0] = 0x22)],
    ["signature", (b) => (b[2] = 0x28)],
    ["no key", (b) => (b[3] = 0)],
    ["cipher", (b) => (b[8] = 1)],
    ["authentication", (b) => (b[9] = 1)],
    ["salt length", (b) => (b[14] = 2)],
    ["key length", (b) => (b[15] = 5)],
    ["two keys announced, one carried", (b) => (b[3] = 3)],
  ];
  for (const [what, damage] of bad) {
    const bytes = SLT_KM_16.slice();
    damage(bytes);
    assert.throws(
      () => parseKeyMaterial(bytes),
      (e) => e instanceof SrtError && e.reason === RejectReason.ROGUE,
      what,
    );
  }
  assert.throws(() => parseKeyMaterial(SLT_KM_16.subarray(0, 40)), SrtError, "truncated");
});

Deno.test("fuzz: parseKeyMaterial returns or throws SrtError", () => {
  const rand = prng(0x2029);
  const inputs: Uint8Array[] = [];
  for (const seed of [SLT_KM_16, SLT_KM_32]) {
    for (let bit = 0; bit < seed.length * 8; bit++) inputs.push(flipBit(seed, bit));
    for (let n = 0; n <= seed.length + 8; n++) {
      const out = new Uint8Array(n);
      out.set(seed.subarray(0, Math.min(n, seed.length)));
      inputs.push(out);
    }
    for (let i = 0; i < 300; i++) {
      const out = randomBytes(rand, 16 + Math.floor(rand() * 80));
      out.set(seed.subarray(0, 16));
      inputs.push(out);
    }
  }
  for (let i = 0; i < 500; i++) inputs.push(randomBytes(rand, Math.floor(rand() * 100)));
  let parsed = 0;
  for (const input of inputs) {
    try {
      const km = parseKeyMaterial(input);
      assert.ok([1, 2, 3].includes(km.keys) && [16, 24, 32].includes(km.keyLength));
      parsed++;
    } catch (error) {
      assert.ok(error instanceof SrtError, `${hex(input)}: ${error}`);
    }
  }
  assert.ok(parsed > 50, `only ${parsed} inputs parsed`);
});

Deno.test("a session: packets round trip per key; a refresh announces both keys; no key changes in use", async () => {
  for (const keyLength of [16, 24, 32]) {
    const caller = await SrtCrypto.create(PASSPHRASE, keyLength);
    const listener = await SrtCrypto.open(PASSPHRASE, parseKeyMaterial(caller.km));
    const clear = dataPacket(0x12345678, 1000, randomBytes(prng(keyLength), 1316).slice());
    const sealed = await caller.session.encrypt(clear, KeyIndex.EVEN);
    assert.equal(keyIndex(sealed), KeyIndex.EVEN);
    assert.deepEqual(sealed.subarray(0, 4), clear.subarray(0, 4), "the header stays clear");
    assert.notDeepEqual(sealed.subarray(16), clear.subarray(16));
    assert.deepEqual(await listener.decrypt(sealed), clear);
    const odd = sealed.slice();
    odd[4] = (odd[4] & ~0x18) | (KeyIndex.ODD << 3);
    assert.equal(keyIndex(odd), KeyIndex.ODD);
    assert.equal(listener.decrypt(odd), undefined, "no odd key yet");

    const both = parseKeyMaterial(await caller.session.refresh(KeyIndex.ODD));
    assert.equal(both.keys, KeyIndex.EVEN | KeyIndex.ODD);
    await listener.install(both, KeyIndex.EVEN);
    assert.deepEqual(
      await listener.decrypt(await caller.session.encrypt(clear, KeyIndex.ODD)),
      clear,
    );
    assert.deepEqual(await listener.decrypt(sealed), clear, "the even key is kept");

    // Another caller's message with the same passphrase and salt would change the key in use.
    const other = await SrtCrypto.create(PASSPHRASE, keyLength);
    await assert.rejects(listener.install(parseKeyMaterial(other.km), KeyIndex.EVEN), SrtError);
  }
});
