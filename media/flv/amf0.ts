/**
 * AMF0 (Action Message Format 0) encoding and decoding, as used by FLV
 * script tags (`onMetaData`) and RTMP command messages.
 *
 * Mapping: number ↔ `number`, boolean ↔ `boolean`, string and long string ↔
 * `string`, object ↔ plain object, ECMA array ↔ `Map<string, Amf0Value>`,
 * strict array ↔ `Amf0Value[]`, date ↔ `Date`, null ↔ `null`, undefined (and
 * unsupported) ↔ `undefined`. References decode to the referenced value;
 * typed objects decode to plain objects (the class name is dropped).
 *
 * @module
 */

/** A value that AMF0 can carry. */
export type Amf0Value =
  | number
  | boolean
  | string
  | null
  | undefined
  | Date
  | Amf0Object
  | Amf0Value[]
  | Map<string, Amf0Value>;

/** An AMF0 anonymous object. */
export interface Amf0Object {
  /** A property. */
  [key: string]: Amf0Value;
}

/** AMF0 type markers. */
export const Amf0Marker = {
  NUMBER: 0x00,
  BOOLEAN: 0x01,
  STRING: 0x02,
  OBJECT: 0x03,
  NULL: 0x05,
  UNDEFINED: 0x06,
  REFERENCE: 0x07,
  ECMA_ARRAY: 0x08,
  OBJECT_END: 0x09,
  STRICT_ARRAY: 0x0a,
  DATE: 0x0b,
  LONG_STRING: 0x0c,
  UNSUPPORTED: 0x0d,
  TYPED_OBJECT: 0x10,
  AVMPLUS: 0x11,
} as const;

/** Nesting deeper than this is rejected when decoding or encoding. */
export const AMF0_MAX_DEPTH = 64;

const utf8 = new TextDecoder("utf-8", { fatal: false });
const utf8Encoder = new TextEncoder();

/**
 * Decodes every AMF0 value in `data`, in order.
 *
 * @throws {RangeError} on truncated data, an unknown marker, AMF3 content, a
 * bad reference, or nesting deeper than {@linkcode AMF0_MAX_DEPTH}.
 * @example
 * ```ts
 * import { decodeAmf0, encodeAmf0 } from "./amf0.ts";
 *
 * decodeAmf0(encodeAmf0("connect", 1, { app: "live" })); // ["connect", 1, { app: "live" }]
 * ```
 */
export function decodeAmf0(data: Uint8Array): Amf0Value[] {
  const reader = new Amf0Reader(data);
  const values: Amf0Value[] = [];
  while (reader.offset < data.length) values.push(reader.read());
  return values;
}

/**
 * Reads AMF0 values one at a time from a buffer.
 *
 * @example
 * ```ts
 * import { Amf0Reader, encodeAmf0 } from "./amf0.ts";
 *
 * const r = new Amf0Reader(encodeAmf0("onMetaData", new Map([["width", 320]])));
 * r.read(); // "onMetaData"
 * r.read(); // Map { "width" => 320 }
 * ```
 */
export class Amf0Reader {
  #data: Uint8Array;
  #view: DataView;
  #pos = 0;
  #refs: Amf0Value[] = [];

  /** Reads `data` from its first byte. */
  constructor(data: Uint8Array) {
    this.#data = data;
    this.#view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }

  /** Bytes consumed so far. */
  get offset(): number {
    return this.#pos;
  }

  /** Reads the next value. */
  read(): Amf0Value {
    return this.#value(0);
  }

  #need(n: number): void {
    if (this.#pos + n > this.#data.length) {
      throw new RangeError(`AMF0: truncated at byte ${this.#pos} (need ${n} more bytes)`);
    }
  }

  #u8(): number {
    this.#need(1);
    return this.#data[this.#pos++];
  }

  #u16(): number {
    this.#need(2);
    const v = this.#view.getUint16(this.#pos);
    this.#pos += 2;
    return v;
  }

  #u32(): number {
    this.#need(4);
    const v = this.#view.getUint32(this.#pos);
    this.#pos += 4;
    return v;
  }

  #f64(): number {
    this.#need(8);
    const v = this.#view.getFloat64(this.#pos);
    this.#pos += 8;
    return v;
  }

  #string(len: number): string {
    this.#need(len);
    const s = utf8.decode(this.#data.subarray(this.#pos, this.#pos + len));
    this.#pos += len;
    return s;
  }

  #value(depth: number): Amf0Value {
    if (depth > AMF0_MAX_DEPTH) throw new RangeError(`AMF0: nesting deeper than ${AMF0_MAX_DEPTH}`);
    const at = this.#pos;
    const marker = this.#u8();
    switch (marker) {
      case Amf0Marker.NUMBER:
        return this.#f64();
      case Amf0Marker.BOOLEAN:
        return this.#u8() !== 0;
      case Amf0Marker.STRING:
        return this.#string(this.#u16());
      case Amf0Marker.LONG_STRING:
        return this.#string(this.#u32());
      case Amf0Marker.NULL:
        return null;
      case Amf0Marker.UNDEFINED:
      case Amf0Marker.UNSUPPORTED:
        return undefined;
      case Amf0Marker.OBJECT:
        return this.#properties({}, depth);
      case Amf0Marker.TYPED_OBJECT:
        this.#string(this.#u16()); // class name
        return this.#properties({}, depth);
      case Amf0Marker.ECMA_ARRAY: {
        this.#u32(); // approximate count; the end marker is authoritative
        const map = new Map<string, Amf0Value>();
        this.#refs.push(map);
        this.#entries(depth, (k, v) => map.set(k, v));
        return map;
      }
      case Amf0Marker.STRICT_ARRAY: {
        const count = this.#u32();
        if (count > this.#data.length - this.#pos) {
          throw new RangeError(`AMF0: strict array of ${count} items overruns the data`);
        }
        const arr: Amf0Value[] = [];
        this.#refs.push(arr);
        for (let i = 0; i < count; i++) arr.push(this.#value(depth + 1));
        return arr;
      }
      case Amf0Marker.DATE: {
        const ms = this.#f64();
        this.#u16(); // time zone, reserved
        return new Date(ms);
      }
      case Amf0Marker.REFERENCE: {
        const index = this.#u16();
        if (index >= this.#refs.length) {
          throw new RangeError(`AMF0: reference ${index} to an unknown object at byte ${at}`);
        }
        return this.#refs[index];
      }
      case Amf0Marker.AVMPLUS:
        throw new RangeError(`AMF0: AMF3 (AVM+) value at byte ${at} is not supported`);
      default:
        throw new RangeError(`AMF0: unknown type marker 0x${marker.toString(16)} at byte ${at}`);
    }
  }

  #properties(obj: Amf0Object, depth: number): Amf0Object {
    this.#refs.push(obj);
    this.#entries(depth, (k, v) => {
      obj[k] = v;
    });
    return obj;
  }

  #entries(depth: number, set: (key: string, value: Amf0Value) => void): void {
    for (;;) {
      const key = this.#string(this.#u16());
      if (key === "" && this.#data[this.#pos] === Amf0Marker.OBJECT_END) {
        this.#pos++;
        return;
      }
      set(key, this.#value(depth + 1));
    }
  }
}

