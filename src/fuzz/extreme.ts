/**
 * When may a target's numbers be compared with the reference's? The reference computes in
 * f64 and rounds each op's result to its dtype; targets compute in f32 (or their storage
 * type). Both are right, but they part ways where an f32 intermediate overflows that an f64
 * one does not: a 1e30 input squared inside RMSNormalization is Infinity in f32 (the row
 * becomes NaN) and 1e60 in f64 (the row stays finite). So the fuzz comparison is numeric only
 * for f32-safe cases: every float value a case brings in (test inputs, weights, constant
 * tensors and float attributes) is finite with |x| ≤ F32_SAFE_MAGNITUDE, where squares and
 * dot products over up to 1e8 elements stay below f32's 3.4e38. An extreme case must still
 * run without crash or hang and give outputs of the reference's dtypes and shapes.
 */
import { isFloat } from '../../ir/dtype.js';
import type { Graph } from '../../ir/graph.js';
import type { Tensor } from '../../ir/tensor.js';
import type { TestDataSet } from '../testdata.js';

export const F32_SAFE_MAGNITUDE = 1e15;

function unsafe(x: number): boolean {
  return !Number.isFinite(x) || Math.abs(x) > F32_SAFE_MAGNITUDE;
}

function extremeElement(tensor: Tensor): number | undefined {
  if (!isFloat(tensor.dtype)) return undefined;
  const data = tensor.data as ArrayLike<number>;
  for (let i = 0; i < data.length; i++) if (unsafe(data[i])) return data[i];
  return undefined;
}

function extremeInGraph(graph: Graph): string | undefined {
  for (const weight of graph.initializers.values()) {
    if (!isFloat(weight.dtype)) continue;
    const x = extremeElement(weight.load());
    if (x !== undefined) return `weight "${weight.name}" holds ${x}`;
  }
  for (const node of graph.nodes) {
    for (const [name, attr] of node.attributes) {
      const where = `attribute ${name} of node "${node.name}"`;
      if (attr.kind === 'float' && unsafe(attr.value)) return `${where} is ${attr.value}`;
      if (attr.kind === 'floats' && attr.value.some(unsafe)) return `${where} holds ${attr.value.find(unsafe)}`;
      if (attr.kind === 'tensor') {
        const x = extremeElement(attr.value);
        if (x !== undefined) return `${where} holds ${x}`;
      }
      if (attr.kind === 'graph') {
        const inner = extremeInGraph(attr.value);
        if (inner) return inner;
      }
      if (attr.kind === 'graphs') {
        for (const g of attr.value) {
          const inner = extremeInGraph(g);
          if (inner) return inner;
        }
      }
    }
  }
  return undefined;
}

/** Why a case is outside the f32-safe range (the first value found), or undefined when it is inside. */
export function extremeValue(graph: Graph, data: TestDataSet): string | undefined {
  for (const [k, { tensor }] of data.inputs.entries()) {
    const x = extremeElement(tensor);
    if (x !== undefined) return `input_${k}.pb holds ${x}`;
  }
  return extremeInGraph(graph);
}
