import { ne, select } from '../../../codegen/builder.js';
import { defineElementwise } from './elementwise.js';

/** Where(cond, x, y) with numpy broadcasting over all three; cond is bool (u8). */
export const whereKernel = defineElementwise('', 'Where', (ctx) => {
  if (ctx.inputs[0]?.dtype !== 'bool') return 'Where needs a bool condition';
  if (ctx.inputs[1]?.dtype !== ctx.inputs[2]?.dtype) return 'Where needs x and y of one dtype';
  return { scalar: (_k, x) => select(ne(x[0]!, 0), x[1]!, x[2]!) };
});
