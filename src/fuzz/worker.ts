/**
 * A fuzz worker thread: prepares its own working copies of the seed models, then runs the
 * cases the harness sends. The harness bounds each case's time and restarts a worker that
 * hangs or dies, so a case can never stop the run.
 */
import * as path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { allBackends } from '../../targets/registry.js';
import { loadModelFromBytes } from '../onnx/load.js';
import { type SeedModel, runCase } from './case.js';
import { type FeedEdit, mutateModel } from './mutate.js';
import { Rng } from './rng.js';
import { type SeedSpec, feedInfo, prepareSeed } from './seeds.js';
import type { CaseRequest, CaseResult } from './pool.js';

interface WorkerInit {
  shared: string;
  workDir: string;
  seeds: SeedSpec[];
  targets?: string[];
}

const init = workerData as WorkerInit;
const seeds: SeedModel[] = init.seeds.map((spec, i) => prepareSeed(init.shared, spec, path.join(init.workDir, String(i))));

parentPort!.on('message', (request: CaseRequest) => {
  void handle(request).then((result) => parentPort!.postMessage(result));
});
await warmUp();
// The harness starts a case's clock only now: loading the code, copying the seeds and the
// targets' one-time setup (e.g. loading binaryen) are not any case's time.
parentPort!.postMessage('ready');

/** Prepares one seed model on every target, so one-time target setup happens before the first timed case. */
async function warmUp(): Promise<void> {
  for (const backend of allBackends()) {
    if (backend.name === 'ref' || (init.targets ? !init.targets.includes(backend.name) : backend.external)) continue;
    for (const seed of seeds) {
      try {
        const model = loadModelFromBytes(seed.bytes, { path: path.join(seed.dir, 'model.onnx') });
        await backend.prepare(model);
        break;
      } catch {
        // This seed is not for this target; try the next.
      }
    }
  }
}

async function handle(request: CaseRequest): Promise<CaseResult> {
  const seed = seeds[request.seedIndex];
  let bytes: Uint8Array;
  let mutations: string[] = [];
  let feedEdits: FeedEdit[] = [];
  if (request.pristine) {
    bytes = seed.bytes;
  } else {
    const mutant = mutateModel(seed.bytes, new Rng(request.caseSeed), feedInfo(seed.data));
    bytes = mutant.bytes;
    mutations = mutant.mutations;
    feedEdits = mutant.feedEdits;
  }
  const outcome = await runCase(seed, bytes, {
    pristine: request.pristine, lower: request.lower, feedEdits, ...(request.targets ? { targets: request.targets } : {}),
  });
  return { index: request.index, outcome, mutations };
}
