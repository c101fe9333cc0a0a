/**
 * RTMP messages: the unit the chunk stream carries, and the message type ids.
 *
 * @module
 */

/**
 * RTMP message type ids.
 *
 * @example
 * ```ts
 * import { MessageType } from "@arcly/stream/rtmp";
 *
 * MessageType.VIDEO; // 9
 * ```
 */
export const MessageType = {
  /** Protocol control: the sender's new maximum chunk size. */
  SET_CHUNK_SIZE: 1,
  /** Protocol control: discard the partly received message on a chunk stream. */
  ABORT: 2,
  /** Protocol control: bytes received so far. */
  ACKNOWLEDGEMENT: 3,
  /** User control events (stream begin, ping, ...). */
  USER_CONTROL: 4,
  /** Protocol control: acknowledge after this many bytes. */
  WINDOW_ACK_SIZE: 5,
  /** Protocol control: limit the peer's output bandwidth. */
  SET_PEER_BANDWIDTH: 6,
  /** Audio: an FLV audio tag body. */
  AUDIO: 8,
  /** Video: an FLV video tag body. */
  VIDEO: 9,
  /** Data message encoded with AMF3. */
  DATA_AMF3: 15,
  /** Shared object message encoded with AMF3. */
  SHARED_OBJECT_AMF3: 16,
  /** Command message encoded with AMF3. */
  COMMAND_AMF3: 17,
  /** Data message encoded with AMF0 (`@setDataFrame`, `onMetaData`). */
  DATA_AMF0: 18,
  /** Shared object message encoded with AMF0. */
  SHARED_OBJECT_AMF0: 19,
  /** Command message encoded with AMF0 (`connect`, `publish`, ...). */
  COMMAND_AMF0: 20,
  /** Several audio/video/data sub-messages in one message. */
  AGGREGATE: 22,
} as const;

/**
 * One complete RTMP message, as reassembled by a {@linkcode ChunkReader} or
 * serialised by a {@linkcode ChunkWriter}.
 *
 * @example
 * ```ts
 * import { MessageType, type RtmpMessage } from "@arcly/stream/rtmp";
 *
 * const msg: RtmpMessage = {
 *   csid: 2,
 *   typeId: MessageType.SET_CHUNK_SIZE,
 *   streamId: 0,
 *   timestamp: 0,
 *   payload: new Uint8Array([0, 0, 16, 0]),
 * };
 * ```
 */
export interface RtmpMessage {
  /** The chunk stream id (2 to 65599) the message travelled on. */
  readonly csid: number;
  /** The message type, one of {@linkcode MessageType} or another id. */
  readonly typeId: number;
  /** The message stream id (0 for the connection, else a `createStream` result). */
  readonly streamId: number;
  /** The 32-bit timestamp in milliseconds, as on the wire (it wraps). */
  readonly timestamp: number;
  /** The message body. */
  readonly payload: Uint8Array;
}
