/**
 * The worker process of bench/workflow-task-latency.ts: workers/main.ts's createWorkers (cpu + gpu
 * queues in one process) with the bench's workflows on the cpu queue. A separate process, so the
 * bench's own client (which schedules the stream of workflows) is never stalled by the worker's
 * event loop. PEFTGRID_ENGINE_RUN_IN in its environment picks where ONNX Runtime runs.
 */
import './quiet-logs';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { createWorkers } from '../workers/create';

Runtime.install({ logger: new DefaultLogger('WARN') });

async function main(): Promise<void> {
  const connection = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS! });
  const workers = await createWorkers({
    connection,
    namespace: 'default',
    overrides: { workflowsPath: require.resolve('./workflows/latency') },
  });
  process.once('SIGTERM', () => workers.forEach((w) => w.shutdown()));
  await Promise.all(workers.map((w) => w.run()));
  await connection.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
