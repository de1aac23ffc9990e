/**
 * exportHfDataset: one split of an HF `datasets` DatasetDict (written by `save_to_disk`), or of a hub
 * dataset repo (staged like hub models, then `load_dataset` on its files), → a raw JSONL object in the
 * store, through `python -m trainer export-dataset` (the library's own readers). From there on the split is a custom JSONL dataset like any other: the same
 * parser, bad rows counted by reason, the same content-addressed keys (the object is named by the
 * sha256 of what was exported, so an edited dataset is prepared anew).
 */
import { mkdir, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Context } from '@temporalio/activity';
import { FAILURES, FailureType, TRAINER_EXIT } from '../src/contracts/failures';
import { contentHash } from '../src/common/hash';
import { runLogger } from '../src/common/logger';
import { joinKey, openStore, sha256File, type ObjectRef } from '../src/store';
import type { ExportHfDatasetInput } from '../src/contracts';
import { failure } from './failure';
import { workDir } from './paths';
import { stageHubModel } from './hub-stage';
import { runTrainer } from './trainer-process';

export type { ExportHfDatasetInput } from '../src/contracts';

export async function exportHfDataset(input: ExportHfDatasetInput): Promise<ObjectRef> {
  const ctx = Context.current();
  const { storeUrl, split, dataset, label, hub } = input;
  const log = runLogger({ activity: 'exportHfDataset', dataset, split });
  let path = input.path;
  if (hub) {
    // The same staging as hub models: one locked cache per repo, a pinned sha reused offline.
    const staged = await stageHubModel(hub.repoId, {
      revision: hub.revision,
      repoType: 'dataset',
      signal: ctx.cancellationSignal,
      heartbeat: (p) => ctx.heartbeat({ ...p, dataset }),
    });
    log.info({ repoId: hub.repoId, sha: staged.revision, bytes: staged.bytes }, 'hub dataset staged');
    path = staged.dir;
  }
  if (!path) throw failure(FailureType.InvalidSpec, `dataset ${dataset}: neither hfDisk nor hub given`);
  const source = hub ? `hub:${hub.repoId}` : path;
  const out = join(workDir('hf-export'), `${contentHash([source, hub?.revision ?? null, split])}.jsonl`);
  await mkdir(dirname(out), { recursive: true });
  const res = await runTrainer({
    args: ['export-dataset', '--path', path, '--split', split, '--out', out, ...(hub ? ['--files'] : [])],
    log,
    signal: ctx.cancellationSignal,
    heartbeat: () => ctx.heartbeat({ phase: 'export-dataset', dataset, split }),
    heartbeatEveryMs: 5000,
  });
  if (res.code !== TRAINER_EXIT.done) {
    await rm(out, { force: true });
    const type = res.error?.type;
    // A missing split or a directory that is no DatasetDict fails the same way on every retry.
    if (res.code === TRAINER_EXIT.invalid && type && Object.hasOwn(FAILURES, type))
      throw failure(type as FailureType, res.error?.message ?? type);
    throw failure(
      FailureType.TrainerCrashed,
      `exporting ${source} split ${split} failed (exit ${res.code ?? res.signal}): ${res.error?.message ?? res.stderrTail.slice(-800)}`,
    );
  }
  const sha256 = await sha256File(out);
  const key = joinKey('datasets', 'raw', `hf-${contentHash(source)}`, dataset, `${label}-${sha256.slice(0, 16)}.jsonl`);
  const store = openStore(storeUrl);
  const head = await store.head(key);
  // Content-addressed: an object under this key already holds these bytes.
  const ref = head?.sha256 === sha256 ? { key, bytes: head.bytes, sha256 } : await store.putFile(key, out);
  log.info({ key, bytes: (await stat(out)).size }, 'exported');
  await rm(out, { force: true });
  return ref;
}
