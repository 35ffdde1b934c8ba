/**
 * A structural check of protobuf bytes against the ONNX schema before protobufjs decodes
 * them. The generated decoder trusts wire types (a varint where a message belongs is read
 * as a length), so garbage or damaged files could decode into nonsense instead of failing;
 * this walk rejects them with a reason naming the message and field.
 */
import { LlmccError } from '../../ir/errors.js';

const VARINT = 0;
const FIXED64 = 1;
const BYTES = 2;
const FIXED32 = 5;

/** A field's type: a scalar kind, or the name of a message schema (validated recursively). */
type MessageName =
  | 'ModelProto' | 'OperatorSetIdProto' | 'StringStringEntryProto' | 'TensorAnnotation' | 'GraphProto' | 'NodeProto'
  | 'AttributeProto' | 'ValueInfoProto' | 'TensorProto' | 'TensorSegment' | 'SparseTensorProto' | 'TensorShapeProto'
  | 'TensorShapeDimension' | 'TypeProto' | 'TypeTensor' | 'TypeSequence' | 'TypeMap' | 'FunctionProto';
type FieldKind = 'varint' | 'float' | 'double' | 'string' | 'opaque' | MessageName;
type Schema = Record<number, FieldKind>;

const SCHEMAS: Record<MessageName, Schema> = {
  ModelProto: {
    1: 'varint', 8: 'OperatorSetIdProto', 2: 'string', 3: 'string', 4: 'string', 5: 'varint', 6: 'string',
    7: 'GraphProto', 14: 'StringStringEntryProto', 20: 'opaque', 25: 'FunctionProto', 26: 'opaque',
  },
  OperatorSetIdProto: { 1: 'string', 2: 'varint' },
  StringStringEntryProto: { 1: 'string', 2: 'string' },
  TensorAnnotation: { 1: 'string', 2: 'StringStringEntryProto' },
  GraphProto: {
    1: 'NodeProto', 2: 'string', 5: 'TensorProto', 15: 'SparseTensorProto', 10: 'string', 11: 'ValueInfoProto',
    12: 'ValueInfoProto', 13: 'ValueInfoProto', 14: 'TensorAnnotation', 16: 'StringStringEntryProto',
  },
  NodeProto: {
    1: 'string', 2: 'string', 3: 'string', 4: 'string', 7: 'string', 8: 'string', 5: 'AttributeProto', 6: 'string',
    9: 'StringStringEntryProto', 10: 'opaque',
  },
  AttributeProto: {
    1: 'string', 21: 'string', 13: 'string', 20: 'varint', 2: 'float', 3: 'varint', 4: 'string', 5: 'TensorProto',
    6: 'GraphProto', 22: 'SparseTensorProto', 14: 'TypeProto', 7: 'float', 8: 'varint', 9: 'string', 10: 'TensorProto',
    11: 'GraphProto', 23: 'SparseTensorProto', 15: 'TypeProto',
  },
  ValueInfoProto: { 1: 'string', 2: 'TypeProto', 3: 'string', 4: 'StringStringEntryProto' },
  TensorProto: {
    1: 'varint', 2: 'varint', 3: 'TensorSegment', 4: 'float', 5: 'varint', 6: 'string', 7: 'varint', 8: 'string',
    12: 'string', 9: 'string', 13: 'StringStringEntryProto', 14: 'varint', 10: 'double', 11: 'varint',
    16: 'StringStringEntryProto',
  },
  TensorSegment: { 1: 'varint', 2: 'varint' },
  SparseTensorProto: { 1: 'TensorProto', 2: 'TensorProto', 3: 'varint' },
  TensorShapeProto: { 1: 'TensorShapeDimension' },
  TensorShapeDimension: { 1: 'varint', 2: 'string', 3: 'string' },
  TypeProto: {
    1: 'TypeTensor', 4: 'TypeSequence', 5: 'TypeMap', 9: 'TypeSequence', 8: 'TypeTensor', 6: 'string', 7: 'opaque',
  },
  TypeTensor: { 1: 'varint', 2: 'TensorShapeProto' },
  TypeSequence: { 1: 'TypeProto' },
  TypeMap: { 1: 'varint', 2: 'TypeProto' },
  FunctionProto: {
    1: 'string', 4: 'string', 5: 'string', 6: 'string', 11: 'AttributeProto', 7: 'NodeProto', 8: 'string',
    9: 'OperatorSetIdProto', 10: 'string', 13: 'string', 12: 'ValueInfoProto', 14: 'StringStringEntryProto',
  },
};

