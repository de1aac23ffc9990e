/**
 * End to end, the study's shape: examples/study-small.yaml itself (2 models × the five PEFT methods
 * + ICL 0/3-shot + a speculative pair) through `peftgrid grid start --wait` on the embedded stack,
 * with only the models swapped for tiny random-init ones (two families) and the sizes cut so that
 * it fits in CI. Checks what a user sees: every run finished, the tables and plots, the runs
 * filterable by search attribute as in the Temporal UI, and a second start reusing every run. The
 * report must carry the study's figures, the training curves and the paired significance tables.
 */
import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Connection, Client } from '@temporalio/client';
import { parse, stringify } from 'yaml';
import { REPO, SAMPLES, scratchDir, tinyModel } from '../helpers/fixtures';
import { npxPeftgrid } from './npx';
import type { GridResult } from '../../src/contracts';

const dir = scratchDir('e2e-study-small');
const PORT = 17243;
const env = {
  ...process.env,
  PEFTGRID_DATA_DIR: join(dir, 'data'),
  PEFTGRID_TEMPORAL_PORT: String(PORT),
  PEFTGRID_UI_PORT: '18243',
  TEMPORAL_ADDRESS: `127.0.0.1:${PORT}`,
  PEFTGRID_UI_URL: 'http://localhost:18243',
};

/** As README.md writes it: `npx peftgrid …` from the repository root. */
function cli(args: string[], timeoutMs = 120_000) {
  return npxPeftgrid(args, { env, timeoutMs });
}

/** examples/study-small.yaml with tiny models and CI sizes; everything else (the shape) as shipped. */
function ciVersion(): string {
  interface Doc {
    store: string;
    data: object;
    training: object;
    eval: object;
    models: { name: string; path: string; family: string }[];
    methods: Record<string, unknown>[];
  }
  const doc = parse(readFileSync(join(REPO, 'examples', 'study-small.yaml'), 'utf8')) as Doc;
  assert.equal(doc.models.length, 2);
  Object.assign(doc.models[0]!, { path: tinyModel('llama'), family: 'llama' });
  Object.assign(doc.models[1]!, { path: tinyModel('gemma'), family: 'gemma' });
  doc.store = `file://${join(dir, 'store')}`;
  Object.assign(doc.data, { baseUrl: `file://${SAMPLES}`, maxTrainPerDataset: 16, testSamples: 8 });
  Object.assign(doc.training, { maxSteps: 4, warmupSteps: 1, checkpointEverySteps: 2 });
  Object.assign(doc.eval, { maxNewTokens: 4, batchSize: 8 });
  Object.assign(
    doc.methods.find((m) => m.method === 'adalora')!,
    { tinit: 1, tfinal: 1, deltaT: 1 },
  );
  return stringify(doc);
}

