import { devDown, devStatus, devUp, type DevStatus } from '../../infra/dev-stack';
import { UsageError } from './args';

export function printStatus(s: DevStatus): void {
  const w = s.worker.pid
    ? `running (pid ${s.worker.pid}), pollers cpu=${s.worker.pollers.cpu ?? 0} gpu=${s.worker.pollers.gpu ?? 0}`
    : 'not running';
  process.stdout.write(
    `Temporal server: ${s.server.reachable ? `up at ${s.address}` : 'down'}${s.server.pid ? ` (pid ${s.server.pid})` : ''}\n`,
  );
  process.stdout.write(`Web UI:          ${s.server.reachable ? s.uiUrl : '-'}\n`);
  process.stdout.write(`worker:          ${w}\n`);
}

export async function devCommand(args: string[]): Promise<number> {
  const say = (l: string) => process.stderr.write(`[dev] ${l}\n`);
  switch (args[0]) {
    case 'up':
      printStatus(await devUp({ say }));
      return 0;
    case 'down':
      await devDown({ say });
      process.stdout.write('embedded stack stopped\n');
      return 0;
    case 'status': {
      const s = await devStatus();
      printStatus(s);
      return s.server.reachable && s.worker.pid ? 0 : 1;
    }
    default:
      throw new UsageError(`dev needs up, down or status (got ${JSON.stringify(args[0] ?? '')})`);
  }
}
