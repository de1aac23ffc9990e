/**
 * The KV cache as a map keyed by graph I/O names (transformers.js style): the graph's
 * `present.N.key` outputs of one step become the `past_key_values.N.key` inputs of the next.
 * Tensors are handed over by reference: the engine itself never copies or re-concatenates cache
 * data. The graph's own Concat (present = past ⊕ new) and ORT's copy of each output are inherent
 * in the contract's I/O (present has a new shape every step, so it cannot be written in place).
 * Preallocated outputs do not help on onnxruntime-node 1.30 (checked for issue #15): a tensor
 * passed in `fetches` is filled, but `run` still returns a new tensor over a fresh copy of it, so
 * a ping-pong cache would add a copy rather than remove one. Removing the per-step copy needs a
 * static-cache graph (present written into a fixed-size past by index), a contract change.
 */
import { Tensor } from 'onnxruntime-node';
import type { EngineConfig } from './config';
import { kvNames, type KvName } from './contract';
import { EngineError } from './errors';

export class KvCache {
  private readonly names: KvName[];
  private tensors = new Map<string, Tensor>();

  private constructor(config: EngineConfig) {
    this.names = kvNames(config.numLayers);
  }

  /** A cache with zero past positions for a batch of `rows`: the prefill step's past. */
  static empty(config: EngineConfig, rows: number): KvCache {
    const cache = new KvCache(config);
    const dims = [rows, config.numKvHeads, 0, config.headDim];
    for (const { past } of cache.names) cache.tensors.set(past, new Tensor('float32', new Float32Array(0), dims));
    return cache;
  }

  /** The cache inputs of the next run, keyed by `past_key_values.*` names. */
  feed(): Record<string, Tensor> {
    return Object.fromEntries(this.tensors);
  }

  /** Number of cached positions (the `past` dim). */
  get length(): number {
    const first = this.tensors.values().next().value;
    return first ? first.dims[2]! : 0;
  }

  /**
   * Takes `present.*` from a run's outputs as the next past and drops the previous tensors.
   * @throws EngineError when an output is missing (the graph check makes this a bug, not input).
   */
  update(outputs: Readonly<Record<string, Tensor>>): void {
    const next = new Map<string, Tensor>();
    for (const { past, present } of this.names) {
      const tensor = outputs[present];
      if (!tensor) throw new EngineError(`run output lacks ${present}`);
      next.set(past, tensor);
    }
    this.dispose();
    this.tensors = next;
  }

  /** Releases the cached tensors (lets ORT/GC reclaim their buffers now). */
  dispose(): void {
    for (const tensor of this.tensors.values()) tensor.dispose();
    this.tensors.clear();
  }
}
