import type { Model } from '../../ir/graph.js';
import { interpret } from '../../ir/interpreter.js';
import { lookupOp } from '../../ir/ops/registry.js';
import { verifyModel } from '../../ir/verify.js';
import type { Backend, Session } from '../backend.js';

/** The reference interpreter as a target: the oracle every other target is compared with. */
export const referenceBackend: Backend = {
  name: 'ref',
  description: 'reference interpreter (plain TypeScript, f64 accumulation)',
  supports: (domain, op) => lookupOp(domain, op) !== undefined,
  async prepare(model: Model): Promise<Session> {
    verifyModel(model);
    const graph = model.graph;
    return {
      inputNames: graph.inputs.map((i) => i.name),
      outputNames: graph.outputs.map((o) => o.name),
      run: async (feeds) => interpret(graph, feeds, { opsets: model.opsets }),
    };
  },
};
