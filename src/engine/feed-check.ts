/**
 * Feed checks done before ONNX Runtime sees a feed, and the feed description attached to every
 * run error: ORT's own messages name one node deep in the graph, not the tensor the caller built
 * wrong, so the engine reports names, dims and types itself (the transformers.js habit).
 */
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { FeedError } from './errors';

/** A feed keyed by graph input name. */
export type Feed = Record<string, Tensor>;

/** `name type [d0,d1,…]` for each tensor, in feed order; e.g. `input_ids int64 [2,7]`. */
export function describeFeed(feed: Feed): string {
  return Object.entries(feed)
    .map(([name, tensor]) => `${name} ${tensor.type} [${tensor.dims.join(',')}]`)
    .join('; ');
}

/**
 * Checks the feed against the session's inputs: every input present, no unknown names, element
 * types equal, ranks equal where the graph states a shape.
 * @throws FeedError listing every problem and describing the whole feed.
 */
export function checkFeed(feed: Feed, inputs: readonly InferenceSession.ValueMetadata[]): void {
  const problems: string[] = [];
  const known = new Set(inputs.map((m) => m.name));
  const missing = inputs.filter((m) => !(m.name in feed)).map((m) => m.name);
  const unknown = Object.keys(feed).filter((name) => !known.has(name));
  if (missing.length > 0) problems.push(`missing inputs: ${missing.join(', ')}`);
  if (unknown.length > 0) problems.push(`unknown inputs: ${unknown.join(', ')}`);
  for (const meta of inputs) {
    const tensor = feed[meta.name];
    if (!tensor || !meta.isTensor) continue;
    if (tensor.type !== meta.type) problems.push(`${meta.name}: type ${tensor.type}, graph expects ${meta.type}`);
    if (meta.shape.length > 0 && tensor.dims.length !== meta.shape.length) {
      problems.push(
        `${meta.name}: rank ${tensor.dims.length}, graph expects ${meta.shape.length} [${meta.shape.join(',')}]`,
      );
    }
  }
  if (problems.length > 0) throw new FeedError(`invalid feed: ${problems.join('; ')}`, describeFeed(feed));
}
