/**
 * Speculative decoding runs where its target runs: both models' passes alternate inside one
 * engine process, with no message per pass. A draft loaded elsewhere (its own engine process) is
 * opened once more in the target's, from its directory and options; loading target and draft into
 * one shared host (`loadModel(dir, { host })`, as the evaluate activity does) avoids that copy.
 */
import { EngineError } from './errors';
import type { EngineHost } from './host';
import type { EngineModel, RemoteLoadInfo } from './session';

/** The draft's model id inside `host`, opening it there on first use (kept until the host closes). */
export async function draftIn(host: EngineHost, draft: EngineModel): Promise<number> {
  const placed = draft.remote();
  if (placed?.host === host) return placed.id;
  let id = host.adopted.get(draft);
  if (!id) {
    id = host.call<RemoteLoadInfo>({ op: 'load', dir: draft.dir, options: draft.loadOptions }).then((info) => info.id);
    host.adopted.set(draft, id);
    id.catch(() => host.adopted.delete(draft)); // a failed load is retried by the next call
  }
  return id;
}

/**
 * @throws EngineError when the target runs on this thread and the draft in an engine process: the
 *   draft would have to be opened a second time here, on the thread the engine process protects.
 */
export function checkSameSide(target: EngineModel, draft: EngineModel): void {
  if (!target.remote() && draft.remote()) {
    throw new EngineError(
      `target ${target.dir} runs on this thread but draft ${draft.dir} in an engine process: load both with the same runIn/host`,
    );
  }
}
