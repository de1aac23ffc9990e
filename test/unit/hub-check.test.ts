/**
 * validate's hub checks: a malformed hub id (or a revision on a non-hub path) is a config error
 * naming models[i]; against a local hub (test/helpers/hub-server.ts) gated, missing and
 * unknown-revision models are errors before any work; an unreachable hub is only a note.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { checkHubModels } from '../../src/config/hub-check';
import { ConfigError, parseGridYaml } from '../../src/config/validate';
import { hubIdProblem, looksLikeHubId } from '../../src/common/hub-id';
import { startHubServer, type HubServer } from '../helpers/hub-server';

const cwd = mkdtempSync(join(tmpdir(), 'peftgrid-hub-check-'));
mkdirSync(join(cwd, 'model'));
writeFileSync(join(cwd, 'model', 'config.json'), '{}');
writeFileSync(join(cwd, 'model', 'tokenizer.json'), '{}');

const grid = (models: string) => `
name: t
models:
${models}
methods:
  - {method: icl, shots: [0]}
`;
const issuesOf = (yaml: string) => {
  try {
    parseGridYaml(yaml, 'test.yaml', cwd);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.issues;
  }
  return assert.fail('config was accepted');
};

describe('hub ids in a grid', () => {
  it('are recognized by shape', () => {
    for (const id of ['meta-llama/Llama-2-7b-hf', 'gpt2', 'google/gemma-2b', 'mistralai/Mistral-7B-v0.1'])
      assert.equal(hubIdProblem(id), null, id);
    for (const id of ['a/b/c', 'has space', 'owner/', '/abs', 'x--y/z', 'name.', 'héllo/x'])
      assert.notEqual(hubIdProblem(id), null, id);
    assert.equal(looksLikeHubId('s3://bucket/m'), false);
    assert.equal(looksLikeHubId('./model'), false);
  });

  it('a malformed id is an error naming models[i].path, the value and what was expected', () => {
    const issues = issuesOf(grid('  - {name: m, path: "meta llama/Llama 2", family: llama}'));
    assert.equal(issues.length, 1);
    assert.equal(issues[0]?.path, 'models[0].path');
    assert.equal(issues[0]?.value, '"meta llama/Llama 2"');
    assert.match(issues[0]?.expected ?? '', /hub id \(owner\/name/);
  });

  it('a revision on a local directory is an error; on a hub id it is kept', () => {
    const issues = issuesOf(grid('  - {name: m, path: ./model, family: llama, revision: main}'));
    assert.deepEqual(
      issues.map((i) => i.path),
      ['models[0].revision'],
    );
    const g = parseGridYaml(grid('  - {name: m, path: acme/m, family: llama, revision: v2}'), 't', cwd);
    assert.equal(g.models[0]?.revision, 'v2');
  });
});

describe('the hub lookup', () => {
  let hub: HubServer;
  before(async () => {
    const model = join(cwd, 'model');
    hub = await startHubServer({
      'acme/open': { revisions: { main: model, v2: model } },
      'acme/gated': { revisions: { main: model }, gated: true },
      'acme/qa': { revisions: { main: model, v1: model }, type: 'dataset' },
    });
  });
  after(async () => hub?.stop());
  const check = (models: string, token?: string) =>
    checkHubModels(parseGridYaml(grid(models), 't', cwd), { endpoint: hub.endpoint, ...(token ? { token } : {}) });

  it('passes ids and revisions that exist, gated ones with the token', async () => {
    const res = await check(
      [
        '  - {name: a, path: acme/open, family: llama}',
        '  - {name: b, path: acme/open, family: llama, revision: v2}',
        '  - {name: c, path: acme/gated, family: llama}',
        '  - {name: d, path: ./model, family: llama}',
      ].join('\n'),
      hub.token,
    );
    assert.deepEqual(res, { issues: [], notes: [] });
  });

  it('reports gated (with or without a token), missing and unknown-revision models', async () => {
    const models = [
      '  - {name: a, path: acme/gated, family: llama}',
      '  - {name: b, path: acme/missing, family: llama}',
      '  - {name: c, path: acme/open, family: llama, revision: nope}',
    ].join('\n');
    const res = await check(models);
    assert.deepEqual(
      res.issues.map((i) => [i.path, i.value]),
      [
        ['models[0].path', '"acme/gated"'],
        ['models[1].path', '"acme/missing"'],
        ['models[2].revision', '"nope"'],
      ],
    );
    assert.match(res.issues[0]?.expected ?? '', /401.*HF_TOKEN is not set/);
    assert.match(res.issues[1]?.expected ?? '', /exists on http:\/\/127/);
    const wrong = await check(models, 'hf_wrong');
    assert.match(wrong.issues[0]?.expected ?? '', /403.*HF_TOKEN is set but not granted/);
  });

  it('checks custom hub datasets through the dataset API: missing ones and unknown revisions are errors', async () => {
    const withData = (datasets: string) =>
      checkHubModels(
        parseGridYaml(
          grid('  - {name: a, path: ./model, family: llama}').replace(
            'models:',
            `data:\n  datasets:\n${datasets}\nmodels:`,
          ),
          't',
          cwd,
        ),
        { endpoint: hub.endpoint },
      );
    const ok = await withData(
      [
        '    - {name: q, format: yes_no, hub: acme/qa}',
        '    - {name: r, format: yes_no, hub: acme/qa, revision: v1}',
      ].join('\n'),
    );
    assert.deepEqual(ok, { issues: [], notes: [] });
    const bad = await withData(
      [
        '    - {name: q, format: yes_no, hub: acme/open}', // a model repo, not a dataset
        '    - {name: r, format: yes_no, hub: acme/qa, revision: nope}',
      ].join('\n'),
    );
    assert.deepEqual(
      bad.issues.map((i) => [i.path, i.value]),
      [
        ['data.datasets[0].hub', '"acme/open"'],
        ['data.datasets[1].revision', '"nope"'],
      ],
    );
    assert.match(bad.issues[0]?.expected ?? '', /a dataset that exists on/);
  });

  it('an unreachable hub is one note, not an error', async () => {
    const g = parseGridYaml(
      grid(['  - {name: a, path: acme/x, family: llama}', '  - {name: b, path: acme/y, family: llama}'].join('\n')),
      't',
      cwd,
    );
    const res = await checkHubModels(g, { endpoint: 'http://127.0.0.1:9', timeoutMs: 500 });
    assert.equal(res.issues.length, 0);
    assert.equal(res.notes.length, 1);
    assert.match(res.notes[0] ?? '', /hub not reachable at http:\/\/127\.0\.0\.1:9/);
  });
});
