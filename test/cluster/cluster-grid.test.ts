/**
 * A tiny grid on the real cluster (temporal-server on PostgreSQL, mTLS), with:
 * - Prometheus: the worker's /metrics is scraped while it trains; the step, loss, tokens/s and
 *   the SDK's workflow-task latency series must be there with sane values;
 * - secrets: S3 keys, HF_TOKEN and a Temporal API key set to distinctive values for the worker and
 *   the client; every workflow history (`temporal workflow show --output json`, the Temporal CLI
 *   over mTLS), every worker log line, the server's log and every object in the store are scanned
 *   for them: hits must be 0.
 * The store is S3 (SeaweedFS, so the keys are really used) when bootstrap built it, else file://.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { registerNamespace } from '../../infra/cluster-stack';
import { TASK_QUEUES } from '../../src/common/constants';
import { planRuns } from '../../src/config/plan';
import type { GridResult } from '../../src/contracts';
import { openStore } from '../../src/store';
import { clusterCliArgs, clusterWorker, ensureCluster, type ClusterHandle } from '../helpers/cluster';
import { scratchDir, TEMPORAL_BIN } from '../helpers/fixtures';
import { startS3Server, weedAvailable, type S3Server } from '../helpers/s3-server';
import { tinyLoraGrid } from '../helpers/tiny-grid';
import { waitForPollers, type WorkerProcess } from '../helpers/worker-process';
import { Client } from '@temporalio/client';

const METRICS_PORT = 27291; // the SDK's exporter takes 27292
const S3_BASE = 27245; // SeaweedFS takes 27245..27260
const stamp = Date.now().toString(36);
const SECRETS = {
  AWS_ACCESS_KEY_ID: `AKIAPGLEAK${stamp.toUpperCase()}`,
  AWS_SECRET_ACCESS_KEY: `s3-secret-never-leak-${stamp}`,
  HF_TOKEN: `hf_neverLeakToken${stamp}`,
  TEMPORAL_API_KEY: `tapikey-never-leak-${stamp}`,
};

function parseProm(text: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    out.set(m[1]!, [...(out.get(m[1]!) ?? []), Number(m[3])]);
  }
  return out;
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

function hits(text: string | Buffer): string[] {
  const s = typeof text === 'string' ? text : text.toString('latin1');
  return Object.entries(SECRETS)
    .filter(([, v]) => s.includes(v))
    .map(([k]) => k);
}

describe('a grid on the cluster: Prometheus series and no secret anywhere', { timeout: 20 * 60_000 }, () => {
  const dir = scratchDir('cluster-grid');
  let h: ClusterHandle;
  let s3: S3Server | undefined;
  let worker: WorkerProcess | undefined;
  const namespace = `peftgrid-grid-${stamp}`;

  before(async () => {
    h = await ensureCluster();
    // A namespace of its own: run ids are content-derived, so a re-run of the tier starts fresh.
    await registerNamespace({ ...h.settings, namespace }, (l) => console.log(`[cluster] ${l}`));
    if (weedAvailable()) s3 = await startS3Server(join(dir, 's3'), S3_BASE, SECRETS);
  });
  after(async () => {
    worker?.child.kill('SIGKILL');
    await h?.connection.close().catch(() => undefined);
    await s3?.stop();
  });

  it('completes; /metrics has step, loss, tokens/s, workflow-task latency; secrets: 0 hits', async () => {
    const env = { ...SECRETS, ...(s3?.env ?? {}), ...SECRETS, TEMPORAL_NAMESPACE: namespace };
    const client = new Client({ connection: h.connection, namespace });
    worker = clusterWorker(h, join(dir, 'worker'), 'w', {
      env: { ...env, PEFTGRID_METRICS_PORT: String(METRICS_PORT), PEFTGRID_METRICS_HOST: '127.0.0.1' },
    });
    await waitForPollers(client, 120_000);
    Object.assign(process.env, s3?.env ?? {}, SECRETS); // the test's own store reads
    const store = s3 ? `s3://${s3.bucket}/cluster-grid-${stamp}` : `file://${join(dir, 'store')}`;
    const grid = tinyLoraGrid({ name: 'cluster-grid', store, maxSteps: 30, checkpointEverySteps: 5 });
    const runs = planRuns(grid);
    const gridId = `cluster-grid-${stamp}`;
    const t0 = Date.now();
    const handle = await client.workflow.start('experimentGridWorkflow', {
      taskQueue: TASK_QUEUES.cpu,
      workflowId: gridId,
      args: [{ gridId, grid, runs }],
    });

    // Scrape while training runs: the run's gauges exist only while it reports.
    let prom = new Map<string, number[]>();
    const deadline = Date.now() + 8 * 60_000;
    while (Date.now() < deadline) {
      try {
        prom = parseProm(await (await fetch(`http://127.0.0.1:${METRICS_PORT}/metrics`)).text());
        if ((prom.get('peftgrid_train_step')?.[0] ?? 0) >= 3 && prom.has('peftgrid_train_tokens_per_second')) break;
      } catch {
        /* not up yet */
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    const step = prom.get('peftgrid_train_step')?.[0] ?? NaN;
    const loss = prom.get('peftgrid_train_loss')?.[0] ?? NaN;
    const tps = prom.get('peftgrid_train_tokens_per_second')?.[0] ?? NaN;
    const wftCount = prom.get('temporal_workflow_task_execution_latency_count')?.[0] ?? NaN;
    const wftSum = prom.get('temporal_workflow_task_execution_latency_sum')?.[0] ?? NaN;
    console.log(
      `PROMETHEUS step=${step} loss=${loss} tokens/s=${tps} workflow_task_execution_latency count=${wftCount} sum=${wftSum}` +
        ` series=${prom.size}`,
    );
    assert.ok(step >= 3 && step <= 30, `peftgrid_train_step ${step}`);
    assert.ok(loss > 0 && loss < 20, `peftgrid_train_loss ${loss}`);
    assert.ok(tps > 0, `peftgrid_train_tokens_per_second ${tps}`);
    assert.ok(
      wftCount >= 1 && wftSum >= 0,
      `workflow-task latency series: ${[...prom.keys()].filter((k) => k.includes('workflow_task')).join(', ')}`,
    );

    const result = (await handle.result()) as GridResult;
    const wall = (Date.now() - t0) / 1000;
    assert.equal(result.runs[0]!.status, 'completed', result.runs[0]!.error);
    assert.equal(result.runs[0]!.training?.steps, 30);
    console.log(`CLUSTER GRID completed in ${wall.toFixed(1)} s (store ${s3 ? 's3' : 'file'})`);

    // The secret scan: every execution of every workflow in the namespace.
    const tlsArgs = clusterCliArgs(h, namespace);
    let histories = 0;
    const found: string[] = [];
    for await (const wf of client.workflow.list()) {
      const json = execFileSync(
        TEMPORAL_BIN,
        ['workflow', 'show', '--workflow-id', wf.workflowId, '--run-id', wf.runId, '--output', 'json', ...tlsArgs],
        { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 },
      );
      assert.ok(json.includes('"events"'), `no history for ${wf.workflowId}`);
      histories++;
      found.push(...hits(json).map((k) => `${k} in history ${wf.workflowId}`));
    }
    const logText = worker.output();
    found.push(...hits(logText).map((k) => `${k} in the worker log`));
    const serverLog = join(h.env.TEMPORAL_TLS_CA!, '..', '..', 'server.log');
    if (existsSync(serverLog)) found.push(...hits(readFileSync(serverLog)).map((k) => `${k} in server.log`));
    let objects = 0;
    if (s3) {
      const st = openStore(store);
      for (const o of await st.list('')) {
        objects++;
        found.push(...hits(await st.get(o.key)).map((k) => `${k} in s3 object ${o.key}`));
      }
    } else {
      for (const f of filesUnder(join(dir, 'store'))) {
        objects++;
        found.push(...hits(readFileSync(f)).map((k) => `${k} in ${f}`));
      }
    }
    // Local scratch of the worker (staged data, checkpoints, specs) is part of what it writes.
    for (const f of filesUnder(join(dir, 'worker'))) found.push(...hits(readFileSync(f)).map((k) => `${k} in ${f}`));
    console.log(
      `SECRET SCAN values checked: ${Object.keys(SECRETS).join(', ')}; histories=${histories}, worker log lines=` +
        `${logText.split('\n').length}, store objects=${objects}; hits: ${found.length}`,
    );
    assert.ok(histories >= 3, `expected the grid, prepare and run workflows, got ${histories}`);
    assert.ok(objects > 0);
    assert.deepEqual(found, []);
  });
});
