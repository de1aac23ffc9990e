/**
 * What crosses between the worker and its engine process (host.ts ↔ host-process.ts): requests,
 * replies, tensors as plain {type, dims, data} and errors rebuilt as their own classes, so a caller
 * of the engine cannot tell (and need not care) that ONNX Runtime ran in another process. The IPC
 * channel uses Node's 'advanced' serialization (structured clone), so typed arrays travel as
 * binary, not as JSON arrays of numbers.
 */
import { Tensor } from 'onnxruntime-node';
import {
  EngineConfigError,
  EngineError,
  FeedError,
  GraphContractError,
  ModelLoadError,
  SessionRunError,
} from './errors';
import type { Feed } from './feed-check';
import type { GenerateOptions } from './generate';
import type { ScoreOptions } from './score';
import type { LoadModelOptions } from './session';
import type { PromptLookupOptions } from './prompt-lookup';
import type { SpeculativeOptions } from './speculative';

/** A tensor as data: `data` is the tensor's own typed array (float32 → Float32Array, int64 → BigInt64Array …). */
export interface WireTensor {
  type: Tensor.Type;
  dims: readonly number[];
  data: Tensor.DataType;
}

/** One request to the engine process; `id` pairs it with its reply. */
export type EngineRequest =
  | { id: number; op: 'load'; dir: string; options: Omit<LoadModelOptions, 'host' | 'runIn'> }
  | { id: number; op: 'run'; model: number; feed: Record<string, WireTensor>; fetches?: string[] }
  | { id: number; op: 'generate'; model: number; prompts: (readonly number[])[]; options: GenerateOptions }
  | {
      id: number;
      op: 'speculative';
      target: number;
      draft: number;
      prompts: (readonly number[])[];
      options: SpeculativeOptions;
    }
  | { id: number; op: 'prompt-lookup'; model: number; prompts: (readonly number[])[]; options: PromptLookupOptions }
  | {
      id: number;
      op: 'score';
      model: number;
      prompts: (readonly number[])[];
      continuations: (readonly number[])[];
      options: ScoreOptions;
    }
  | { id: number; op: 'release'; model: number };

/** The error fields that survive the trip; `props` are the class's own fields (feed, path, missingInputs …). */
export interface WireError {
  name: string;
  message: string;
  stack?: string;
  props: Record<string, unknown>;
}

export type EngineReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: WireError };

/** Sent once by the engine process when it is listening; nothing is sent to it before. */
export interface ReadyMessage {
  ready: true;
  pid: number;
}

export function toWireTensor(tensor: Tensor): WireTensor {
  return { type: tensor.type, dims: [...tensor.dims], data: tensor.data };
}

export function fromWireTensor(wire: WireTensor): Tensor {
  return new Tensor(wire.type as 'float32', wire.data as Float32Array, wire.dims);
}

export function toWireFeed(feed: Feed): Record<string, WireTensor> {
  return Object.fromEntries(Object.entries(feed).map(([name, t]) => [name, toWireTensor(t)]));
}

export function fromWireFeed(feed: Readonly<Record<string, WireTensor>>): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(feed).map(([name, t]) => [name, fromWireTensor(t)]));
}

// Classes an engine call may throw on purpose. DraftMismatchError is registered by speculative.ts
// (it imports this module, so importing it here would be circular).
const known = new Map<string, new (...args: never[]) => Error>([
  ['EngineError', EngineError],
  ['EngineConfigError', EngineConfigError],
  ['ModelLoadError', ModelLoadError],
  ['GraphContractError', GraphContractError],
  ['FeedError', FeedError],
  ['SessionRunError', SessionRunError],
  ['TypeError', TypeError],
  ['RangeError', RangeError],
]);

/** Makes `cls` come back from the engine process as itself (instanceof and fields intact). */
export function registerWireError(cls: new (...args: never[]) => Error): void {
  known.set(cls.name, cls);
}

/** Plain data only: a `cause` (often an ORT Error) is folded into the message's stack, not sent. */
export function toWireError(error: unknown): WireError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error), props: {} };
  const props: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(error)) {
    if (key !== 'cause' && key !== 'name') props[key] = value;
  }
  const cause = error.cause instanceof Error ? `\ncaused by: ${error.cause.message}` : '';
  return { name: error.name, message: error.message, ...(error.stack ? { stack: error.stack + cause } : {}), props };
}

/**
 * Rebuilds an error from the engine process as an instance of its own class (constructors are not
 * re-run: their arguments are gone, only the fields they set are known). Unknown names become a
 * plain EngineError that keeps the original name in its message.
 */
export function fromWireError(wire: WireError): Error {
  const cls = known.get(wire.name);
  if (!cls) return new EngineError(`${wire.name}: ${wire.message}`);
  const error = Object.create(cls.prototype) as Error;
  Object.defineProperty(error, 'message', { value: wire.message, writable: true, configurable: true });
  if (wire.name !== cls.prototype.name)
    Object.defineProperty(error, 'name', { value: wire.name, writable: true, configurable: true });
  Object.assign(error, wire.props);
  Object.defineProperty(error, 'stack', {
    value: `${wire.stack ?? `${wire.name}: ${wire.message}`}\n    (in the engine process)`,
    writable: true,
    configurable: true,
  });
  return error;
}
