import assert from "node:assert/strict";
import dgram from "node:dgram";
import {
  openUdpSocket,
  udpAddress,
  type UdpRuntime,
  type UdpSocket,
} from "../../ingest/_udp_socket.ts";
import { waitFor } from "../_util/serve.ts";

/** What one socket received: the first byte of each datagram, and who sent them. */
interface Received {
  readonly firstBytes: number[];
  readonly from: Set<string>;
  readonly errors: Error[];
}

async function receiver(
  runtime: UdpRuntime,
  onDatagram?: (datagram: Uint8Array) => void,
): Promise<{ socket: UdpSocket; got: Received }> {
  const got: Received = { firstBytes: [], from: new Set(), errors: [] };
  const socket = await openUdpSocket({
    hostname: "127.0.0.1",
    port: 0,
    maxQueue: 16,
    runtime,
    onDatagram: (datagram, hostname, port) => {
      got.firstBytes.push(datagram[0]);
      got.from.add(`${hostname}:${port}`);
      onDatagram?.(datagram);
    },
    onError: (error) => got.errors.push(error),
  });
  return { socket, got };
}

function sender(runtime: UdpRuntime, maxQueue: number): Promise<UdpSocket> {
  return openUdpSocket({
    hostname: "127.0.0.1",
    port: 0,
    maxQueue,
    runtime,
    onDatagram: () => {},
    onError: (error) => {
      throw error;
    },
  });
}

/** Resolves once `n` datagrams have arrived. */
function arrived(got: Received, n: number): Promise<true> {
  return waitFor(`${n} datagrams`, () => got.firstBytes.length >= n || undefined, 5000);
}

const count = (n: number) => Array.from({ length: n }, (_, i) => i);

Deno.test("Deno reorders UDP sends in flight together, both APIs: why UdpSocket sends one at a time", async () => {
  // If this fails, the runtime keeps such sends in order now and UdpSendQueue could let
  // several fly at once.
  const { socket: b, got } = await receiver("deno");
  const to = udpAddress("127.0.0.1", b.addr.port);
  const conn = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  await Promise.all(count(16).map((i) => conn.send(new Uint8Array([i]), to)));
  await arrived(got, 16);
  assert.notDeepEqual(got.firstBytes, count(16));
  conn.close();
  got.firstBytes.length = 0;
  const node = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => node.bind(0, "127.0.0.1", resolve));
  for (const i of count(16)) node.send(new Uint8Array([i]), to.port, to.hostname);
  await arrived(got, 16);
  assert.notDeepEqual(got.firstBytes, count(16));
  await new Promise<void>((resolve) => node.close(() => resolve()));
  await b.close();
});

for (const runtime of ["deno", "node"] as const) {
  Deno.test(`${runtime}: sends made in one turn arrive in order, from the socket's address`, async () => {
    const { socket: b, got } = await receiver(runtime);
    const a = await sender(runtime, 1000);
    assert.equal(a.runtime, runtime);
    const to = udpAddress("127.0.0.1", b.addr.port);
    for (const i of count(100)) assert.ok(a.send(new Uint8Array([i, 1, 2, 3]), to));
    await arrived(got, 100);
    assert.deepEqual(got.firstBytes, count(100));
    assert.deepEqual([...got.from], [`127.0.0.1:${a.addr.port}`]);
    await a.close();
    await b.close();
  });

  Deno.test(`${runtime}: a full send queue drops what does not fit; what fits goes in order`, async () => {
    const { socket: b, got } = await receiver(runtime);
    const a = await sender(runtime, 4);
    const to = udpAddress("127.0.0.1", b.addr.port);
    // One in flight, four waiting: the rest is dropped.
    const taken = count(10).map((i) => a.send(new Uint8Array([i]), to));
    assert.deepEqual(taken, [true, true, true, true, true, false, false, false, false, false]);
    await arrived(got, 5);
    assert.deepEqual(got.firstBytes, count(5));
    // Drained, it takes sends again.
    assert.ok(a.send(new Uint8Array([42]), to));
    await arrived(got, 6);
    assert.equal(got.firstBytes[5], 42);
    await a.close();
    await b.close();
  });

  Deno.test(`${runtime}: the socket is backed up while more than a quarter of its queue waits`, async () => {
    const { socket: b, got } = await receiver(runtime);
    const a = await sender(runtime, 8);
    const to = udpAddress("127.0.0.1", b.addr.port);
    const backedUp: boolean[] = [];
    // One in flight, then one to four waiting.
    for (let i = 0; i < 5; i++) {
      a.send(new Uint8Array([i]), to);
      backedUp.push(a.backedUp);
    }
    assert.deepEqual(backedUp, [false, false, false, true, true]);
    await arrived(got, 5);
    assert.equal(a.backedUp, false, "drained");
    await a.close();
    await b.close();
  });

  Deno.test(`${runtime}: close lets what is queued go out first`, async () => {
    const { socket: b, got } = await receiver(runtime);
    const a = await sender(runtime, 100);
    const to = udpAddress("127.0.0.1", b.addr.port);
    for (const i of count(50)) a.send(new Uint8Array([i]), to);
    await a.close(5000);
    assert.ok(a.send(new Uint8Array([99]), to), "a closed socket takes sends and drops them");
    await arrived(got, 50);
    assert.deepEqual(got.firstBytes, count(50));
    await b.close();
  });

  Deno.test(`${runtime}: what the datagram callback throws is reported; receiving goes on`, async () => {
    const { socket: b, got } = await receiver(runtime, (datagram) => {
      if (datagram[0] === 0) throw new Error("handler failed");
    });
    const a = await sender(runtime, 10);
    const to = udpAddress("127.0.0.1", b.addr.port);
    a.send(new Uint8Array([0]), to);
    a.send(new Uint8Array([1]), to);
    await arrived(got, 2);
    assert.deepEqual(got.errors.map((e) => e.message), ["handler failed"]);
    await a.close();
    await b.close();
  });
}

Deno.test("Deno without the net unstable flag falls back to node:dgram", async () => {
  const module = new URL("../../ingest/_udp_socket.ts", import.meta.url).href;
  const script = `
    import { openUdpSocket, udpAddress } from "${module}";
    const got = Promise.withResolvers();
    const open = () => openUdpSocket({
      hostname: "127.0.0.1", port: 0, maxQueue: 4,
      onDatagram: (d) => got.resolve(d[0]), onError: (e) => got.reject(e),
    });
    const [a, b] = [await open(), await open()];
    a.send(new Uint8Array([7]), udpAddress("127.0.0.1", b.addr.port));
    console.log(a.runtime, await got.promise);
    await a.close();
    await b.close();
  `;
  const run = async (flags: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--no-config", ...flags, script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    return new TextDecoder().decode(out.stdout).trim();
  };
  assert.equal(await run([]), "node 7");
  assert.equal(await run(["--unstable-net"]), "deno 7");
});
