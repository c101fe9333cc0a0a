import assert from "node:assert/strict";
import { HandshakeWatch } from "../../ingest/_tls_relay.ts";
import { fuzzParser } from "../_util/fuzz.ts";
import { concat } from "../_util/bytes.ts";

/** A TLS record: type, version 3.3, length, body. */
function record(type: number, body: number): Uint8Array {
  const out = new Uint8Array(5 + body);
  out.set([type, 3, 3, body >> 8, body & 0xff]);
  return out.fill(type, 5);
}

// A TLS 1.3 client: ClientHello (handshake, 22), ChangeCipherSpec (20), then its Finished in
// an application-data record (23).
const hello = record(22, 512);
const client = concat([hello, record(20, 1), record(23, 53)]);

Deno.test("handshake watch: done at the first application-data record, however the bytes are split", () => {
  const at = hello.length + 6 + 5; // just after the application-data record's header
  for (let split = 0; split <= client.length; split++) {
    const watch = new HandshakeWatch();
    assert.equal(watch.push(client.subarray(0, split)), split >= at, `split at ${split}`);
    watch.push(client.subarray(split));
    assert.equal(watch.done, true);
  }
  const byteByByte = new HandshakeWatch();
  for (let i = 0; i < at - 1; i++) {
    assert.equal(byteByByte.push(client.subarray(i, i + 1)), false);
  }
  assert.equal(byteByByte.push(client.subarray(at - 1, at)), true);
  // Application data bytes inside another record's body do not count.
  assert.equal(new HandshakeWatch().push(record(22, 100).fill(23, 5)), false);
});

Deno.test("handshake watch fuzz: any bytes only ever return", () => {
  fuzzParser("handshake watch", (data) => new HandshakeWatch().push(data), client);
});
