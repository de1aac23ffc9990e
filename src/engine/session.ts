/**
 * Opening an exported model (`model.onnx` + `engine.json`) and running it with checked feeds, in an
 * engine process (host.ts, the default) or on the calling thread.
 */
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { InferenceSession, type Tensor } from 'onnxruntime-node';
import { readEngineConfig, type EngineConfig } from './config';
import { validateGraph } from './contract';
import { EngineError, ModelLoadError, SessionRunError } from './errors';
import { checkFeed, describeFeed, type Feed } from './feed-check';
import { EngineHost, engineRunInFromEnv, type EngineRunIn } from './host';
import { fromWireTensor, toWireFeed, type WireTensor } from './wire';

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
  /**
   * Where ONNX Runtime runs when no `host` is given: `process`, a new engine process owned by the
   * model (closed by release); `main`, on the calling thread, which blocks its event loop for
   * every forward pass (the old path: benchmarks' baseline, and the engine process itself).
   * @default PEFTGRID_ENGINE_RUN_IN, else 'process'
   */
  runIn?: EngineRunIn;
  /**
   * Load into this engine process (a target and its draft share one: speculative decoding runs
   * both there). The host outlives the model; close it yourself.
   */
  host?: EngineHost;
}

/** The parts of an ORT InferenceSession EngineModel uses: a local session or one in an engine process. */
export type SessionLike = Pick<InferenceSession, 'inputNames' | 'outputNames' | 'inputMetadata' | 'release' | 'run'>;

/** Where a model's session lives when it is not on this thread. */
export interface RemotePlacement {
  host: EngineHost;
  /** The model's id inside the engine process. */
  id: number;
  /** The host was started for this model alone: release closes it. */
  owned: boolean;
}

/** What the engine process answers to a load request. */
export interface RemoteLoadInfo {
  id: number;
  config: EngineConfig;
  executionProvider: 'cpu' | 'cuda';
  inputNames: string[];
  outputNames: string[];
  inputMetadata: InferenceSession.ValueMetadata[];
}

/** The model file and config names inside an export directory (docs/contracts.md §2). */
export const MODEL_FILE = 'model.onnx';
export const CONFIG_FILE = 'engine.json';

function resolveOptions(options: LoadModelOptions): {
  intraOpNumThreads: number;
  executionProvider: ExecutionProviderChoice;
} {
  const { intraOpNumThreads = 0, executionProvider = 'cpu' } = options;
  if (!Number.isInteger(intraOpNumThreads) || intraOpNumThreads < 0) {
    throw new TypeError(`loadModel: intraOpNumThreads must be a non-negative integer, got ${intraOpNumThreads}`);
  }
  if (!['cpu', 'cuda', 'auto'].includes(executionProvider)) {
    throw new TypeError(`loadModel: executionProvider must be cpu, cuda or auto, got ${String(executionProvider)}`);
  }
  if (options.runIn !== undefined && options.runIn !== 'process' && options.runIn !== 'main') {
    throw new TypeError(`loadModel: runIn must be 'process' or 'main', got ${String(options.runIn)}`);
  }
  if (options.host && options.runIn === 'main')
    throw new TypeError("loadModel: a host runs the model in its engine process; runIn 'main' contradicts it");
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
    private readonly session: SessionLike,
    /** The validated engine.json. */
    readonly config: EngineConfig,
    /** The export directory the model came from. */
    readonly dir: string,
    /** The execution provider the session actually uses. */
    readonly executionProvider: 'cpu' | 'cuda',
    /** The engine process holding the session; undefined when it runs on this thread. */
    private readonly placement?: RemotePlacement,
    /** The options it was opened with, to open it again elsewhere (a draft in its target's host). */
    readonly loadOptions: Pick<LoadModelOptions, 'intraOpNumThreads' | 'executionProvider'> = {},
  ) {}

  /**
   * The engine process that runs this model's generate / score calls whole, or undefined when
   * they run on this thread.
   * @throws EngineError when the model was released.
   */
  remote(): RemotePlacement | undefined {
    if (this.released) throw new EngineError(`model ${this.dir} was released`);
    return this.placement;
  }

  /** Graph input metadata (names, types, shapes), in graph order. */
  get inputMetadata(): readonly InferenceSession.ValueMetadata[] {
    return this.session.inputMetadata;
  }

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
      // From an engine process the error is already a SessionRunError (or the process is gone).
      if (cause instanceof EngineError) throw cause;
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
    if (this.placement?.owned) await this.placement.host.close();
  }
}

/** A session in an engine process: every call is one message; tensors travel as typed arrays. */
function remoteSession(host: EngineHost, info: RemoteLoadInfo): SessionLike {
  return {
    inputNames: info.inputNames,
    outputNames: info.outputNames,
    inputMetadata: info.inputMetadata,
    // EngineModel.run only ever passes a feed of tensors and an optional list of output names.
    run: (async (feed: Feed, fetches?: string[]) => {
      const out = await host.call<Record<string, WireTensor>>({
        op: 'run',
        model: info.id,
        feed: toWireFeed(feed),
        ...(fetches ? { fetches } : {}),
      });
      return Object.fromEntries(Object.entries(out).map(([name, t]) => [name, fromWireTensor(t)]));
    }) as InferenceSession['run'],
    async release() {
      // A killed host (cancellation) already freed everything with its process.
      if (!host.dead) await host.call({ op: 'release', model: info.id }).catch(() => undefined);
    },
  };
}

async function loadRemote(
  dir: string,
  host: EngineHost,
  owned: boolean,
  options: { intraOpNumThreads: number; executionProvider: ExecutionProviderChoice },
): Promise<EngineModel> {
  try {
    const info = await host.call<RemoteLoadInfo>({ op: 'load', dir, options });
    return new EngineModel(
      remoteSession(host, info),
      info.config,
      dir,
      info.executionProvider,
      { host, id: info.id, owned },
      options,
    );
  } catch (error) {
    if (owned) await host.close();
    throw error;
  }
}

/**
 * Opens `dir/model.onnx` with its `dir/engine.json` and checks the graph against the contract, in
 * an engine process (`host`, or a new one per model) unless `runIn` is 'main'. Errors are the same
 * classes either way.
 * @throws EngineConfigError when engine.json is missing or invalid.
 * @throws ModelLoadError when model.onnx is missing or ORT cannot parse it.
 * @throws GraphContractError when the graph's I/O names, types or ranks break the contract.
 * @throws TypeError on invalid options.
 */
export async function loadModel(dir: string, options: LoadModelOptions = {}): Promise<EngineModel> {
  const { intraOpNumThreads, executionProvider } = resolveOptions(options);
  if (options.host) return loadRemote(dir, options.host, false, { intraOpNumThreads, executionProvider });
  if ((options.runIn ?? engineRunInFromEnv()) === 'process')
    return loadRemote(dir, new EngineHost(), true, { intraOpNumThreads, executionProvider });
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
  return new EngineModel(session, config, dir, provider, undefined, { intraOpNumThreads, executionProvider });
}
