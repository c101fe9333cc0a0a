/**
 * Connections reset before the server accepts them, as a port scan makes them: connect,
 * then close with SO_LINGER 0 so the kernel sends RST. A server's accept() then fails
 * for that connection (ENOTCONN, os error 107, when it reads the peer's address).
 * Deno cannot set SO_LINGER, so python3 does it.
 */

const SCRIPT = `
import socket, struct, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
for _ in range(count):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.connect(("127.0.0.1", port))
    s.close()
`;

/** Make `count` connect+RST connections to `127.0.0.1:port`, one after another. */
export async function resetBurst(port: number, count: number): Promise<void> {
  const { code, stderr } = await new Deno.Command("python3", {
    args: ["-c", SCRIPT, String(port), String(count)],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) throw new Error(`reset burst failed: ${new TextDecoder().decode(stderr)}`);
}
