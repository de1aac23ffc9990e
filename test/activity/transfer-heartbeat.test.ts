/**
 * Nothing long runs without a heartbeat (issue #14, item 3): a 64 MiB raw split fetched from an
 * s3:// source and committed into an s3:// store, both through a link slowed to 16 MiB/s, by the
 * real downloadDataset on a real worker against the dev server, under a 2 s heartbeatTimeout and
 * no retry. The transfer takes several heartbeat timeouts; it completes only because every store
 * transfer heartbeats its bytes (before, the S3 fetch and the commit were silent and the server
 * timed the activity out). The server's own record of the heartbeats shows the bytes moving.
 */
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { downloadDataset } from '../../activities/download';
import { S3ObjectStore } from '../../src/store';
import { scratchDir } from '../helpers/fixtures';
import { startS3Server, type S3Server } from '../helpers/s3-server';
import { startThrottledProxy, type ThrottledProxy } from '../helpers/throttle-proxy';
import { localTemporal } from '../helpers/tiny-grid';
import { TRANSFER_HEARTBEAT_TIMEOUT_MS, transferWorkflow } from '../helpers/transfer-workflow';

const MiB = 1 << 20;
const BYTES = 64 * MiB;
const RATE = 16 * MiB; // bytes/s each way: ~4 s down, ~4 s up, i.e. 4 heartbeat timeouts in all

type Beat = { phase?: string; bytes?: number; totalBytes?: number };

describe('a 64 MiB transfer through a slowed S3 under a 2 s heartbeat timeout', { timeout: 5 * 60_000 }, () => {
  const dir = scratchDir('transfer-heartbeat');
  let s3: S3Server;
  let proxy: ThrottledProxy;
  let env: TestWorkflowEnvironment;

  before(async () => {
    Runtime.install({ logger: new DefaultLogger('WARN') });
    s3 = await startS3Server(join(dir, 'weed'), 31000 + (process.pid % 40) * 20);
    proxy = await startThrottledProxy(Number(new URL(s3.endpoint).port), RATE);
    // Every S3 client the activity opens goes through the slow link.
    Object.assign(process.env, s3.env, { AWS_ENDPOINT_URL: proxy.url, PEFTGRID_DATA_DIR: join(dir, 'worker') });
    env = await localTemporal();
  });
  after(async () => {
    await env?.teardown();
    await proxy?.close();
    await s3?.stop();
  });

  it('completes, with heartbeats carrying bytes through the download and the commit', async () => {
    const data = Buffer.alloc(BYTES);
    for (let i = 0; i < BYTES; i += 4096) data.write(`q${i}\ta${i}\n`, i);
    const local = join(dir, 'train.tsv');
    writeFileSync(local, data);
    const sourceUrl = `s3://${s3.bucket}/src-${process.pid}`;
    // The source is put in place directly, not through the proxy.
    const direct = new S3ObjectStore(sourceUrl, { client: { endpoint: s3.endpoint } });
    await direct.putFile('boolq/train.tsv', local);
    direct.destroy();

    const taskQueue = `transfer-${process.pid}`;
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowsPath: require.resolve('../helpers/transfer-workflow'),
      activities: { downloadDataset },
    });
    const input = {
      storeUrl: `s3://${s3.bucket}/store-${process.pid}`,
      baseUrl: sourceUrl,
      dataset: 'boolq',
      split: 'train',
    };
    const beats: Beat[] = [];
    const t0 = Date.now();
    const ref = await worker.runUntil(async () => {
      const handle = await env.client.workflow.start(transferWorkflow, {
        taskQueue,
        workflowId: `transfer-${process.pid}-${Date.now()}`,
        args: [input],
      });
      let done = false;
      const watch = (async () => {
        while (!done) {
          const act = (await handle.describe()).raw.pendingActivities?.[0];
          const payload = act?.heartbeatDetails?.payloads?.[0]?.data;
          if (payload) {
            const beat = JSON.parse(Buffer.from(payload).toString('utf8')) as Beat;
            if (JSON.stringify(beat) !== JSON.stringify(beats.at(-1))) beats.push(beat);
          }
          await new Promise((r) => setTimeout(r, 200));
        }
      })();
      try {
        return await handle.result();
      } finally {
        done = true;
        await watch;
      }
    });
    const wallMs = Date.now() - t0;

    assert.equal(ref.bytes, BYTES);
    assert.equal(ref.sha256, createHash('sha256').update(data).digest('hex'));
    assert.ok(
      wallMs > 2.5 * TRANSFER_HEARTBEAT_TIMEOUT_MS,
      `the transfer must outlast the heartbeat timeout several times to mean anything; took ${wallMs} ms`,
    );
    assert.ok(proxy.forwarded.down >= BYTES && proxy.forwarded.up >= BYTES, JSON.stringify(proxy.forwarded));
    // What the server recorded (throttled by the SDK to 0.8 × the timeout): bytes in between, in both phases.
    const moving = (phase: string) =>
      beats.filter((b) => b.phase === phase && b.totalBytes === BYTES && b.bytes! > 0 && b.bytes! < BYTES);
    assert.ok(moving('download-data').length >= 1, `heartbeats seen: ${JSON.stringify(beats)}`);
    assert.ok(moving('upload-data').length >= 1, `heartbeats seen: ${JSON.stringify(beats)}`);
    console.log(
      `# 64 MiB down + up at 16 MiB/s: ${wallMs} ms, ${beats.length} distinct heartbeats recorded by the server`,
    );
  });
});
