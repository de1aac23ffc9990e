/**
 * Replay: histories recorded from real runs (test/fixtures/histories/, see record.ts there) must
 * replay against the current workflow code without a determinism error. A running cluster holds
 * such histories; a worker whose code replays them differently fails those workflows' tasks. The
 * second test proves the check can fail: a copy of the workflow code with one extra timer is
 * rejected on the same histories.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import * as proto from '@temporalio/proto';
import { patchProtobufRoot } from '@temporalio/proto/lib/patch-protobuf-root';
import { DefaultLogger, Runtime, Worker, type ReplayResult } from '@temporalio/worker';
import { REPO } from '../helpers/fixtures';

Runtime.install({ logger: new DefaultLogger('ERROR') });

const HISTORY_DIR = join(REPO, 'test', 'fixtures', 'histories');

interface Recorded {
  workflowId: string;
  history: {
    events: Array<{
      eventType?: string;
      workflowExecutionStartedEventAttributes?: { workflowType?: { name?: string } };
    }>;
  };
}

function recorded(): Recorded[] {
  return readdirSync(HISTORY_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(HISTORY_DIR, f), 'utf8')) as Recorded);
}

/**
 * JSON history → proto. Not via the SDK's historyFromJSON: in this install @temporalio/common and
 * @temporalio/proto each carry their own copy of protobufjs, and protojson rejects the other
 * copy's types ("type must be a Type"). So parse with the copy that built the History type.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const protojson = require(
  require.resolve('protobufjs/ext/protojson', { paths: [dirname(require.resolve('@temporalio/proto'))] }),
) as {
  fromJson(
    type: unknown,
    json: unknown,
    opts: { ignoreUnknownFields: boolean },
  ): proto.temporal.api.history.v1.History | null;
};
const historyType = (patchProtobufRoot(proto) as unknown as { lookupType(name: string): unknown }).lookupType(
  'temporal.api.history.v1.History',
);

function toProto(r: Recorded): { workflowId: string; history: proto.temporal.api.history.v1.History } {
  const history = protojson.fromJson(historyType, r.history, { ignoreUnknownFields: true });
  if (!history) throw new TypeError(`${r.workflowId}: not a history`);
  return { workflowId: r.workflowId, history };
}

const workflowType = (r: Recorded) => r.history.events[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name;

async function replayAll(workflowsPath: string): Promise<ReplayResult[]> {
  const results: ReplayResult[] = [];
  for await (const r of Worker.runReplayHistories({ workflowsPath }, recorded().map(toProto))) results.push(r);
  return results;
}

describe('workflow replay against recorded histories', { timeout: 3 * 60_000 }, () => {
  it('the fixtures cover every workflow type', () => {
    const types = new Set(recorded().map(workflowType));
    for (const t of ['experimentGridWorkflow', 'fineTuneRunWorkflow', 'prepareDataWorkflow'])
      assert.ok(types.has(t), `no recorded history of ${t}`);
  });

  it('the current workflow code replays every recorded history', async () => {
    const results = await replayAll(require.resolve('../../workflows'));
    assert.equal(results.length, recorded().length);
    for (const r of results) {
      assert.equal(
        r.error,
        undefined,
        `${r.workflowId} no longer replays (a non-deterministic change: gate it with patched() or bump the task-queue version, see docs/operations.md): ${r.error?.message}`,
      );
    }
  });

  it('a non-deterministic change (one extra timer before the first command) is caught', async () => {
    // A copy of workflows/ with imports pointed back at the repo, so only the mutation differs.
    const dir = join(REPO, '.data', 'test-runs', `replay-mutant-${process.pid}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const srcDir = join(REPO, 'workflows');
    for (const f of readdirSync(srcDir).filter((n) => n.endsWith('.ts'))) {
      let text = readFileSync(join(srcDir, f), 'utf8')
        .replaceAll("'../src/", `'${REPO}/src/`)
        .replaceAll("'../activities'", `'${REPO}/activities'`);
      if (f === 'prepare-data.ts') {
        const sig = /export async function prepareDataWorkflow\([^)]*\)[^{]*\{/;
        assert.match(text, sig, 'prepareDataWorkflow signature not found: update this mutation');
        text = `import { sleep as mutantSleep } from '@temporalio/workflow';\n${text.replace(sig, (m) => `${m}\n  await mutantSleep(1);`)}`;
      }
      writeFileSync(join(dir, f), text);
    }
    try {
      const results = await replayAll(join(dir, 'index.ts'));
      const prepare = results.find((r) =>
        recorded().find((h) => h.workflowId === r.workflowId && workflowType(h) === 'prepareDataWorkflow'),
      );
      assert.ok(prepare, 'the prepareDataWorkflow history was replayed');
      assert.ok(prepare.error, 'the mutated prepareDataWorkflow replayed without error: the replay check cannot fail');
      assert.match(`${prepare.error.name} ${prepare.error.message}`, /[Dd]etermin|[Nn]ondetermin/);
      // The untouched workflows still replay: the failure is the mutation, not the copy.
      for (const r of results.filter((x) => x !== prepare))
        assert.equal(r.error, undefined, `${r.workflowId}: ${r.error?.message}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
