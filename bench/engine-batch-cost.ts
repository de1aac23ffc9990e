/**
 * What a batch costs: prefill per padded token and a decode step, per batch shape, for one or more
 * exports side by side (the numbers behind planBatches' cost model in src/engine/prompts.ts, and a
 * before/after for a graph change such as the copy-free grouped attention of trainer/onnx_graph.py).
 *
 *   node --import tsx bench/engine-batch-cost.ts ONNX_DIR [ONNX_DIR ...] [--shapes 16x100,4x600] [--reps 4]
 *
 * Per shape (rows × prompt tokens, synthetic ids, EOS off) and export: the fastest of --reps
 * prefills (maxNewTokens 1) and of --reps 17-token generations, the exports taking turns within
 * each rep so that a load change on a shared machine does not favour one; a decode step is
 * (17-token − prefill) / 16.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { loadModel, generate } from '../src/engine';

async function main() {
  const { values, positionals: dirs } = parseArgs({
    allowPositionals: true,
    options: { shapes: { type: 'string', default: '16x100,4x600' }, reps: { type: 'string', default: '4' } },
  });
  const shapes = values.shapes.split(',').map((s) => s.split('x').map(Number) as [number, number]);
  const reps = Number(values.reps);
  if (dirs.length === 0 || shapes.some(([b, l]) => !(b >= 1 && l >= 1)) || !(reps >= 1))
    throw new Error('usage: engine-batch-cost.ts ONNX_DIR [ONNX_DIR ...] [--shapes 16x100,4x600] [--reps 4]');
  const models = await Promise.all(dirs.map((d) => loadModel(d, { intraOpNumThreads: 2 })));
  const mk = (b: number, l: number) =>
    Array.from({ length: b }, (_, r) => Array.from({ length: l }, (_, i) => 100 + ((r * 31 + i * 7) % 30000)));
  for (const [b, l] of shapes) {
    const best = models.map(() => ({ p: Infinity, g: Infinity }));
    for (let rep = 0; rep < reps; rep++)
      for (const [m, model] of models.entries()) {
        let t = performance.now();
        await generate(model, mk(b, l), { maxNewTokens: 1, batchSize: b, eosTokenIds: [] });
        best[m]!.p = Math.min(best[m]!.p, performance.now() - t);
        t = performance.now();
        await generate(model, mk(b, l), { maxNewTokens: 17, batchSize: b, eosTokenIds: [] });
        best[m]!.g = Math.min(best[m]!.g, performance.now() - t);
      }
    best.forEach(({ p, g }, m) =>
      console.log(
        `${dirs[m]!.split('/').pop()} B=${b} L=${l}: prefill ${p.toFixed(0)} ms (${(p / (b * l)).toFixed(2)} ms/token), 17 tokens ${g.toFixed(0)} ms, decode step ≈ ${((g - p) / 16).toFixed(1)} ms`,
      ),
    );
  }
}
main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
