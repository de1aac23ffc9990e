import {
  clusterDown,
  clusterEnv,
  clusterScript,
  clusterStatus,
  clusterUp,
  type ClusterStatus,
} from '../../infra/cluster-stack';
import { UsageError } from './args';

function printStatus(s: ClusterStatus): void {
  process.stdout.write(
    `Temporal cluster: ${s.ready ? 'ready' : 'not ready'} at ${s.address}, namespace ${s.namespace}\n`,
  );
  process.stdout.write(`                  ${s.detail}\n`);
}

function printEnv(): void {
  const env = clusterEnv();
  process.stdout.write('\nConnect the CLI and workers to it with:\n');
  for (const [k, v] of Object.entries(env)) process.stdout.write(`  export ${k}=${v}\n`);
  process.stdout.write('then start workers with `node --import tsx workers/main.ts [--queues cpu,gpu]`.\n');
}

export async function clusterCommand(args: string[]): Promise<number> {
  const say = (l: string) => process.stderr.write(`[cluster] ${l}\n`);
  switch (args[0]) {
    case 'up': {
      const s = await clusterUp(say);
      printStatus(s);
      printEnv();
      return s.ready ? 0 : 1;
    }
    case 'down':
      clusterDown();
      process.stdout.write('cluster stopped (data kept in .data/cluster)\n');
      return 0;
    case 'status': {
      process.stdout.write(clusterScript('status'));
      const s = await clusterStatus();
      printStatus(s);
      return s.ready ? 0 : 1;
    }
    case 'env':
      process.stdout.write(clusterScript('env'));
      return 0;
    default:
      throw new UsageError(`cluster needs up, down, status or env (got ${JSON.stringify(args[0] ?? '')})`);
  }
}
