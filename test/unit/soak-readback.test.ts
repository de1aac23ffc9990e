/**
 * The soak's read-back (bench/cluster-soak.ts): how activity retries and continue-as-new are counted
 * from history events, and which result fields the pass-to-pass comparison holds equal.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RunResult } from '../../src/contracts';
import { comparePasses } from '../../bench/soak-compare';
import { continuedAs, countRetries, startedChildren } from '../../bench/soak-histories';

// Plain numbers where the decoder gives Long (int64 ids): the counting reads ids through String().
type Events = Parameters<typeof countRetries>[0];
const events = (...xs: object[]) => xs as Events;
const scheduled = (id: number, name: string) => ({
  eventId: id,
  activityTaskScheduledEventAttributes: { activityType: { name } },
});
const started = (scheduledEventId: number, attempt: number) => ({
  activityTaskStartedEventAttributes: { scheduledEventId, attempt },
});

test('countRetries sums attempt − 1 per activity type and counts failure and timeout events', () => {
  const byActivity: Record<string, number> = {};
  const c = countRetries(
    events(
      scheduled(5, 'trainModel'),
      started(5, 3),
      scheduled(9, 'exportModel'),
      started(9, 1),
      scheduled(12, 'evaluateModel'),
      started(12, 2),
      { activityTaskTimedOutEventAttributes: {} },
      { workflowTaskTimedOutEventAttributes: {} },
      { workflowTaskFailedEventAttributes: {} },
    ),
    byActivity,
  );
  assert.deepEqual(c, {
    retriedActivities: 2,
    activityRetries: 3,
    activityFailed: 0,
    activityTimedOut: 1,
    workflowTaskTimedOut: 1,
    workflowTaskFailed: 1,
  });
  assert.deepEqual(byActivity, { trainModel: 2, evaluateModel: 1 });
});

test('continuedAs and startedChildren follow the chain by exact run ids', () => {
  const chain = events(
    {
      childWorkflowExecutionStartedEventAttributes: {
        workflowExecution: { workflowId: 'peftgrid-run-a', runId: 'r1' },
      },
    },
    {
      childWorkflowExecutionStartedEventAttributes: {
        workflowExecution: { workflowId: 'peftgrid-run-b', runId: 'r2' },
      },
    },
    { workflowExecutionContinuedAsNewEventAttributes: { newExecutionRunId: 'next' } },
  );
  assert.deepEqual(startedChildren(chain), [
    { workflowId: 'peftgrid-run-a', runId: 'r1' },
    { workflowId: 'peftgrid-run-b', runId: 'r2' },
  ]);
  assert.equal(continuedAs(chain), 'next');
  assert.equal(continuedAs(chain.slice(0, 2)), undefined);
});

function result(runKey: string, exactMatch: number, trainLoss: number, tokensPerSec: number): RunResult {
  return {
    runKey,
    model: 'tiny-llama',
    method: 'lora',
    label: 'lora r=4',
    status: 'completed',
    metrics: {
      overall: { n: 4, metrics: { exactMatch: { estimate: exactMatch, lower: 0, upper: 1, n: 4 } } },
      byDataset: {},
    },
    training: { steps: 2, trainLoss, trainPerplexity: Math.exp(trainLoss), tokensPerSec },
    throughput: { tokensPerSec, ttftMsP50: 1, tokenLatencyMsP50: 1, tokenLatencyMsP95: 2, hitLimitFraction: 0 },
  } as RunResult;
}

test('comparePasses: timings may differ, a metric or a loss may not, a missing run is named', () => {
  const a = [result('k1', 0.5, 10.1, 100), result('k2', 0.25, 10.2, 100)];
  const same = comparePasses(a, [result('k1', 0.5, 10.1, 55), result('k2', 0.25, 10.2, 300)]);
  assert.equal(same.identical, 2);
  assert.deepEqual(same.differences, []);

  const diff = comparePasses(a, [result('k1', 0.75, 10.1, 100), result('k2', 0.25, 10.200001, 100)]);
  assert.equal(diff.identical, 0);
  assert.deepEqual(
    diff.differences.map((d) => [d.runKey, d.field, d.a, d.b]),
    [
      ['k1', 'metrics.overall.metrics.exactMatch.estimate', 0.5, 0.75],
      ['k2', 'training.trainLoss', 10.2, 10.200001],
      ['k2', 'training.trainPerplexity', Math.exp(10.2), Math.exp(10.200001)],
    ],
  );

  const missing = comparePasses(a, [result('k1', 0.5, 10.1, 100), result('k3', 0.5, 10.1, 100)]);
  assert.deepEqual(missing.missing, ['k2', 'k3']);
});
