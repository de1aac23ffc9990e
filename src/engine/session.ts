/**
 * Opening an exported model (`model.onnx` + `engine.json`) and running it with checked feeds.
 */
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { InferenceSession, type Tensor } from 'onnxruntime-node';
import { readEngineConfig, type EngineConfig } from './config';
import { validateGraph } from './contract';
import { EngineError, ModelLoadError, SessionRunError } from './errors';
import { checkFeed, describeFeed, type Feed } from './feed-check';

/** Execution provider choice for {@link loadModel}. */
export type ExecutionProviderChoice = 'cpu' | 'cuda' | 'auto';

/** Options of {@link loadModel}. */
export interface LoadModelOptions {
  /**
   * Threads ONNX Runtime may use inside one operator (the matmuls). 0 lets ORT use every core;
   * set it when several sessions or workers share a machine, so they do not oversubscribe it.
   * @default 0
   */
  intraOpNumThreads?: number;
  /**
   * Where to run: `cpu`; `cuda` (fails with ModelLoadError where the CUDA provider is not
   * installed — the npm package ships it only when installed with CUDA binaries); `auto` tries
   * CUDA and falls back to CPU.
   * @default 'cpu'
   */
  executionProvider?: ExecutionProviderChoice;
}

/** The model file and config names inside an export directory (docs/contracts.md §2). */
export const MODEL_FILE = 'model.onnx';
export const CONFIG_FILE = 'engine.json';

function resolveOptions(options: LoadModelOptions): Required<LoadModelOptions> {
  const { intraOpNumThreads = 0, executionProvider = 'cpu' } = options;
  if (!Number.isInteger(intraOpNumThreads) || intraOpNumThreads < 0) {
    throw new TypeError(`loadModel: intraOpNumThreads must be a non-negative integer, got ${intraOpNumThreads}`);
  }
  if (!['cpu', 'cuda', 'auto'].includes(executionProvider)) {
    throw new TypeError(`loadModel: executionProvider must be cpu, cuda or auto, got ${String(executionProvider)}`);
  }
  return { intraOpNumThreads, executionProvider };
}

async function createSession(
  path: string,
  provider: 'cpu' | 'cuda',
  intraOpNumThreads: number,
): Promise<InferenceSession> {
  try {
    return await InferenceSession.create(path, {
      executionProviders: [provider],
      intraOpNumThreads,
      graphOptimizationLevel: 'all',
    });
  } catch (cause) {
    throw new ModelLoadError(
      `cannot open ${path} with the ${provider} execution provider: ${(cause as Error).message}`,
      path,
      { cause },
    );
  }
}

/** An opened, contract-checked model. Call {@link EngineModel.release} when done. */
export class EngineModel {
  private released = false;

  constructor(
    private readonly session: InferenceSession,
    /** The validated engine.json. */
    readonly config: EngineConfig,
    /** The export directory the model came from. */
    readonly dir: string,
    /** The execution provider the session actually uses. */
    readonly executionProvider: 'cpu' | 'cuda',
  ) {}

  /** Graph input names, in graph order. */
  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  /** Graph output names, in graph order. */
  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /**
   * Runs the graph. Checks the feed against the graph's inputs first; `fetches` limits the outputs
   * copied back (e.g. only `logits` when the KV cache is not reused).
   * @throws FeedError when names, types or ranks are wrong (ORT is not called).
   * @throws SessionRunError when ORT fails; the message lists the feed's names, dims and types.
   */
  async run(feed: Feed, fetches?: readonly string[]): Promise<Record<string, Tensor>> {
    if (this.released) throw new EngineError(`model ${this.dir} was released`);
    checkFeed(feed, this.session.inputMetadata);
    try {
      return fetches ? await this.session.run(feed, [...fetches]) : await this.session.run(feed);
    } catch (cause) {
      throw new SessionRunError(`ONNX Runtime failed on ${this.dir}: ${(cause as Error).message}`, describeFeed(feed), {
        cause,
      });
    }
  }

  /** Frees the native session. Idempotent; `run` afterwards throws. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.session.release();
  }
}

/**
 * Opens `dir/model.onnx` with its `dir/engine.json` and checks the graph against the contract.
 * @throws EngineConfigError when engine.json is missing or invalid.
 * @throws ModelLoadError when model.onnx is missing or ORT cannot parse it.
 * @throws GraphContractError when the graph's I/O names, types or ranks break the contract.
 * @throws TypeError on invalid options.
 */
export async function loadModel(dir: string, options: LoadModelOptions = {}): Promise<EngineModel> {
  const { intraOpNumThreads, executionProvider } = resolveOptions(options);
  // engine.json first: it is cheap, and the graph check needs numLayers.
  const config = await readEngineConfig(join(dir, CONFIG_FILE));
  const modelPath = join(dir, MODEL_FILE);
  try {
    await access(modelPath);
  } catch (cause) {
    throw new ModelLoadError(`model file ${modelPath} does not exist`, modelPath, { cause });
  }
  let session: InferenceSession;
  let provider: 'cpu' | 'cuda' = executionProvider === 'cpu' ? 'cpu' : 'cuda';
  try {
    session = await createSession(modelPath, provider, intraOpNumThreads);
  } catch (error) {
    if (executionProvider !== 'auto') throw error;
    provider = 'cpu';
    session = await createSession(modelPath, provider, intraOpNumThreads);
  }
  try {
    validateGraph(session, config);
  } catch (error) {
    await session.release();
    throw error;
  }
  return new EngineModel(session, config, dir, provider);
}
