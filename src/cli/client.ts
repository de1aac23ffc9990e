/** Temporal client for the CLI, and starting / describing grid workflows. */
import { Client, Connection, WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { TASK_QUEUES } from '../common/constants';
import { contentHash } from '../common/hash';
import { connectChecked, CONNECT_TIMEOUT_MS } from '../common/temporal-connect';
import { temporalSettings, workflowUrl, type TemporalSettings } from '../common/temporal-env';
import { planRuns } from '../config/plan';
import type { GridConfig } from '../config/schema';
import type { ExperimentGridWorkflowInput, GridResult } from '../contracts';

export async function connectClient(
  settings: TemporalSettings = temporalSettings(),
): Promise<{ client: Client; close: () => Promise<void> }> {
  // Namespace and search attributes now, not as a grid whose first workflow task fails forever.
  const connection = await connectChecked(settings, (options) =>
    Connection.connect({ ...options, connectTimeout: CONNECT_TIMEOUT_MS }),
  );
  return { client: new Client({ connection, namespace: settings.namespace }), close: () => connection.close() };
}

/** The grid workflow id: derived from the config, so starting the same grid twice finds the first. */
export function gridWorkflowId(grid: GridConfig): string {
  return `peftgrid-grid-${grid.name}-${contentHash(grid).slice(0, 10)}`;
}

export interface StartedGrid {
  gridId: string;
  runId: string;
  uiUrl: string;
  runs: number;
  /** false when a grid with the same id was already running (this call attached to it). */
  started: boolean;
}

export async function startGrid(client: Client, grid: GridConfig, settings = temporalSettings()): Promise<StartedGrid> {
  const runs = planRuns(grid);
  const gridId = gridWorkflowId(grid);
  const input: ExperimentGridWorkflowInput = { gridId, grid, runs };
  try {
    const models = grid.models.map((m) => m.name);
    const methods = [...new Set(runs.map((r) => r.method.method))];
    const handle = await client.workflow.start('experimentGridWorkflow', {
      taskQueue: TASK_QUEUES.cpu,
      workflowId: gridId,
      args: [input],
      // Shown in the Temporal UI's list and on the workflow's page.
      staticSummary: `peftgrid grid ${grid.name}: ${runs.length} runs · ${models.join(', ')} × ${methods.join(', ')}`,
      staticDetails: [
        `**${grid.name}** — ${runs.length} runs, concurrency gpu ${grid.concurrency.gpu} + cpu ${grid.concurrency.cpu}, store \`${grid.store}\``,
        '',
        ...runs.map((r) => `- \`${r.runKey}\` ${r.model.name} · ${r.label}`),
      ].join('\n'),
    });
    return {
      gridId,
      runId: handle.firstExecutionRunId,
      uiUrl: workflowUrl(settings, gridId),
      runs: runs.length,
      started: true,
    };
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    const desc = await client.workflow.getHandle(gridId).describe();
    return { gridId, runId: desc.runId, uiUrl: workflowUrl(settings, gridId), runs: runs.length, started: false };
  }
}

export async function gridResult(client: Client, gridId: string): Promise<GridResult> {
  return client.workflow.getHandle(gridId).result() as Promise<GridResult>;
}
