/**
 * End to end: the `peftgrid` CLI as a user runs it — validate, dev up, run --wait, grid results,
 * dev down — on the embedded stack (its own ports and data dir), with a tiny random-init Llama.
 */
import { strict as assert } from 'node:assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SAMPLES, scratchDir, tinyModel } from '../helpers/fixtures';
import { npxPeftgrid } from './npx';

const dir = scratchDir('e2e-cli');
const env = {
  ...process.env,
  PEFTGRID_DATA_DIR: join(dir, 'data'),
  PEFTGRID_TEMPORAL_PORT: '17233',
  PEFTGRID_UI_PORT: '18233',
  TEMPORAL_ADDRESS: '127.0.0.1:17233',
  PEFTGRID_UI_URL: 'http://localhost:18233',
};

/** As README.md writes it: `npx peftgrid …` from the repository root. */
function cli(args: string[], timeoutMs = 120_000) {
  return npxPeftgrid(args, { env, timeoutMs });
}

describe('peftgrid CLI on the embedded stack', { timeout: 20 * 60_000 }, () => {
  after(() => {
    cli(['dev', 'down']);
  });

  it('rejects a bad config before any work, naming field, value and expectation', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      'name: x\nmodels:\n  - {name: m, path: ./does-not-exist, family: falcon}\nmethods:\n  - {method: lora, r: 0, colour: 1}\n',
    );
    const r = cli(['validate', bad]);
    assert.equal(r.code, 2, r.out + r.err);
    assert.match(r.err, /models\[0\]\.family: got "falcon", expected one of "llama", "gemma", "mistral", "template"/);
    assert.match(r.err, /methods\[0\]\.colour: got 1, expected no such key/);
    assert.match(r.err, /methods\[0\]\.r: got 0/);
    const run = cli(['run', bad]);
    assert.equal(run.code, 2, 'run rejects it too, before contacting any server');
  });

  it('prints help for each command', () => {
    for (const c of ['run', 'validate', 'dev', 'grid', 'demo', 'schema']) {
      const r = cli([c, '--help']);
      assert.equal(r.code, 0);
      assert.match(r.out, new RegExp(`Usage: peftgrid ${c}`));
    }
  });

  it('dev up → run --wait → grid results → dev down', () => {
    const up = cli(['dev', 'up'], 180_000);
    assert.equal(up.code, 0, up.err);
    assert.match(up.out, /Temporal server: up at 127\.0\.0\.1:17233/);
    assert.match(up.out, /pollers cpu=1 gpu=1/);

    const cfg = join(dir, 'grid.yaml');
    writeFileSync(
      cfg,
      [
        'name: e2e',
        `store: file://${join(dir, 'store')}`,
        `data: {baseUrl: "file://${SAMPLES}", datasets: [arc_easy, narrativeqa], testSplit: test, maxTrainPerDataset: 16, testSamples: 6}`,
        'models:',
        `  - {name: tiny, path: "${tinyModel('llama')}", family: llama}`,
        'methods:',
        '  - {method: lora, r: 4, alpha: 8}',
        'training: {maxSteps: 4, warmupSteps: 0, lr: 1.0e-3, optimizer: adamw, batchSize: 4, checkpointEverySteps: 2, maxLength: 256}',
        'eval: {maxNewTokens: 6, batchSize: 3}',
      ].join('\n'),
    );
    const run = cli(['run', cfg, '--wait', '--json'], 10 * 60_000);
    assert.equal(run.code, 0, run.out + run.err);
    const [startedLine, resultLine] = run.out.trim().split('\n');
    const started = JSON.parse(startedLine!) as { gridId: string; uiUrl: string; results: string };
    assert.match(started.uiUrl, /^http:\/\/localhost:18233\/namespaces\/default\/workflows\/peftgrid-grid-e2e-/);
    const result = JSON.parse(resultLine!) as { runs: { status: string; metrics: { overall: { n: number } } }[] };
    assert.equal(result.runs[0]!.status, 'completed');
    assert.equal(result.runs[0]!.metrics.overall.n, 6);

    const csv = cli(['grid', 'results', started.gridId, '--format', 'csv']);
    assert.equal(csv.code, 0, csv.err);
    assert.match(csv.out.split('\n')[0]!, /^model,method,label,runKey,status,n,exactMatch/);

    const status = cli(['grid', 'status', started.gridId]);
    assert.match(status.out, /completed/);

    const down = cli(['dev', 'down']);
    assert.equal(down.code, 0, down.err);
    const after = cli(['dev', 'status']);
    assert.equal(after.code, 1);
    assert.match(after.out, /Temporal server: down/);
    assert.match(after.out, /worker: +not running/);
  });
});
