/**
 * RTMP command and data messages: AMF0 values in a message body.
 *
 * @module
 */

import { type Amf0Object, type Amf0Value, decodeAmf0, encodeAmf0 } from "../../media/flv/amf0.ts";
import { RtmpError } from "./error.ts";
import { MessageType, type RtmpMessage } from "./message.ts";

/** A decoded AMF0 command message: `name`, transaction id, command object, arguments. */
export interface Command {
  /** The command name, e.g. `"connect"` or `"publish"`. */
  readonly name: string;
  /** The transaction id (0 when no answer is expected). */
  readonly transactionId: number;
  /** The command object (`null` for most commands but `connect`). */
  readonly object: Amf0Value;
  /** The remaining values. */
  readonly args: readonly Amf0Value[];
}

/**
 * Decode an AMF0 command message body. Throws {@linkcode RtmpError} when it does not
 * start with a name and a transaction id, or when the AMF0 is malformed.
 *
 * @example
 * ```ts
 * import { commandMessage, parseCommand } from "@arcly/stream/rtmp";
 *
 * const msg = commandMessage(3, 0, "createStream", 4, null);
 * parseCommand(msg.payload); // { name: "createStream", transactionId: 4, object: null, args: [] }
 * ```
 */
export function parseCommand(payload: Uint8Array): Command {
  const [name, transactionId, object = null, ...args] = parseData(payload);
  if (typeof name !== "string" || typeof transactionId !== "number") {
    throw new RtmpError("command message without a name and a transaction id");
  }
  return { name, transactionId, object, args };
}

/**
 * Decode every AMF0 value of a data (or command) message body. Throws
 * {@linkcode RtmpError} on malformed AMF0.
 *
 * @example
 * ```ts
 * import { dataMessage, parseData } from "@arcly/stream/rtmp";
 *
 * parseData(dataMessage(5, 1, "|RtmpSampleAccess", true, true).payload);
 * // ["|RtmpSampleAccess", true, true]
 * ```
 */
export function parseData(payload: Uint8Array): Amf0Value[] {
  try {
    return decodeAmf0(payload);
  } catch (error) {
    throw new RtmpError(`bad AMF0: ${error instanceof Error ? error.message : error}`);
  }
}

/**
 * An AMF0 command message on chunk stream `csid` and message stream `streamId`.
 *
 * @example
 * ```ts
 * import { commandMessage } from "@arcly/stream/rtmp";
 *
 * const msg = commandMessage(3, 0, "_result", 1, null, 1);
 * msg.typeId; // 20
 * ```
 */
export function commandMessage(
  csid: number,
  streamId: number,
  name: string,
  transactionId: number,
  object: Amf0Value,
  ...args: Amf0Value[]
): RtmpMessage {
  return {
    csid,
    typeId: MessageType.COMMAND_AMF0,
    streamId,
    timestamp: 0,
    payload: encodeAmf0(name, transactionId, object, ...args),
  };
}

/**
 * An AMF0 data message (`onMetaData`, `|RtmpSampleAccess`, ...).
 *
 * @example
 * ```ts
 * import { dataMessage } from "@arcly/stream/rtmp";
 *
 * dataMessage(5, 1, "onMetaData", { width: 320, height: 240 }).typeId; // 18
 * ```
 */
export function dataMessage(csid: number, streamId: number, ...values: Amf0Value[]): RtmpMessage {
  return {
    csid,
    typeId: MessageType.DATA_AMF0,
    streamId,
    timestamp: 0,
    payload: encodeAmf0(...values),
  };
}

/**
 * The info object of an `onStatus` command (or of a `_result`/`_error` reply).
 *
 * @example
 * ```ts
 * import { statusInfo } from "@arcly/stream/rtmp";
 *
 * statusInfo("error", "NetStream.Publish.BadName", "live/x is busy", "x").code;
 * // "NetStream.Publish.BadName"
 * ```
 */
export function statusInfo(
  level: string,
  code: string,
  description: string,
  details?: string,
): Amf0Object {
  return details === undefined
    ? { level, code, description }
    : { level, code, description, details };
}
