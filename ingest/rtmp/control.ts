/**
 * Protocol control and user control messages: building them, and reading user
 * control events.
 *
 * @module
 */

import { RtmpError } from "./error.ts";
import { MessageType, type RtmpMessage } from "./message.ts";

/** The chunk stream id reserved for protocol control messages. */
export const CONTROL_CSID = 2;

/**
 * User control event types (the first two bytes of a user control message).
 *
 * @example
 * ```ts
 * import { UserControlEvent } from "@arcly/stream/rtmp";
 *
 * UserControlEvent.PING_REQUEST; // 6
 * ```
 */
export const UserControlEvent = {
  /** A stream became functional; value: the stream id. */
  STREAM_BEGIN: 0,
  /** Playback of a stream ended; value: the stream id. */
  STREAM_EOF: 1,
  /** No more data on a stream for now; value: the stream id. */
  STREAM_DRY: 2,
  /** The client's buffer length; value: the stream id, extra: milliseconds. */
  SET_BUFFER_LENGTH: 3,
  /** The stream is recorded; value: the stream id. */
  STREAM_IS_RECORDED: 4,
  /** The server asks whether the client is alive; value: a timestamp. */
  PING_REQUEST: 6,
  /** The answer to a ping request; value: the request's timestamp. */
  PING_RESPONSE: 7,
} as const;

/** A decoded user control message. */
export interface UserControl {
  /** One of {@linkcode UserControlEvent}. */
  readonly event: number;
  /** The stream id or timestamp the event carries. */
  readonly value: number;
  /** The buffer length of `SET_BUFFER_LENGTH`, else 0. */
  readonly extra: number;
}

function control(typeId: number, payload: Uint8Array): RtmpMessage {
  return { csid: CONTROL_CSID, typeId, streamId: 0, timestamp: 0, payload };
}

function uint32s(...values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setUint32(i * 4, v >>> 0));
  return out;
}

/**
 * A Set Chunk Size message.
 *
 * @example
 * ```ts
 * import { setChunkSizeMessage } from "@arcly/stream/rtmp";
 *
 * setChunkSizeMessage(4096).payload; // [0, 0, 0x10, 0]
 * ```
 */
export function setChunkSizeMessage(size: number): RtmpMessage {
  return control(MessageType.SET_CHUNK_SIZE, uint32s(size));
}

/**
 * An Acknowledgement message reporting `bytes` received (modulo 2^32).
 *
 * @example
 * ```ts
 * import { acknowledgementMessage } from "@arcly/stream/rtmp";
 *
 * acknowledgementMessage(2_500_000).typeId; // 3
 * ```
 */
export function acknowledgementMessage(bytes: number): RtmpMessage {
  return control(MessageType.ACKNOWLEDGEMENT, uint32s(bytes % 0x1_0000_0000));
}

/**
 * A Window Acknowledgement Size message.
 *
 * @example
 * ```ts
 * import { windowAckSizeMessage } from "@arcly/stream/rtmp";
 *
 * windowAckSizeMessage(2_500_000).typeId; // 5
 * ```
 */
export function windowAckSizeMessage(size: number): RtmpMessage {
  return control(MessageType.WINDOW_ACK_SIZE, uint32s(size));
}

/**
 * A Set Peer Bandwidth message; `limitType` 0 hard, 1 soft, 2 dynamic.
 *
 * @example
 * ```ts
 * import { setPeerBandwidthMessage } from "@arcly/stream/rtmp";
 *
 * setPeerBandwidthMessage(2_500_000, 2).payload.length; // 5
 * ```
 */
export function setPeerBandwidthMessage(size: number, limitType: 0 | 1 | 2): RtmpMessage {
  const payload = new Uint8Array(5);
  payload.set(uint32s(size));
  payload[4] = limitType;
  return control(MessageType.SET_PEER_BANDWIDTH, payload);
}

/**
 * A user control message; `extra` is only written for `SET_BUFFER_LENGTH`.
 *
 * @example
 * ```ts
 * import { UserControlEvent, userControlMessage } from "@arcly/stream/rtmp";
 *
 * userControlMessage(UserControlEvent.STREAM_BEGIN, 1).payload; // [0, 0, 0, 0, 0, 1]
 * ```
 */
export function userControlMessage(event: number, value: number, extra = 0): RtmpMessage {
  const values = event === UserControlEvent.SET_BUFFER_LENGTH
    ? uint32s(value, extra)
    : uint32s(value);
  const payload = new Uint8Array(2 + values.length);
  payload[0] = event >> 8;
  payload[1] = event & 0xff;
  payload.set(values, 2);
  return control(MessageType.USER_CONTROL, payload);
}

/**
 * Decode a user control message body.
 *
 * @example
 * ```ts
 * import { parseUserControl } from "@arcly/stream/rtmp";
 *
 * parseUserControl(new Uint8Array([0, 6, 0, 0, 0, 42])); // { event: 6, value: 42, extra: 0 }
 * ```
 */
export function parseUserControl(payload: Uint8Array): UserControl {
  if (payload.length < 6) throw new RtmpError(`user control message too short (${payload.length})`);
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const event = view.getUint16(0);
  const value = view.getUint32(2);
  const extra = event === UserControlEvent.SET_BUFFER_LENGTH && payload.length >= 10
    ? view.getUint32(6)
    : 0;
  return { event, value, extra };
}
