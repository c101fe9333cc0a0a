/** werift peer connections set up the way WHIP and WHEP sessions need them. */

import {
  RTCPeerConnection,
  type RTCRtpCodecParameters,
  useFIR,
  useH264,
  useNACK,
  useOPUS,
  usePLI,
  useSdesMid,
  useTransportWideCC,
} from "werift";
import { WebRtcError } from "./error.ts";

/** Where sessions listen and what they announce. */
export interface PeerNetwork {
  /** Host candidate addresses put in every answer. */
  readonly hosts: readonly string[];
  /** UDP ports for sessions, inclusive; each session binds one port per host. */
  readonly portRange?: readonly [number, number];
}

/** What one session negotiates. */
export interface PeerPlan {
  /** `"recvonly"` for WHIP (we receive), `"sendonly"` for WHEP. */
  readonly direction: "recvonly" | "sendonly";
  /** Accept H.264 video. */
  readonly video: boolean;
  /** Accept Opus audio; without it an audio section is rejected (port 0). */
  readonly audio: boolean;
}

/** A negotiated peer connection and its SDP answer. */
export interface NegotiatedPeer {
  readonly pc: RTCPeerConnection;
  readonly answer: string;
}

/**
 * Make a peer for `offer` and answer it: ICE-lite with host candidates only (no STUN, no
 * TURN, gathering finishes at once), DTLS server role so a retransmitted handshake flight
 * from the browser cannot split the SRTP keys, and only the codecs in `plan`.
 */
export async function answerOffer(
  offer: string,
  network: PeerNetwork,
  plan: PeerPlan,
  timeoutMs: number,
): Promise<NegotiatedPeer> {
  const video: RTCRtpCodecParameters[] = plan.video
    ? [useH264({
      rtcpFeedback: plan.direction === "recvonly"
        ? [useNACK(), usePLI(), useFIR(), { type: "transport-cc" }]
        : [useNACK(), usePLI(), useFIR()],
    })]
    : [];
  const pc = new RTCPeerConnection({
    iceLite: true,
    iceServers: [],
    iceUseIpv4: false, // the host list below is the whole list
    iceUseIpv6: false,
    iceAdditionalHostAddresses: [...network.hosts],
    icePortRange: network.portRange ? [network.portRange[0], network.portRange[1]] : undefined,
    bundlePolicy: "max-bundle",
    codecs: { video, audio: plan.audio ? [useOPUS()] : [] },
    headerExtensions: {
      video: plan.direction === "recvonly" ? [useSdesMid(), useTransportWideCC()] : [useSdesMid()],
      audio: [useSdesMid()],
    },
  });
  try {
    await pc.setRemoteDescription({ type: "offer", sdp: offer });
    for (const transceiver of pc.getTransceivers()) transceiver.setDirection(plan.direction);
    for (const transport of pc.dtlsTransports) transport.role = "server";
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc, timeoutMs);
    const answer = pc.localDescription?.sdp;
    if (!answer) throw new Error("werift made no answer");
    return { pc, answer };
  } catch (error) {
    await pc.close().catch(() => {});
    if (error instanceof WebRtcError) throw error;
    throw new WebRtcError(400, `cannot answer the offer: ${messageOf(error)}`);
  }
}

function gathered(pc: RTCPeerConnection, timeoutMs: number): Promise<void> {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new WebRtcError(503, `no UDP port for ICE within ${timeoutMs} ms`));
    }, timeoutMs);
    const { unSubscribe: unsubscribe } = pc.iceGatheringStateChange.subscribe((state) => {
      if (state !== "complete") return;
      clearTimeout(timer);
      unsubscribe();
      resolve();
    });
  });
}

/** The message of an error, or the value as text. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
