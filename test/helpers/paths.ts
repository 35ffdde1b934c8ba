import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SHARED = path.resolve(REPO_ROOT, '..', 'shared');
export const CONFORMANCE_DIR = path.join(SHARED, 'conformance', 'onnx-node');
export const MODELS_DIR = path.join(SHARED, 'models');
export const CLI = path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');

/** Every folder under `root` that holds a model.onnx, recursively (the pipeline model nests three). */
export function modelDirs(root: string = MODELS_DIR): string[] {
  const found: string[] = [];
  const walk = (dir: string): void => {
    if (fs.existsSync(path.join(dir, 'model.onnx'))) found.push(dir);
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory() && !entry.name.startsWith('test_data_set')) walk(path.join(dir, entry.name));
    }
  };
  walk(root);
  return found.sort();
}

export function dataSets(modelDir: string): string[] {
  return fs.readdirSync(modelDir)
    .filter((d) => d.startsWith('test_data_set_'))
    .sort()
    .map((d) => path.join(modelDir, d));
}
