/**
 * `peftgrid demo`: the README's first command after setup. Brings up the embedded stack, runs
 * examples/demo.yaml (zero-shot SmolLM2-135M vs the same model after LoRA, on the same test
 * items) and prints the comparison.
 */
import { join, resolve } from 'node:path';
import { devUp } from '../../infra/dev-stack';
import { loadGridConfig } from '../config/validate';
import type { RunResult } from '../contracts';
import { parse } from './args';
import { connectClient, startGrid } from './client';
import { followGrid } from './grid';

const pct = (v: number | undefined) => (v === undefined ? '   –' : (100 * v).toFixed(1).padStart(5));

export function comparisonTable(runs: RunResult[]): string {
  const rows = runs.map((r) => {
    const m = r.metrics?.overall.metrics;
    return `| ${(r.method === 'icl' ? `base model, ${r.label.replace('icl ', '')}` : `tuned: ${r.label}`).padEnd(38)} | ${String(r.metrics?.overall.n ?? '–').padStart(5)} | ${pct(m?.exactMatch?.estimate)} | ${pct(m?.jaccardStudy?.estimate)} | ${pct(r.throughput?.hitLimitFraction)} | ${r.status}`;
  });
  return [
    '| run                                    | items | EM %  | Jacc% | hit limit % | status',
    '|---|--:|--:|--:|--:|---',
    ...rows,
  ].join('\n');
}

export async function demoCommand(args: string[]): Promise<number> {
  const { values } = parse(args, { config: { type: 'string' } });
  const t0 = Date.now();
  const file = values.config ?? join(resolve(__dirname, '..', '..'), 'examples', 'demo.yaml');
  const grid = loadGridConfig(file);
  await devUp({ say: (l) => process.stderr.write(`[dev] ${l}\n`) });
  const { client, close } = await connectClient();
  try {
    const started = await startGrid(client, grid);
    process.stderr.write(
      `grid ${started.gridId}: ${started.runs} runs — follow it in the Temporal UI: ${started.uiUrl}\n`,
    );
    const result = await followGrid(client, started.gridId);
    process.stdout.write('\n' + result.markdown + '\n');
    process.stdout.write(
      'Zero-shot base model vs LoRA-tuned, same test items:\n\n' + comparisonTable(result.runs) + '\n\n',
    );
    process.stdout.write(
      `demo finished in ${((Date.now() - t0) / 1000).toFixed(0)}s; report: ${grid.store}/grids/${started.gridId}/report.md\n`,
    );
    process.stdout.write(
      'the embedded stack is still running (Web UI http://localhost:8233); stop it with `npx peftgrid dev down`\n',
    );
    return result.runs.every((r) => r.status === 'completed') ? 0 : 1;
  } finally {
    await close();
  }
}
