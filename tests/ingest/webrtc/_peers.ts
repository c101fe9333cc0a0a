/** A WebRTC server on a free port and werift peers against it, for the WHIP/WHEP tests. */

import assert from "node:assert/strict";
import { RTCPeerConnection, type RtpPacket, useH264 } from "werift";
import { Registry, type StreamHandle } from "../../../mod.ts";
import { serveHttp } from "../../../ingest/http/server.ts";
import { WebRtcServer, type WebRtcServerOptions } from "../../../ingest/webrtc/mod.ts";
import { video, videoConfig } from "../../media/hls/_synthetic.ts";
import { LogLines } from "../../_util/log.ts";

/** A server on a free port with the WebRTC route; `run` gets its base URL. */
export async function withServer(
  options: Partial<WebRtcServerOptions>,
  run: (base: string, registry: Registry, log: LogLines) => Promise<void>,
  registry = new Registry(),
): Promise<void> {
  const log = new LogLines();
  const webrtc = new WebRtcServer({ hosts: ["127.0.0.1"], logger: log, ...options, registry });
  const http = serveHttp({ routes: [webrtc.route], hostname: "127.0.0.1", port: 0 });
  try {
    await run(`http://127.0.0.1:${http.addr.port}`, registry, log);
  } finally {
    await webrtc.close();
    await http.close();
    registry.closeAll();
  }
}

/** POST an SDP offer. */
export function post(url: string, sdp: string): Promise<Response> {
  return fetch(url, { method: "POST", body: sdp, headers: { "content-type": "application/sdp" } });
}

/** A werift peer that offered video, with the session URL its POST got. */
export interface Peer {
  readonly client: RTCPeerConnection;
  /** The session URL (the answer's `Location`), absolute. */
  readonly session: string;
}

/** A werift peer that offers `direction` video, POSTs to `url` and applies the answer. */
export async function connectPeer(
  url: string,
  direction: "sendonly" | "recvonly",
  editOffer: (sdp: string) => string = (sdp) => sdp,
): Promise<RTCPeerConnection> {
  return (await openPeer(url, direction, { editOffer })).client;
}

/** How {@linkcode openPeer} offers. */
export interface PeerOptions {
  /** Change the offer before it is sent. */
  editOffer?: (sdp: string) => string;
  /** Gets every RTP packet the peer receives. */
  onRtp?: (rtp: RtpPacket) => void;
}

/** {@linkcode connectPeer}, with the session URL and the packets it receives. */
export async function openPeer(
  url: string,
  direction: "sendonly" | "recvonly",
  { editOffer = (sdp) => sdp, onRtp }: PeerOptions = {},
): Promise<Peer> {
  const client = new RTCPeerConnection({ iceServers: [], codecs: { video: [useH264()] } });
  const transceiver = client.addTransceiver("video", { direction });
  if (onRtp) transceiver.onTrack.subscribe((track) => void track.onReceiveRtp.subscribe(onRtp));
  await client.setLocalDescription(await client.createOffer());
  const res = await post(url, editOffer(client.localDescription!.sdp));
  const answer = await res.text();
  assert.equal(res.status, 201, answer);
  await client.setRemoteDescription({ type: "answer", sdp: answer });
  return { client, session: new URL(res.headers.get("location")!, url).href };
}

/** Claim `live/cam` with an H.264 config and a keyframe. */
export function liveStream(registry: Registry): StreamHandle {
  const handle = registry.startPublish("live", "cam");
  handle.publish(videoConfig());
  handle.publish(video(0, true));
  return handle;
}
