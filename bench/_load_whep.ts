/**
 * The WHEP load player of `bench/load.ts`: N werift viewers of one stream, joined at a given
 * rate, counting the video frames and bytes each receives. It speaks to `load.ts` as
 * `_load_player.c` does: "window\n" when the measurement window opens, one JSON line when it
 * closes (players asked for, joined, per-player video frames in the window, bytes in the
 * window, join times from the offer to the first video frame, its own CPU time).
 *
 *   deno run -A bench/_load_whep.ts HOST PORT APP STREAM PLAYERS RAMP_PER_S WARMUP_S WINDOW_S
 *
 * A viewer does ICE, DTLS and the SRTP key exchange with werift, then reads its packets'
 * RTP headers, which SRTP leaves in clear: a marker bit ends a frame. It decrypts nothing,
 * so that one core of viewers outlasts one core of server (werift would otherwise spend on
 * each packet what the server spends encrypting it).
 *
 * @module
 */

import process from "node:process";
import { RTCPeerConnection, SrtpAuthenticationError, useH264 } from "werift";

const [host, port, app, stream, playersArg, rampArg, warmupArg, windowArg] = Deno.args;
const PLAYERS = Number(playersArg);
const RAMP = Number(rampArg);
const WARMUP_MS = Number(warmupArg) * 1000;
const WINDOW_MS = Number(windowArg) * 1000;
/** How long a viewer may take from its offer to its first frame. */
const JOIN_TIMEOUT_MS = 20_000;

/** One viewer's counts. */
interface Viewer {
  pc?: RTCPeerConnection;
  startedMs: number;
  joinedMs: number;
  frames: number;
  bytes: number;
  windowFrames: number;
  windowBytes: number;
}

const url = `http://${host}:${port}/${app}/${stream}/whep`;
const notDecrypted = new SrtpAuthenticationError("not decrypted by the load player");

/** Join one viewer: offer, answer, then count what arrives until the end. */
async function join(viewer: Viewer): Promise<void> {
  const pc = new RTCPeerConnection({ iceServers: [], codecs: { video: [useH264()] } });
  viewer.pc = pc;
  pc.addTransceiver("video", { direction: "recvonly" });
  await pc.setLocalDescription(await pc.createOffer());
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/sdp" },
    body: pc.localDescription!.sdp,
    signal: AbortSignal.timeout(JOIN_TIMEOUT_MS),
  });
  const answer = await res.text();
  if (res.status !== 201) throw new Error(`${res.status} ${answer.trim()}`);
  await pc.setRemoteDescription({ type: "answer", sdp: answer });
  await pc.connectionStateChange.watch((state) => state === "connected", JOIN_TIMEOUT_MS);
  for (const transport of pc.dtlsTransports) {
    transport.srtp.decrypt = () => {
      throw notDecrypted; // dropped by werift as a packet that does not verify
    };
    transport.iceTransport.connection.onData.subscribe((data: Uint8Array) => {
      // RTP, not RTCP (payload types 64 to 95 with the marker bit are RTCP's 192 to 223).
      if (data.length < 12 || data[0] >> 6 !== 2 || (data[1] >= 192 && data[1] <= 223)) return;
      viewer.bytes += data.length;
      if (data[1] & 0x80) {
        if (viewer.frames++ === 0) viewer.joinedMs = performance.now();
      }
    });
  }
}

const viewers: Viewer[] = [];
const joins: Promise<void>[] = [];
const started = performance.now();
for (let i = 0; i < PLAYERS; i++) {
  const due = started + (i * 1000) / RAMP;
  const wait = due - performance.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  const viewer: Viewer = {
    startedMs: performance.now(),
    joinedMs: -1,
    frames: 0,
    bytes: 0,
    windowFrames: 0,
    windowBytes: 0,
  };
  viewers.push(viewer);
  joins.push(
    join(viewer).catch((error) =>
      console.error(`viewer ${i}: ${error?.message ?? "no connection in time"}`)
    ),
  );
}
await Promise.race([
  Promise.all(joins),
  new Promise((resolve) => setTimeout(resolve, JOIN_TIMEOUT_MS)),
]);
await new Promise((resolve) => setTimeout(resolve, WARMUP_MS));
for (const viewer of viewers) {
  viewer.windowFrames = viewer.frames;
  viewer.windowBytes = viewer.bytes;
}
const windowAt = performance.now();
console.log("window");
await new Promise((resolve) => setTimeout(resolve, WINDOW_MS));
const windowMs = performance.now() - windowAt;
const frames = viewers.map((v) => v.frames - v.windowFrames).sort((a, b) => a - b);
const windowBytes = viewers.reduce((sum, v) => sum + v.bytes - v.windowBytes, 0);
const joinMs = viewers.filter((v) => v.joinedMs >= 0).map((v) => v.joinedMs - v.startedMs)
  .sort((a, b) => a - b);
const { user, system } = process.cpuUsage();
console.log(JSON.stringify({
  players: PLAYERS,
  joined: joinMs.length,
  windowMs: Math.round(windowMs),
  windowBytes,
  cpuMs: Math.round((user + system) / 1000),
  frames,
  joinMs: joinMs.map((ms) => Math.round(ms * 10) / 10),
}));
await Promise.all(viewers.map((v) => v.pc?.close().catch(() => {})));
Deno.exit(0);
