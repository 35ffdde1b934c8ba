import type { OpDef, OpContextBase } from '../types.js';
import { Tensor } from '../../tensor.js';
import { outputInfo, shapeValueOfTensor } from './common.js';

const VALUE_ATTRIBUTES = [
  'value', 'value_float', 'value_floats', 'value_int', 'value_ints', 'value_string', 'value_strings', 'sparse_value',
];

/** The tensor a Constant node holds, from whichever one of its value attributes is set. */
function constantValue(ctx: OpContextBase): Tensor {
  const present = VALUE_ATTRIBUTES.filter((name) => ctx.attrs.has(name));
  if (present.length !== 1) {
    throw ctx.attrs.error(`Constant needs exactly one value attribute, got ${present.length ? present.join(', ') : 'none'}`);
  }
  const { attrs } = ctx;
  switch (present[0]) {
    case 'value': return attrs.tensor('value');
    case 'value_float': return Tensor.scalar('f32', attrs.float('value_float'));
    case 'value_floats': {
      const values = attrs.floats('value_floats');
      return Tensor.fromNumbers('f32', [values.length], values);
    }
    case 'value_int': return Tensor.scalar('i64', attrs.int('value_int'));
    case 'value_ints': {
      const values = attrs.ints('value_ints');
      return Tensor.fromNumbers('i64', [values.length], values);
    }
    case 'value_string': return Tensor.strings([], [attrs.string('value_string')]);
    case 'value_strings': {
      const values = attrs.strings('value_strings');
      return Tensor.strings([values.length], [...values]);
    }
    default: throw ctx.attrs.error('Constant with sparse_value is not supported');
  }
}

/** Constant: a tensor given by attribute. */
export const Constant: OpDef = {
  domain: '',
  op: 'Constant',
  infer(ctx) {
    const value = constantValue(ctx);
    return [outputInfo(value.dtype, [...value.shape], shapeValueOfTensor(value))];
  },
  evaluate(ctx) {
    return [constantValue(ctx)];
  },
};
