/**
 * The engine process's main (forked by host.ts): owns the ONNX Runtime sessions and answers one
 * request at a time. A generate / speculative / score request runs the whole call here (every batch
 * and every token), so the parent gets one message per call, not one per forward pass.
 */
import { generate } from './generate';
import { scoreContinuation } from './score';
import { loadModel, type EngineModel } from './session';
import { generateSpeculative } from './speculative';
import { generatePromptLookup } from './prompt-lookup';
import {
  fromWireFeed,
  toWireError,
  toWireTensor,
  type EngineReply,
  type EngineRequest,
  type ReadyMessage,
} from './wire';

const models = new Map<number, EngineModel>();
let nextModel = 0;

function model(id: number): EngineModel {
  const m = models.get(id);
  if (!m) throw new Error(`engine process: no model ${id} (released?)`);
  return m;
}

async function handle(req: EngineRequest): Promise<unknown> {
  switch (req.op) {
    case 'load': {
      // 'main' here: this process is the engine process; it must not fork another.
      const m = await loadModel(req.dir, { ...req.options, runIn: 'main' });
      const id = nextModel++;
      models.set(id, m);
      return {
        id,
        config: m.config,
        executionProvider: m.executionProvider,
        inputNames: m.inputNames,
        outputNames: m.outputNames,
        inputMetadata: m.inputMetadata,
      };
    }
    case 'run': {
      const outputs = await model(req.model).run(fromWireFeed(req.feed), req.fetches);
      return Object.fromEntries(Object.entries(outputs).map(([name, t]) => [name, toWireTensor(t)]));
    }
    case 'generate':
      return generate(model(req.model), req.prompts, req.options);
    case 'speculative':
      return generateSpeculative(model(req.target), model(req.draft), req.prompts, req.options);
    case 'prompt-lookup':
      return generatePromptLookup(model(req.model), req.prompts, req.options);
    case 'score':
      return scoreContinuation(model(req.model), req.prompts, req.continuations, req.options);
    case 'release': {
      await models.get(req.model)?.release();
      models.delete(req.model);
      return null;
    }
  }
}

// Requests are served strictly in order: two ORT runs at once would only fight over the same cores.
let queue = Promise.resolve();
process.on('message', (req: EngineRequest) => {
  queue = queue.then(async () => {
    let reply: EngineReply;
    try {
      reply = { id: req.id, ok: true, value: await handle(req) };
    } catch (error) {
      reply = { id: req.id, ok: false, error: toWireError(error) };
    }
    process.send!(reply);
  });
});
// The parent decides when this process ends (SIGKILL from EngineHost.close). A Ctrl-C or SIGTERM
// sent to the whole process group must not kill it under a worker that is shutting down
// gracefully; if the parent itself dies, the IPC channel closes and this process exits.
process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => undefined);
process.on('disconnect', () => process.exit(0));
process.send!({ ready: true, pid: process.pid } satisfies ReadyMessage);
