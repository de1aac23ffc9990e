/**
 * Typed engine errors. Each class says when it is thrown, so callers (the evaluate activity) can
 * map them to retryable or non-retryable failures: a model that breaks the contract fails the same
 * way on every retry.
 */

/** Base class of every error the engine throws on purpose; `name` is the subclass name. */
export class EngineError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * Thrown by `loadModel` when `engine.json` is missing, is not valid JSON, or has a field of the
 * wrong type or range. `path` is the file; `field` the offending field, if one.
 */
export class EngineConfigError extends EngineError {
  constructor(
    message: string,
    readonly path: string,
    readonly field?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Thrown by `loadModel` when ONNX Runtime cannot open `model.onnx`: the file is missing, truncated,
 * not an ONNX protobuf, or needs an execution provider that is not available here.
 */
export class ModelLoadError extends EngineError {
  constructor(
    message: string,
    readonly path: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** One tensor of the graph that breaks the contract, with the reason. */
export interface TensorMismatch {
  /** Graph I/O name. */
  name: string;
  /** What is wrong, e.g. `type float16, expected float32`. */
  problem: string;
}

/**
 * Thrown by `loadModel` when the graph's inputs or outputs do not match docs/contracts.md §2 for the
 * `numLayers` in engine.json: a contract tensor is missing, the graph has an unexpected one, or a
 * tensor has the wrong element type or rank.
 */
export class GraphContractError extends EngineError {
  constructor(
    readonly missingInputs: readonly string[],
    readonly unexpectedInputs: readonly string[],
    readonly missingOutputs: readonly string[],
    readonly unexpectedOutputs: readonly string[],
    readonly mismatched: readonly TensorMismatch[],
  ) {
    const parts: string[] = [];
    const list = (label: string, names: readonly string[]) => {
      if (names.length > 0) parts.push(`${label}: ${names.join(', ')}`);
    };
    list('missing inputs', missingInputs);
    list('unexpected inputs', unexpectedInputs);
    list('missing outputs', missingOutputs);
    list('unexpected outputs', unexpectedOutputs);
    list(
      'mismatched',
      mismatched.map((m) => `${m.name} (${m.problem})`),
    );
    super(`ONNX graph does not match the engine contract: ${parts.join('; ')}`);
  }
}

/**
 * Thrown by `EngineModel.run` before calling ONNX Runtime when the feed lacks a graph input, has a
 * name the graph does not know, or a tensor of the wrong element type or rank. `feed` describes
 * every fed tensor as `name type [dims]`.
 */
export class FeedError extends EngineError {
  constructor(
    message: string,
    readonly feed: string,
  ) {
    super(`${message}; feed: ${feed}`);
  }
}

/**
 * Thrown by `EngineModel.run` when ONNX Runtime itself fails on a feed that passed the checks
 * (e.g. inconsistent dimensions between tensors). Wraps ORT's error as `cause`.
 */
export class SessionRunError extends EngineError {
  constructor(
    message: string,
    readonly feed: string,
    options?: { cause?: unknown },
  ) {
    super(`${message}; feed: ${feed}`, options);
  }
}
