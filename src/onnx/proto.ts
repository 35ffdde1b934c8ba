/**
 * The ONNX protobuf classes and small helpers around them. onnx-proto is static protobufjs
 * code in a CommonJS package, so under NodeNext its namespace arrives as the default export.
 * Its schema is ONNX 1.10: newer fields (e.g. FunctionProto.attribute_proto) are skipped
 * on decode, and newer data types are plain numbers in `data_type`.
 */
import onnxProto from 'onnx-proto';
import type { onnx as OnnxNamespace } from 'onnx-proto';

export const onnx = onnxProto.onnx;
export type ModelProto = OnnxNamespace.IModelProto;
export type GraphProto = OnnxNamespace.IGraphProto;
export type NodeProto = OnnxNamespace.INodeProto;
export type TensorProto = OnnxNamespace.ITensorProto;
export type AttributeProto = OnnxNamespace.IAttributeProto;
export type ValueInfoProto = OnnxNamespace.IValueInfoProto;
export type TypeProto = OnnxNamespace.ITypeProto;
export type FunctionProto = OnnxNamespace.IFunctionProto;

/** What protobufjs hands out for 64-bit integer fields: a number or a Long. */
export type Int64Like = number | { toNumber(): number; low: number; high: number; unsigned: boolean };

/** A 64-bit protobuf integer as a JS number (exact below 2^53, like the IR's i64 storage). */
export function int64ToNumber(value: Int64Like | null | undefined): number {
  if (value === null || value === undefined) return 0;
  return typeof value === 'number' ? value : value.toNumber();
}

/** A 64-bit integer that must be an exact non-negative size (dims, offsets, lengths). */
export function int64ToSize(value: Int64Like | null | undefined): number | undefined {
  const n = int64ToNumber(value);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

const utf8 = new TextDecoder('utf-8');
export function decodeUtf8(bytes: Uint8Array): string {
  return utf8.decode(bytes);
}