describe('examples/study-small.yaml, CI-sized, through the CLI', { timeout: 30 * 60_000 }, () => {
  after(() => {
    cli(['dev', 'down']);
  });

  it('runs every run of the study shape, reports it, and reuses it all on a second start', async () => {
    const cfg = join(dir, 'study-small-ci.yaml');
    writeFileSync(cfg, ciVersion());
    const up = cli(['dev', 'up'], 180_000);
    assert.equal(up.code, 0, up.err);

    const first = cli(['grid', 'start', cfg, '--wait', '--json'], 25 * 60_000);
    assert.equal(first.code, 0, first.out + first.err);
    const [startedLine, resultLine] = first.out.trim().split('\n');
    const started = JSON.parse(startedLine!) as { gridId: string; runs: number };
    const result = JSON.parse(resultLine!) as GridResult;
    // 2 models × (lora, qlora, adalora, ia3, prompt_tuning, icl 0, icl 3) + 2 speculative pairs
    // (the small model drafting, and prompt lookup).
    assert.equal(started.runs, 16);
    assert.deepEqual(
      result.runs.filter((r) => r.status !== 'completed').map((r) => `${r.runKey}: ${r.error}`),
      [],
    );
    const methods = new Set(result.runs.map((r) => r.method));
    for (const m of ['lora', 'qlora', 'adalora', 'ia3', 'prompt_tuning', 'icl', 'speculative'])
      assert.ok(methods.has(m), `no ${m} run`);
    for (const r of result.runs) {
      assert.equal(r.metrics?.overall.n, 8, `${r.label}: every run answers the same 8 test items`);
      assert.ok(r.provenance?.configHash && r.provenance.dataHash, `${r.label}: provenance recorded`);
      assert.equal(r.reused, undefined, 'nothing to reuse on the first start');
    }
    const trained = result.runs.filter((r) => r.training);
    assert.equal(trained.length, 10);
    const pt = result.runs.find((r) => r.method === 'prompt_tuning')!;
    assert.match(pt.label, /lr=0\.03/, 'the per-method lr of the file is applied');
    const specs = result.runs.filter((r) => r.method === 'speculative');
    assert.deepEqual(specs.map((r) => r.label).sort(), [
      'speculative draft=smollm2-135m-l10 gamma=3',
      'speculative prompt-lookup n=3 gamma=4',
    ]);
    for (const spec of specs) {
      const t = spec.throughput!;
      assert.ok(t.speedup !== undefined && t.acceptanceRate !== undefined, spec.label);
      assert.ok(t.tokensPerTargetPass! >= 1, `${spec.label}: ${JSON.stringify(t)}`);
    }
    // Both return the target's own greedy tokens: the same predictions as its zero-shot run.
    const zeroShot = result.runs.find((r) => r.model === 'smollm2-135m' && r.label === 'icl shots=0')!;
    for (const spec of specs)
      assert.deepEqual(spec.metrics?.overall.metrics, zeroShot.metrics?.overall.metrics, spec.label);

    // The report: one table per model with every method, and the figures as SVG files.
    for (const model of ['smollm2-135m', 'smollm2-135m-l10'])
      assert.match(result.markdown, new RegExp(`## ${model.replace('.', '\\.')}`));
    for (const label of ['qlora', 'adalora', 'ia3', 'prompt_tuning', 'icl shots=3'])
      assert.ok(result.markdown.includes(label), `report lacks ${label}`);
    const reportDir = join(dir, 'store', result.reportPrefix);
    const plots = readdirSync(join(reportDir, 'plots'));
    // The study's figures 1–3 per model and across models, and the training curves: per model the
    // loss and lr of every trained run, and one loss + lr figure per trained run (5 per model).
    for (const model of ['smollm2-135m', 'smollm2-135m-l10'])
      for (const fig of ['jaccard', 'exact-match', 'throughput', 'loss', 'lr'])
        assert.ok(plots.includes(`model-${model}.${fig}.svg`), `no ${model} ${fig} figure in ${plots.join(', ')}`);
    for (const fig of ['jaccard', 'exact-match', 'throughput']) assert.ok(plots.includes(`compare.${fig}.svg`), fig);
    assert.equal(plots.filter((f) => f.endsWith('.curves.svg')).length, 10, plots.join(', '));
    const links = [...result.markdown.matchAll(/\]\(plots\/([^)]+)\)/g)].map((m) => decodeURI(m[1]!));
    assert.deepEqual([...links].sort(), [...plots].sort(), 'the report links every figure, and only those');
    const lossSvg = readFileSync(join(reportDir, 'plots', 'model-smollm2-135m.loss.svg'), 'utf8');
    assert.match(lossSvg, /^<svg [^]*>training loss \(cross-entropy\)<[^]*<\/svg>\n$/);
    // 4 steps per trained run: the lr curve is drawn from the trainer's per-step lrs.
    assert.match(readFileSync(join(reportDir, 'plots', 'model-smollm2-135m.lr.svg'), 'utf8'), />learning rate</);
    // The paired significance table: every method against zero-shot, then each pair, Holm-corrected.
    for (const model of ['smollm2-135m', 'smollm2-135m-l10']) {
      assert.match(result.markdown, new RegExp(`### ${model.replace('.', '\\.')}: paired significance`));
      assert.match(result.markdown, new RegExp(`### ${model.replace('.', '\\.')}: training curves`));
    }
    assert.match(result.markdown, /\| lora r=8 alpha=16 dropout=0\.05 vs \*\*icl shots=0\*\* \(baseline\) \| 8 \|/);
    assert.match(result.markdown, /\| qlora [^|]* vs adalora [^|]* \| 8 \|/);
    assert.match(result.markdown, /after Holm's correction over the 21 comparisons of this model/);
    assert.match(result.markdown, /Not compared: speculative draft=smollm2-135m-l10 gamma=3/);
    assert.match(result.markdown, /\| speculative prompt-lookup n=3 gamma=4 \| [0-9.]+ \| [0-9.]+ \|/);
    assert.match(result.markdown, /Exact-match intervals are 95% Wilson score intervals/);
    const significance = JSON.parse(readFileSync(join(reportDir, 'significance.json'), 'utf8')) as {
      model: string;
      comparisons: unknown[];
    }[];
    assert.deepEqual(
      significance.map((m) => [m.model, m.comparisons.length]),
      [
        ['smollm2-135m', 21],
        ['smollm2-135m-l10', 21],
      ],
    );

    // As in the Temporal UI: the runs can be filtered by grid, model, method and status.
    const connection = await Connection.connect({ address: `127.0.0.1:${PORT}` });
    try {
      const client = new Client({ connection });
      const count = async (query: string) => (await client.workflow.count(query)).count;
      assert.equal(await count(`PeftgridGrid = 'study-small' AND WorkflowType = 'fineTuneRunWorkflow'`), 16);
      assert.equal(await count(`PeftgridGrid = 'study-small' AND PeftgridMethod = 'qlora'`), 2);
      assert.equal(await count(`PeftgridModel = 'smollm2-135m-l10' AND PeftgridStatus = 'completed'`), 7);

      // Readable summaries and current details, as the UI shows them.
      const gridHandle = client.workflow.getHandle(started.gridId);
      assert.match(
        (await (await gridHandle.describe()).staticSummary()) ?? '',
        /^peftgrid grid study-small: 16 runs · smollm2-135m, smollm2-135m-l10 × lora, qlora/,
      );
      const meta = await gridHandle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
      assert.match(
        meta.currentDetails ?? '',
        /\*\*completed\*\* · 16 of 16 runs finished \(16 completed, 0 failed, 0 cancelled\)/,
      );
      const qlora = result.runs.find((r) => r.method === 'qlora')!;
      const child = client.workflow.getHandle(`peftgrid-run-${qlora.runKey}`);
      assert.equal(await (await child.describe()).staticSummary(), `${qlora.model} · ${qlora.label}`);
      assert.match(
        (await child.query<{ currentDetails?: string }>('__temporal_workflow_metadata')).currentDetails ?? '',
        /^\*\*completed\*\* · smollm2-135m · qlora .*\n\nexact match \d/,
      );
      const scheduled = ((await child.fetchHistory()).events ?? []).filter(
        (e) => e.activityTaskScheduledEventAttributes,
      );
      const summaries = scheduled.map(
        (e) => JSON.parse(Buffer.from(e.userMetadata?.summary?.data ?? '""').toString()) as string,
      );
      assert.ok(
        summaries.some((t) => /^train qlora .* 4 steps$/.test(t)),
        summaries.join(' | '),
      );
    } finally {
      await connection.close();
    }

    // A second start of the same file: every run is reused, nothing is trained or evaluated again.
    const second = cli(['grid', 'start', cfg, '--wait'], 10 * 60_000);
    assert.equal(second.code, 0, second.out + second.err);
    assert.match(second.out, /16 runs: 16 completed \(16 reused from an earlier start\)/);

    const md = cli(['grid', 'results', started.gridId, '--format', 'md']);
    assert.equal(md.code, 0, md.err);
    assert.match(md.out, /smollm2-135m-l10/);
    assert.match(md.out, /: paired significance/);
  });
});
