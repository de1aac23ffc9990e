// Worker-thread side of tokenizeTrainingParallel: turns chunks of records into training examples
// exactly as the sequential loop does (formatExample → tokenizeForTraining). Tokenizers are loaded
// once per model directory and kept, so a pooled worker stays warm across calls. Ids travel back
// as one transferred Int32Array per chunk, not as arrays of numbers, so the copy costs nothing.
import { parentPort } from 'node:worker_threads';
import { formatExample, type ModelFamily } from './formats';
import { AnswerTooLongError, tokenizeForTraining } from './tokenize';
import { loadTokenizer, type TokenizerWrapper } from './tokenizer';
import type { QaRecord } from './unifiedqa';

export interface ChunkRequest {
  job: number;
  chunk: number;
  modelPath: string;
  family: ModelFamily;
  maxLength: number;
  records: QaRecord[];
}

export interface ChunkResult {
  job: number;
  chunk: number;
  /** All ids of the chunk's kept examples, back to back. */
  ids: Int32Array;
  /** Per record: ids length, or -1 when skipped (AnswerTooLongError). */
  lengths: Int32Array;
  promptLengths: Int32Array;
}

export type ChunkReply = ChunkResult | { job: number; chunk: number; error: { name: string; message: string } };

const tokenizers = new Map<string, Promise<TokenizerWrapper>>();

async function handle(req: ChunkRequest): Promise<ChunkResult> {
  let pending = tokenizers.get(req.modelPath);
  if (!pending) {
    pending = loadTokenizer(req.modelPath);
    tokenizers.set(req.modelPath, pending);
    pending.catch(() => tokenizers.delete(req.modelPath)); // a failed load is retried next time
  }
  const tok = await pending;
  const lengths = new Int32Array(req.records.length);
  const promptLengths = new Int32Array(req.records.length);
  const parts: number[][] = [];
  let total = 0;
  for (const [i, record] of req.records.entries()) {
    try {
      const ex = tokenizeForTraining(tok, formatExample(record, req.family, { tokenizerInfo: tok }), req.maxLength);
      lengths[i] = ex.ids.length;
      promptLengths[i] = ex.promptLength;
      parts.push(ex.ids);
      total += ex.ids.length;
    } catch (err) {
      if (!(err instanceof AnswerTooLongError)) throw err;
      lengths[i] = -1;
    }
  }
  const ids = new Int32Array(total);
  let at = 0;
  for (const p of parts) {
    ids.set(p, at);
    at += p.length;
  }
  return { job: req.job, chunk: req.chunk, ids, lengths, promptLengths };
}

const port = parentPort;
if (!port) throw new Error('tokenize-worker must run in a worker thread');
port.on('message', (req: ChunkRequest) => {
  handle(req).then(
    (res) =>
      port.postMessage(res satisfies ChunkReply, [
        res.ids.buffer as ArrayBuffer,
        res.lengths.buffer as ArrayBuffer,
        res.promptLengths.buffer as ArrayBuffer,
      ]),
    (err: unknown) => {
      const e = err instanceof Error ? err : new Error(String(err));
      port.postMessage({
        job: req.job,
        chunk: req.chunk,
        error: { name: e.name, message: e.message },
      } satisfies ChunkReply);
    },
  );
});
