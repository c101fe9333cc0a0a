/** Helpers shared by the RTSP tests: UDP ports. */

import dgram from "node:dgram";

export { hex, unhex } from "../../_util/bytes.ts";

/** A free even/odd UDP port pair on 127.0.0.1 (bound and released; fine for tests). */
export async function freeUdpPair(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20000 + 2 * Math.floor(Math.random() * 20000);
    const sockets: dgram.Socket[] = [];
    try {
      for (const p of [port, port + 1]) {
        const socket = dgram.createSocket("udp4");
        sockets.push(socket);
        await new Promise<void>((resolve, reject) => {
          socket.once("error", reject);
          socket.bind(p, "127.0.0.1", () => resolve());
        });
      }
      return port;
    } catch {
      // taken: try another
    } finally {
      await Promise.all(sockets.map((s) =>
        new Promise<void>((resolve) => {
          try {
            s.close(() => resolve());
          } catch {
            resolve(); // never bound
          }
        })
      ));
    }
  }
  throw new Error("no free UDP port pair");
}
