/**
 * The UDP send gauge of a WebRTC peer: it counts each send of the sockets under the peer's ICE
 * connections from its start to its callback, says when they have drained, keeps a caller's
 * own callback, and refuses a peer with no socket where werift keeps them.
 */

import assert from "node:assert/strict";
import dgram from "node:dgram";
import type { RTCPeerConnection } from "werift";
import { UdpSendGauge } from "../../../ingest/webrtc/_send_gauge.ts";

/** A peer shaped as werift keeps its sockets, over `sockets`. */
function peerOver(...sockets: unknown[]): RTCPeerConnection {
  const protocols = sockets.map((socket) => ({ transport: { socket } }));
  return { iceTransports: [{ connection: { protocols } }] } as unknown as RTCPeerConnection;
}

async function boundSocket(): Promise<dgram.Socket> {
  const socket = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return socket;
}

async function withSockets(
  run: (sender: dgram.Socket, receiverPort: number) => Promise<void>,
): Promise<void> {
  const [sender, receiver] = [await boundSocket(), await boundSocket()];
  try {
    await run(sender, receiver.address().port);
  } finally {
    await Promise.all([sender, receiver].map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

Deno.test("UdpSendGauge: counts werift's sends until their callback, and settles drained once they are done", async () => {
  await withSockets(async (sender, port) => {
    const gauge = new UdpSendGauge(peerOver(sender));
    const packet = new Uint8Array(1200);
    for (let i = 0; i < 50; i++) sender.send(packet, port, "127.0.0.1");
    assert.equal(gauge.inFlight, 50);
    const drained = gauge.drained(10);
    assert.equal(gauge.drained(10), drained, "one promise for every waiter");
    await drained;
    assert.ok(gauge.inFlight <= 10, `${gauge.inFlight} in flight once drained to 10`);
    await gauge.drained(0);
    assert.equal(gauge.inFlight, 0);
  });
});

Deno.test("UdpSendGauge: a send with the caller's callback is counted and the callback still called", async () => {
  await withSockets(async (sender, port) => {
    const gauge = new UdpSendGauge(peerOver(sender));
    const called = Promise.withResolvers<number>();
    sender.send(new Uint8Array(10), port, "127.0.0.1", () => called.resolve(gauge.inFlight));
    sender.send(new Uint8Array(20), 0, 5, port, "127.0.0.1");
    assert.equal(gauge.inFlight, 2);
    assert.ok(await called.promise <= 1, "counted as sent before the caller's callback");
    await gauge.drained(0);
  });
});

Deno.test("UdpSendGauge: a send that throws is not counted, and drained settles at once when nothing is in flight", async () => {
  const closed = {
    send(..._args: unknown[]): void {
      throw new Error("not running");
    },
  };
  const gauge = new UdpSendGauge(peerOver(closed));
  assert.throws(() => closed.send(new Uint8Array(1), 9, "127.0.0.1"), /not running/);
  assert.equal(gauge.inFlight, 0);
  await gauge.drained(0);
});

Deno.test("UdpSendGauge: a peer with no socket where werift keeps them is refused", () => {
  assert.throws(() => new UdpSendGauge(peerOver()), /no UDP socket/);
  assert.throws(
    () => new UdpSendGauge({} as unknown as RTCPeerConnection),
    /no UDP socket/,
  );
});
