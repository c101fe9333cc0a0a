/** Free loopback ports for servers and child processes that must be told their port. */

/** A free TCP port on 127.0.0.1 (bound and released: free when asked, bind it soon after). */
export function freeTcpPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** A free UDP port on 127.0.0.1 (bound, then released for a child process to take). */
export async function freeUdpPort(): Promise<number> {
  const { default: dgram } = await import("node:dgram");
  const socket = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const port = socket.address().port;
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}