/** Deeper nesting than this is not a real model (and would exhaust the stack). */
const MAX_DEPTH = 256;

class Walker {
  constructor(private readonly bytes: Uint8Array) {}

  private fail(reason: string, at: number): never {
    throw new LlmccError(`${reason} (byte ${at})`);
  }

  /** Reads a varint at `pos`; returns [value, next position]. Values beyond 2^53 lose precision, which is fine for lengths (they fail the bounds check). */
  private varint(pos: number, end: number, context: string): [number, number] {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= end) this.fail(`${context}: truncated varint`, pos);
      const b = this.bytes[pos++];
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return [value, pos];
      scale *= 128;
    }
    return this.fail(`${context}: varint longer than 10 bytes`, pos);
  }

  message(name: MessageName, start: number, end: number, depth: number): void {
    if (depth > MAX_DEPTH) this.fail(`${name} nested more than ${MAX_DEPTH} levels deep`, start);
    const schema = SCHEMAS[name];
    let pos = start;
    while (pos < end) {
      const tagStart = pos;
      const [tag, afterTag] = this.varint(pos, end, name);
      pos = afterTag;
      const field = Math.floor(tag / 8);
      const wire = tag % 8;
      if (field === 0) this.fail(`${name}: field number 0`, tagStart);
      const kind = schema[field];
      const context = `${name} field ${field}`;
      if (wire === 3 || wire === 4 || wire > 5) this.fail(`${context}: invalid wire type ${wire}`, tagStart);
      if (kind !== undefined) this.checkWireType(kind, wire, context, tagStart);
      switch (wire) {
        case VARINT: pos = this.varint(pos, end, context)[1]; break;
        case FIXED64: pos += 8; break;
        case FIXED32: pos += 4; break;
        default: {
          const [length, dataStart] = this.varint(pos, end, context);
          const dataEnd = dataStart + length;
          if (dataEnd > end) this.fail(`${context}: ${length}-byte field runs past the end of its message (truncated file?)`, tagStart);
          if (kind !== undefined) this.delimited(kind, dataStart, dataEnd, depth, context);
          pos = dataEnd;
        }
      }
      if (pos > end) this.fail(`${context}: runs past the end of its message (truncated file?)`, tagStart);
    }
  }

  private checkWireType(kind: FieldKind, wire: number, context: string, at: number): void {
    // Repeated scalars may be packed (wire type 2).
    const allowed = kind === 'varint' ? [VARINT, BYTES] : kind === 'float' ? [FIXED32, BYTES]
      : kind === 'double' ? [FIXED64, BYTES] : [BYTES];
    if (!allowed.includes(wire)) this.fail(`${context}: wire type ${wire} where ${allowed.join(' or ')} belongs`, at);
  }

  private delimited(kind: FieldKind, start: number, end: number, depth: number, context: string): void {
    switch (kind) {
      case 'string': case 'opaque': return;
      case 'float': if ((end - start) % 4 !== 0) this.fail(`${context}: packed floats not a multiple of 4 bytes`, start); return;
      case 'double': if ((end - start) % 8 !== 0) this.fail(`${context}: packed doubles not a multiple of 8 bytes`, start); return;
      case 'varint': {
        let pos = start;
        while (pos < end) pos = this.varint(pos, end, context)[1];
        return;
      }
      default: this.message(kind, start, end, depth + 1);
    }
  }
}

/** Throws LlmccError (without a location; callers add the file) when `bytes` is not a well-formed `message`. */
export function validateWireFormat(bytes: Uint8Array, message: MessageName): void {
  new Walker(bytes).message(message, 0, bytes.length, 0);
}

/** The length-delimited payloads of `field` in a (validated) message, in order. */
export function fieldPayloads(bytes: Uint8Array, field: number): Uint8Array[] {
  const payloads: Uint8Array[] = [];
  let pos = 0;
  const varint = (): number => {
    let value = 0;
    let scale = 1;
    for (;;) {
      const b = bytes[pos++];
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return value;
      scale *= 128;
    }
  };
  while (pos < bytes.length) {
    const tag = varint();
    const wire = tag % 8;
    if (wire === VARINT) varint();
    else if (wire === FIXED64) pos += 8;
    else if (wire === FIXED32) pos += 4;
    else {
      const length = varint();
      if (Math.floor(tag / 8) === field) payloads.push(bytes.subarray(pos, pos + length));
      pos += length;
    }
  }
  return payloads;
}