/**
 * Encodes values as consecutive AMF0 values. Strings longer than 65535 UTF-8
 * bytes become long strings; a `Map` becomes an ECMA array.
 *
 * @throws {RangeError} on nesting deeper than {@linkcode AMF0_MAX_DEPTH}
 * (which includes cycles) or an unencodable value (function, symbol, bigint).
 * @example
 * ```ts
 * import { encodeAmf0 } from "./amf0.ts";
 *
 * encodeAmf0("_result", 1, null); // Uint8Array [0x02, 0x00, 0x07, ..., 0x05]
 * ```
 */
export function encodeAmf0(...values: Amf0Value[]): Uint8Array {
  const w = new Amf0Writer();
  for (const v of values) w.value(v, 0);
  return w.bytes();
}

class Amf0Writer {
  #buf = new Uint8Array(256);
  #view = new DataView(this.#buf.buffer);
  #pos = 0;

  bytes(): Uint8Array {
    return this.#buf.slice(0, this.#pos);
  }

  #reserve(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    const grown = new Uint8Array(Math.max(this.#buf.length * 2, this.#pos + n));
    grown.set(this.#buf.subarray(0, this.#pos));
    this.#buf = grown;
    this.#view = new DataView(grown.buffer);
  }

  #u8(v: number): void {
    this.#reserve(1);
    this.#buf[this.#pos++] = v;
  }

  #u16(v: number): void {
    this.#reserve(2);
    this.#view.setUint16(this.#pos, v);
    this.#pos += 2;
  }

  #u32(v: number): void {
    this.#reserve(4);
    this.#view.setUint32(this.#pos, v);
    this.#pos += 4;
  }

  #f64(v: number): void {
    this.#reserve(8);
    this.#view.setFloat64(this.#pos, v);
    this.#pos += 8;
  }

  #utf8(s: string, long: boolean): void {
    const bytes = utf8Encoder.encode(s);
    if (!long && bytes.length > 0xffff) {
      throw new RangeError(`AMF0: property name of ${bytes.length} bytes exceeds 65535`);
    }
    if (long) this.#u32(bytes.length);
    else this.#u16(bytes.length);
    this.#reserve(bytes.length);
    this.#buf.set(bytes, this.#pos);
    this.#pos += bytes.length;
  }

  value(v: Amf0Value, depth: number): void {
    if (depth > AMF0_MAX_DEPTH) {
      throw new RangeError(`AMF0: nesting deeper than ${AMF0_MAX_DEPTH} (or a cycle)`);
    }
    switch (typeof v) {
      case "number":
        this.#u8(Amf0Marker.NUMBER);
        return this.#f64(v);
      case "boolean":
        this.#u8(Amf0Marker.BOOLEAN);
        return this.#u8(v ? 1 : 0);
      case "string": {
        const long = v.length > 0x3fff && utf8Encoder.encode(v).length > 0xffff;
        this.#u8(long ? Amf0Marker.LONG_STRING : Amf0Marker.STRING);
        return this.#utf8(v, long);
      }
      case "undefined":
        return this.#u8(Amf0Marker.UNDEFINED);
      case "object":
        break;
      default:
        throw new RangeError(`AMF0: cannot encode a ${typeof v}`);
    }
    if (v === null) return this.#u8(Amf0Marker.NULL);
    if (v instanceof Date) {
      this.#u8(Amf0Marker.DATE);
      this.#f64(v.getTime());
      return this.#u16(0);
    }
    if (Array.isArray(v)) {
      this.#u8(Amf0Marker.STRICT_ARRAY);
      this.#u32(v.length);
      for (const item of v) this.value(item, depth + 1);
      return;
    }
    if (v instanceof Map) {
      this.#u8(Amf0Marker.ECMA_ARRAY);
      this.#u32(v.size);
      for (const [k, item] of v) this.#property(k, item, depth);
    } else {
      this.#u8(Amf0Marker.OBJECT);
      for (const k of Object.keys(v)) this.#property(k, v[k], depth);
    }
    this.#u16(0);
    this.#u8(Amf0Marker.OBJECT_END);
  }

  #property(key: string, value: Amf0Value, depth: number): void {
    this.#utf8(key, false);
    this.value(value, depth + 1);
  }
}
