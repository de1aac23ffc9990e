/**
 * Hub models staged through `python -m trainer stage` from a local hub (test/helpers/hub-server.ts):
 * one download per file however many slots ask at once, a pinned sha reused without the hub, a stage
 * whose holder died recovered, tokenizer-only stages without weights, and typed refusals.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DefaultLogger } from '@temporalio/worker';
import { MockActivityEnvironment } from '@temporalio/testing';
import { hubCacheDir } from '../../activities/hub-stage';
import { localModelDir, stageModelFiles } from '../../activities/model-source';
import { stageModel, type StageModelInput, type StageModelResult } from '../../activities/stage-model';
import { scratchDir, tinyModel } from '../helpers/fixtures';
import { startHubServer, type HubServer } from '../helpers/hub-server';

const MODEL_FILES = readdirSync(tinyModel('llama'))
  .filter((f) => !f.startsWith('.'))
  .sort();

describe('hub models staged into a locked per-worker cache', { timeout: 5 * 60_000 }, () => {
  const root = scratchDir('hub-stage');
  let hub: HubServer;
  let worker = 0;
  /** A fresh worker data dir: its own cache. */
  const freshWorker = () => {
    process.env.PEFTGRID_DATA_DIR = join(root, `worker-${++worker}`);
  };
  before(async () => {
    hub = await startHubServer({
      'acme/tiny-llama': { revisions: { main: tinyModel('llama'), v2: tinyModel('mistral') } },
      'meta-llama/Llama-2-7b-hf': { revisions: { main: tinyModel('llama') }, gated: true },
    });
    process.env.HF_ENDPOINT = hub.endpoint;
    process.env.HF_HOME = join(root, 'hf-home');
    delete process.env.HF_TOKEN;
  });
  after(async () => hub?.stop());
  const gets = (repo: string) =>
    Object.fromEntries(
      [...hub.gets].filter(([k]) => k.startsWith(`${repo}/`)).map(([k, n]) => [k.slice(repo.length + 1), n]),
    );

  it('two concurrent stagings of one model fetch each file once, into one directory, at the resolved sha', async () => {
    freshWorker();
    const heartbeats: unknown[] = [];
    const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
    env.on('heartbeat', (d: unknown) => heartbeats.push(d));
    const run = () =>
      env.run<[StageModelInput], StageModelResult, typeof stageModel>(stageModel, { modelPath: 'acme/tiny-llama' });
    const [a, b] = await Promise.all([run(), run()]);
    assert.equal(a.revision, hub.sha('acme/tiny-llama'));
    assert.deepEqual(a, b);
    assert.equal(a.files, MODEL_FILES.length);
    assert.deepEqual(gets('acme/tiny-llama'), Object.fromEntries(MODEL_FILES.map((f) => [f, 1])), 'one GET per file');
    const dir = await localModelDir('acme/tiny-llama', { revision: a.revision as string });
    assert.equal(dir, join(hubCacheDir('acme/tiny-llama'), a.revision as string));
    for (const f of MODEL_FILES)
      assert.ok(readFileSync(join(dir, f)).equals(readFileSync(join(tinyModel('llama'), f))), f);
    // Both slots heartbeat into one mock context: the holder's bytes, the waiter's zeros while it waits.
    const beats = heartbeats as { phase: string; bytes: number; totalBytes: number }[];
    assert.ok(beats.every((h) => h.phase === 'download-model'));
    assert.ok(
      beats.some((h) => h.totalBytes > 25e6 && h.bytes === h.totalBytes),
      JSON.stringify(beats),
    );
    // A pinned sha already staged needs no hub at all.
    hub.gets.clear();
    process.env.HF_ENDPOINT = 'http://127.0.0.1:9'; // nothing listens there
    try {
      assert.equal(await localModelDir('acme/tiny-llama', { revision: a.revision as string }), dir);
    } finally {
      process.env.HF_ENDPOINT = hub.endpoint;
    }
    assert.equal(hub.gets.size, 0);
  });

  it('a revision resolves to its own commit and files', async () => {
    freshWorker();
    const staged = await stageModelFiles('acme/tiny-llama', { revision: 'v2' });
    assert.equal(staged.revision, hub.sha('acme/tiny-llama', 'v2'));
    const cfg = JSON.parse(readFileSync(join(staged.dir, 'config.json'), 'utf8')) as { model_type: string };
    assert.equal(cfg.model_type, 'mistral');
  });

  it('a stage whose holder died (its lock and partial files left behind) is recovered, not waited on', async () => {
    freshWorker();
    const sha = hub.sha('acme/tiny-llama');
    const cache = hubCacheDir('acme/tiny-llama');
    const dead = spawnSync('true').pid as number; // exited: its pid is free
    mkdirSync(join(cache, `${sha}.partial`), { recursive: true });
    writeFileSync(join(cache, `${sha}.partial`, 'model.safetensors'), 'half a model');
    writeFileSync(join(cache, '.lock'), JSON.stringify({ pid: dead, host: hostname(), token: 'dead' }));
    const dir = await localModelDir('acme/tiny-llama');
    assert.ok(
      readFileSync(join(dir, 'model.safetensors')).equals(readFileSync(join(tinyModel('llama'), 'model.safetensors'))),
    );
    assert.deepEqual(
      readdirSync(cache).filter((f) => f.startsWith('.lock')),
      [],
      'lock released',
    );
  });

  it('tokenizerOnly stages config and tokenizer files, never the weights', async () => {
    freshWorker();
    hub.gets.clear();
    const dir = await localModelDir('acme/tiny-llama', { tokenizerOnly: true });
    assert.ok(!readdirSync(dir).some((f) => f.endsWith('.safetensors')));
    assert.ok(readdirSync(dir).includes('tokenizer.json'));
    assert.equal(gets('acme/tiny-llama')['model.safetensors'], undefined);
  });

  it('gated models need HF_TOKEN; refusals and missing revisions or repos are typed and non-retryable', async () => {
    freshWorker();
    const rejects = async (path: string, type: string, words: RegExp, revision?: string) =>
      assert.rejects(
        () => stageModelFiles(path, revision ? { revision } : {}),
        (err: Error & { type?: string; nonRetryable?: boolean }) => {
          assert.equal(err.type, type);
          assert.equal(err.nonRetryable, true);
          assert.match(err.message, words);
          return true;
        },
      );
    await rejects('meta-llama/Llama-2-7b-hf', 'ModelGated', /meta-llama\/Llama-2-7b-hf.*HF_TOKEN is not set/);
    process.env.HF_TOKEN = 'hf_wrong';
    await rejects('meta-llama/Llama-2-7b-hf', 'ModelGated', /HF_TOKEN is set/);
    process.env.HF_TOKEN = hub.token;
    assert.equal((await stageModelFiles('meta-llama/Llama-2-7b-hf')).revision, hub.sha('meta-llama/Llama-2-7b-hf'));
    delete process.env.HF_TOKEN;
    await rejects('acme/tiny-llama', 'RevisionNotFound', /acme\/tiny-llama.*'v9'/, 'v9');
    await rejects('acme/no-such-model', 'ModelNotFound', /acme\/no-such-model/);
  });
});
