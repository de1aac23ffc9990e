/**
 * Greedy speculative decoding: a small draft model proposes γ tokens one at a time, the target
 * checks all of them in one forward pass, and the longest prefix on which the target's own argmax
 * agrees is kept, followed by the target's next token. Every emitted token is the target's greedy
 * choice, so the output equals target-only greedy decoding; the draft only decides how many
 * tokens one target pass yields.
 *
 * Both models keep their own KV cache (a name → tensor map, kv-cache.ts). After a verification the
 * rejected columns are cut off the end of the `present.*` tensors; in a batch, where rows accept
 * different counts, the cache keeps the longest row's columns and masks the surplus of the others
 * (attention_mask 0), which the graph treats exactly like left padding. Positions are each row's
 * own token index, so masked columns never shift a row's positions.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Tensor } from 'onnxruntime-node';
import { ATTENTION_MASK, INPUT_IDS, LOGITS, POSITION_IDS, kvNames } from './contract';
import { checkSameSide, draftIn } from './draft-placement';
import { EngineError } from './errors';
import { checkSharedOptions, type GeneratedSequence, type GenerateOptions } from './generate';
import { logitsToKeep } from './feeds';
import { KvCache } from './kv-cache';
import { argmax, lastPositionArgmax, logitsData } from './logits';
import { planBatches, preparePrompts, type LongPromptPolicy } from './prompts';
import { SequenceState, type StopRules } from './sequence-state';
import { CONFIG_FILE, type EngineModel } from './session';
import { percentile } from './stats';
import { registerWireError } from './wire';

/** Options of {@link generateSpeculative}. */
/**
 * Options of {@link generateSpeculative}: generate()'s stopping and prompt-length rules (the long
 * prompt limit is min(maxPositions of both models) − maxNewTokens), plus the speculation knobs.
 */
export interface SpeculativeOptions extends Pick<
  GenerateOptions,
  'maxNewTokens' | 'eosTokenIds' | 'stopSequences' | 'longPrompt'
> {
  /** Draft tokens proposed per target pass; fewer near maxNewTokens, where more cannot be used. @default 4 */
  gamma?: number;
  /** Prompts decoded together; rows that accept fewer tokens carry masked cache columns. @default 1 */
  batchSize?: number;
}

/** One prompt's result: a {@link GeneratedSequence} plus its speculation counters. */
export interface SpeculativeSequence extends GeneratedSequence {
  /** Draft tokens proposed for this prompt while it was unfinished. */
  proposedTokens: number;
  /** Proposed tokens the target agreed with and that became output (tokens after an EOS do not count). */
  acceptedTokens: number;
  /** acceptedTokens / proposedTokens; null when nothing was proposed. */
  acceptanceRate: number | null;
  /** Target forward passes this prompt took part in, the prefill included. */
  targetPasses: number;
  /** Draft forward passes this prompt took part in. */
  draftPasses: number;
  /** generatedTokens / wall time of the prompt's batch (its own time when batchSize is 1). */
  tokensPerSecond: number;
}

/** Totals of a {@link generateSpeculative} call. */
export interface SpeculativeStats {
  /** Σ generatedTokens (up to and including each sequence's EOS, as in generate). */
  generatedTokens: number;
  /** Wall time of the whole call, ms. */
  wallMs: number;
  tokensPerSecond: number;
  proposedTokens: number;
  acceptedTokens: number;
  /** Σ accepted / Σ proposed; null when nothing was proposed. */
  acceptanceRate: number | null;
  /** Target forward passes (one per batch and round, prefill included). */
  targetPasses: number;
  /** Draft forward passes. */
  draftPasses: number;
  /** Time inside target passes (ONNX Runtime plus feed checks), ms: targetMs / targetPasses is the verification cost. */
  targetMs: number;
  /** Time inside draft passes, ms. */
  draftMs: number;
  /** Median time to the first tokens over batches, ms. */
  ttftP50Ms: number | null;
  /** Fraction of the sequences that ran that hit maxNewTokens; 0 when none ran. */
  hitLimitFraction: number;
}

/** Result of {@link generateSpeculative}: `sequences[i]` belongs to `prompts[i]`. */
export interface SpeculativeResult {
  sequences: SpeculativeSequence[];
  stats: SpeculativeStats;
}

/**
 * Thrown by {@link generateSpeculative} / {@link checkDraftPair} before any forward pass when the
 * draft cannot speak for the target: their vocabulary sizes differ, or both engine.json files carry
 * a `tokenizerSha256` and the hashes differ. `field` names the engine.json field compared.
 */
export class DraftMismatchError extends EngineError {
  constructor(
    readonly field: string,
    readonly targetValue: unknown,
    readonly draftValue: unknown,
    targetDir: string,
    draftDir: string,
  ) {
    super(
      `draft ${draftDir} does not match target ${targetDir}: ${field} is ${JSON.stringify(draftValue)} in the draft, ` +
        `${JSON.stringify(targetValue)} in the target; speculative decoding needs one token-id space`,
    );
  }
}

registerWireError(DraftMismatchError);

/** A model's identity as far as the pair check is concerned. */
type PairSide = Pick<EngineModel, 'config' | 'dir'>;

/** `tokenizerSha256` from a model's engine.json when it has one (the exporter may add it later). */
async function tokenizerSha(dir: string): Promise<string | undefined> {
  try {
    const raw = JSON.parse(await readFile(join(dir, CONFIG_FILE), 'utf8')) as Record<string, unknown>;
    return typeof raw.tokenizerSha256 === 'string' ? raw.tokenizerSha256 : undefined;
  } catch {
    return undefined; // the in-memory config is authoritative; the hash is only extra evidence
  }
}

/**
 * Checks that `draft` may propose tokens for `target`: equal vocabSize, and equal
 * `tokenizerSha256` where both engine.json files have one.
 * @throws DraftMismatchError on the first difference.
 */
export async function checkDraftPair(target: PairSide, draft: PairSide): Promise<void> {
  if (target.config.vocabSize !== draft.config.vocabSize) {
    throw new DraftMismatchError('vocabSize', target.config.vocabSize, draft.config.vocabSize, target.dir, draft.dir);
  }
  const [t, d] = await Promise.all([tokenizerSha(target.dir), tokenizerSha(draft.dir)]);
  if (t !== undefined && d !== undefined && t !== d) {
    throw new DraftMismatchError('tokenizerSha256', t, d, target.dir, draft.dir);
  }
}

/** Copies the first `keep` positions of a [b, heads, past, headDim] tensor. */
function sliceSequence(tensor: Tensor, keep: number): Tensor {
  const [b, heads, past, headDim] = tensor.dims as [number, number, number, number];
  const src = tensor.data as Float32Array;
  const out = new Float32Array(b * heads * keep * headDim);
  for (let i = 0; i < b * heads; i++) {
    out.set(src.subarray(i * past * headDim, (i * past + keep) * headDim), i * keep * headDim);
  }
  return new Tensor('float32', out, [b, heads, keep, headDim]);
}

function int64(values: ArrayLike<number>): BigInt64Array {
  const out = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = BigInt(values[i]!);
  return out;
}

/**
 * One model's side of a batch: its KV cache, the attention mask over the cache's columns, and how
 * many tokens of each row's sequence the cache holds. A round appends columns with {@link run};
 * {@link rollback} then keeps a per-row prefix of the columns added since {@link mark}.
 */
export class ModelStream {
  private readonly cache: KvCache;
  private mask = new Uint8Array(0);
  private width = 0;
  private marked = 0;
  /** Tokens of each row's sequence that are in the cache (at positions 0 … fed − 1). */
  readonly fed: number[];
  /** Forward passes run, and the time spent in them (ms). */
  passes = 0;
  ms = 0;

  constructor(
    readonly model: EngineModel,
    private readonly rows: number,
  ) {
    this.cache = KvCache.empty(model.config, rows);
    this.fed = new Array<number>(rows).fill(0);
  }

  /**
   * Feeds `blocks[r]` to row r, its first token at position `starts[r]`. Blocks are right-aligned
   * to the longest; the columns left of a shorter block (and all of an empty one) are masked pads.
   * Returns the logits; the caller disposes them.
   */
  async run(blocks: readonly (readonly number[])[], starts: readonly number[], keep: number): Promise<Tensor> {
    const { rows, width } = this;
    const s = Math.max(1, ...blocks.map((b) => b.length));
    const ids = new Array<number>(rows * s).fill(this.model.config.padTokenId);
    const positions = new Array<number>(rows * s).fill(0);
    const mask = new Uint8Array(rows * (width + s));
    for (let r = 0; r < rows; r++) {
      mask.set(this.mask.subarray(r * width, (r + 1) * width), r * (width + s));
      const block = blocks[r]!;
      for (let j = 0, c = s - block.length; j < block.length; j++, c++) {
        ids[r * s + c] = block[j]!;
        positions[r * s + c] = starts[r]! + j;
        mask[r * (width + s) + width + c] = 1;
      }
    }
    const start = performance.now();
    const outputs = await this.model.run({
      [INPUT_IDS]: new Tensor('int64', int64(ids), [rows, s]),
      [ATTENTION_MASK]: new Tensor('int64', int64(mask), [rows, width + s]),
      [POSITION_IDS]: new Tensor('int64', int64(positions), [rows, s]),
      ...this.cache.feed(),
      ...logitsToKeep(this.model.inputNames, keep),
    });
    this.passes++;
    this.ms += performance.now() - start;
    this.cache.update(outputs);
    this.mask = mask;
    this.width = width + s;
    return outputs[LOGITS]!;
  }

  /** Starts a round: rollback keeps columns relative to this point. */
  mark(): void {
    this.marked = this.width;
  }

  /**
   * Keeps, for each row r, the first `keep[r]` columns added since {@link mark}: the cache is cut
   * to the longest kept prefix and each row's surplus columns are masked.
   */
  rollback(keep: readonly number[]): void {
    const newWidth = this.marked + Math.max(0, ...keep);
    const { rows, width } = this;
    if (newWidth < width) {
      const past = this.cache.feed();
      const sliced: Record<string, Tensor> = {};
      for (const { past: p, present } of kvNames(this.model.config.numLayers))
        sliced[present] = sliceSequence(past[p]!, newWidth);
      this.cache.update(sliced); // disposes the uncut tensors
      const mask = new Uint8Array(rows * newWidth);
      for (let r = 0; r < rows; r++) mask.set(this.mask.subarray(r * width, r * width + newWidth), r * newWidth);
      this.mask = mask;
      this.width = newWidth;
    }
    for (let r = 0; r < rows; r++) this.mask.fill(0, r * newWidth + this.marked + keep[r]!, (r + 1) * newWidth);
  }

  dispose(): void {
    this.cache.dispose();
  }
}

/** Per-row counters of one batch. */
export interface RowCounters {
  proposed: number;
  accepted: number;
  targetPasses: number;
  draftPasses: number;
}

export interface SpeculativeBatch {
  states: SequenceState[];
  counters: RowCounters[];
  ttftMs: number;
  wallMs: number;
  targetPasses: number;
  draftPasses: number;
  targetMs: number;
  draftMs: number;
}

/**
 * The target's half of a round, shared by every drafter: it feeds each unfinished row's unseen
 * tokens plus that row's proposals (rows may propose different counts, none included) in one
 * pass, keeps the longest prefix its own argmax agrees with plus its own next token, and rolls
 * its cache back to the kept columns. Returns each row's accepted count (0 for finished rows).
 */
export async function verifyProposals(
  target: ModelStream,
  seqs: number[][],
  states: readonly SequenceState[],
  counters: RowCounters[],
  proposals: readonly (readonly number[])[],
): Promise<number[]> {
  const rows = seqs.length;
  const vocab = target.model.config.vocabSize;
  const active = states.map((s) => !s.done);
  target.mark();
  const longest = Math.max(0, ...proposals.map((p, r) => (active[r] ? p.length : 0)));
  // Target: the unseen tokens (the prompt at first, then the last emitted token) + the proposals.
  const blocks = seqs.map((seq, r) => (active[r] ? [...seq.slice(target.fed[r]), ...proposals[r]!] : []));
  // Only the last longest + 1 positions are read: the verdicts on the proposals and its own next.
  const logits = await target.run(blocks, target.fed, longest + 1);
  const keep = new Array<number>(rows).fill(0);
  const accepted = new Array<number>(rows).fill(0);
  try {
    // s: the logits' positions (longest + 1 kept, or every fed column for an older export); the
    // fed block is `fedWidth` columns wide, which is what the cache rollback counts in. Blocks are
    // right-aligned, so every row's last token sits in column s − 1.
    const { data, seq: s } = logitsData(logits, rows, vocab);
    const fedWidth = Math.max(1, ...blocks.map((b) => b.length));
    for (let r = 0; r < rows; r++) {
      if (!active[r]) continue;
      const g = proposals[r]!.length;
      // Column s − g − 1 + i holds the target's prediction for proposal i of this row.
      const at = (i: number) => argmax(data, (r * s + s - g - 1 + i) * vocab, vocab);
      let n = 0;
      let own = at(0);
      while (n < g && own === proposals[r]![n]) own = at(++n);
      const emitted = [...proposals[r]!.slice(0, n), own];
      let used = 0;
      for (const token of emitted) {
        if (states[r]!.done) break;
        states[r]!.accept(token);
        used++;
      }
      const c = counters[r]!;
      c.proposed += g;
      c.accepted += Math.min(used, n);
      c.targetPasses++;
      const before = seqs[r]!.length;
      seqs[r]!.push(...emitted);
      keep[r] = fedWidth - g + n;
      target.fed[r] = before + n;
      accepted[r] = n;
    }
  } finally {
    logits.dispose();
  }
  target.rollback(keep);
  return accepted;
}

/**
 * One round for every unfinished row: the draft proposes g tokens, the target verifies them in
 * one pass, rows take their agreed prefix plus the target's token, and both caches roll back.
 */
async function speculativeRound(
  target: ModelStream,
  draft: ModelStream,
  seqs: number[][],
  states: readonly SequenceState[],
  counters: RowCounters[],
  g: number,
): Promise<void> {
  const rows = seqs.length;
  const vocab = target.model.config.vocabSize;
  const active = states.map((s) => !s.done);
  const proposals = seqs.map((): number[] => []);
  draft.mark();
  // Draft: its first pass feeds everything it has not seen (the whole prompt at first, later the
  // one or two tokens emitted by the last round); each later pass feeds the previous proposal.
  const draftFirst = Math.max(1, ...seqs.map((seq, r) => (active[r] ? seq.length - draft.fed[r]! : 0)));
  for (let j = 0; j < g; j++) {
    const blocks = seqs.map((seq, r) =>
      !active[r] ? [] : j === 0 ? seq.slice(draft.fed[r]) : [proposals[r]![j - 1]!],
    );
    const starts = seqs.map((seq, r) => (j === 0 ? draft.fed[r]! : seq.length + j - 1));
    const logits = await draft.run(blocks, starts, 1);
    const next = lastPositionArgmax(logits, rows, vocab);
    logits.dispose();
    for (let r = 0; r < rows; r++) {
      if (!active[r]) continue;
      proposals[r]!.push(next[r]!);
      counters[r]!.draftPasses++;
    }
  }
  const before = seqs.map((seq) => seq.length);
  const accepted = await verifyProposals(target, seqs, states, counters, proposals);
  if (g === 0) return;
  const draftKeep = new Array<number>(rows).fill(0);
  for (let r = 0; r < rows; r++) {
    if (!active[r]) continue;
    // The draft saw proposals 0 … g − 2 (the last one was only predicted).
    const draftSaw = Math.min(accepted[r]!, g - 1);
    draftKeep[r] = draftFirst + draftSaw;
    draft.fed[r] = before[r]! + draftSaw;
  }
  draft.rollback(draftKeep);
}

/**
 * Where a batch's proposals come from. {@link open} is called once per batch; its `round` runs
 * one round for every unfinished row (propose at most g tokens each, then
 * {@link verifyProposals}); `stream` is the draft model's cache when a model drafts, counted in
 * the stats and disposed with the batch.
 */
export interface Drafter {
  open(rows: number): {
    round(
      target: ModelStream,
      seqs: number[][],
      states: readonly SequenceState[],
      counters: RowCounters[],
      g: number,
    ): Promise<void>;
    stream?: ModelStream;
  };
}

/** A draft model proposing g tokens per round, one forward pass each. */
function modelDrafter(draft: EngineModel): Drafter {
  return {
    open(rows) {
      const stream = new ModelStream(draft, rows);
      return {
        stream,
        round: (t, seqs, states, counters, g) => speculativeRound(t, stream, seqs, states, counters, g),
      };
    },
  };
}

async function decodeSpeculative(
  target: EngineModel,
  drafter: Drafter,
  prompts: readonly (readonly number[])[],
  rules: StopRules,
  gamma: number,
): Promise<SpeculativeBatch> {
  const start = performance.now();
  const rows = prompts.length;
  const states = prompts.map(() => new SequenceState(rules));
  const counters = prompts.map(() => ({ proposed: 0, accepted: 0, targetPasses: 0, draftPasses: 0 }));
  const seqs = prompts.map((p) => [...p]);
  const t = new ModelStream(target, rows);
  const { round, stream: d } = drafter.open(rows);
  let ttftMs = 0;
  try {
    while (!states.every((s) => s.done)) {
      // No row may be handed more than it can still emit: a round yields up to g + 1 tokens, and
      // this bound also keeps every fed position below prompt length + maxNewTokens.
      const room = Math.min(...states.filter((s) => !s.done).map((s) => rules.maxNewTokens - s.generated));
      await round(t, seqs, states, counters, Math.min(gamma, room - 1));
      if (ttftMs === 0) ttftMs = performance.now() - start;
    }
  } finally {
    t.dispose();
    d?.dispose();
  }
  return {
    states,
    counters,
    ttftMs,
    wallMs: performance.now() - start,
    targetPasses: t.passes,
    draftPasses: d?.passes ?? 0,
    targetMs: t.ms,
    draftMs: d?.ms ?? 0,
  };
}

/**
 * Applies the defaults of `fn`'s options and rejects invalid ones (gamma, generate()'s shared
 * rules); `maxPositions` bounds the prompts (the smaller model's, for a pair).
 * @throws TypeError on an invalid option.
 */
export function resolveSpeculativeOptions(
  fn: string,
  target: EngineModel,
  maxPositions: number,
  options: SpeculativeOptions,
): SpeculativeRunOptions {
  const gamma = options.gamma ?? 4;
  // More than a few dozen proposals per pass never pays off; the bound catches unit mix-ups.
  if (!Number.isInteger(gamma) || gamma < 1 || gamma > 64) {
    throw new TypeError(`${fn}: gamma must be an integer in [1, 64], got ${gamma}`);
  }
  const checked = checkSharedOptions(fn, maxPositions, {
    ...options,
    batchSize: options.batchSize ?? 1,
    eosTokenIds: options.eosTokenIds ?? target.config.eosTokenIds,
  });
  return { ...checked, gamma };
}

/**
 * Greedy decoding of `target` with `draft` proposing tokens: the same tokens as
 * `generate(target, prompts)`, in fewer target passes when the draft agrees with the target.
 * Prompts are sorted by length into batches of `batchSize` (default 1); results come back in
 * input order. Empty prompts and out-of-vocabulary ids are per-item errors, as in generate.
 * @throws DraftMismatchError when the two models do not share a vocabulary (before any pass).
 * @throws TypeError on invalid options; FeedError / SessionRunError when ORT fails.
 */
export async function generateSpeculative(
  target: EngineModel,
  draft: EngineModel,
  prompts: readonly (readonly number[])[],
  options: SpeculativeOptions = {},
): Promise<SpeculativeResult> {
  const resolved = resolveSpeculativeOptions(
    'generateSpeculative',
    target,
    Math.min(target.config.maxPositions, draft.config.maxPositions),
    options,
  );
  const remote = target.remote();
  if (remote) {
    // Refused here before the draft is opened in the target's engine process.
    await checkDraftPair(target, draft);
    const draftId = await draftIn(remote.host, draft);
    return remote.host.call<SpeculativeResult>({
      op: 'speculative',
      target: remote.id,
      draft: draftId,
      prompts: [...prompts],
      options,
    });
  }
  checkSameSide(target, draft);
  await checkDraftPair(target, draft);
  return runSpeculative(target, modelDrafter(draft), prompts, resolved);
}

/** What {@link runSpeculative} needs of the resolved options. */
export interface SpeculativeRunOptions {
  rules: StopRules;
  gamma: number;
  batchSize: number;
  longPrompt: LongPromptPolicy;
  maxPromptLength: number;
}

/**
 * Greedy decoding of `target` verifying `drafter`'s proposals: prompts sorted into batches,
 * results in input order, per-prompt and total speculation counters. The drafter decides only how
 * many tokens a target pass yields, never which.
 */
export async function runSpeculative(
  target: EngineModel,
  drafter: Drafter,
  prompts: readonly (readonly number[])[],
  { rules, gamma, batchSize, longPrompt, maxPromptLength }: SpeculativeRunOptions,
): Promise<SpeculativeResult> {
  const prepared = preparePrompts(prompts, maxPromptLength, target.config.vocabSize, longPrompt);
  const sequences: SpeculativeSequence[] = prepared.map((p) => ({
    tokens: [],
    finishReason: 'error',
    hitLimit: false,
    truncated: p.truncated,
    generatedTokens: 0,
    ...(p.error !== undefined && { error: p.error }),
    proposedTokens: 0,
    acceptedTokens: 0,
    acceptanceRate: null,
    targetPasses: 0,
    draftPasses: 0,
    tokensPerSecond: 0,
  }));
  const ttfts: number[] = [];
  let targetPasses = 0;
  let draftPasses = 0;
  let targetMs = 0;
  let draftMs = 0;
  const start = performance.now();
  for (const batch of planBatches(
    prepared.filter((p) => p.error === undefined),
    batchSize,
  )) {
    const outcome = await decodeSpeculative(
      target,
      drafter,
      batch.map((p) => p.tokens),
      rules,
      gamma,
    );
    ttfts.push(outcome.ttftMs);
    targetPasses += outcome.targetPasses;
    draftPasses += outcome.draftPasses;
    targetMs += outcome.targetMs;
    draftMs += outcome.draftMs;
    batch.forEach((item, row) => {
      const state = outcome.states[row]!;
      const c = outcome.counters[row]!;
      const reason = state.finishReason ?? 'length';
      sequences[item.index] = {
        tokens: state.tokens,
        finishReason: reason,
        hitLimit: reason === 'length',
        truncated: item.truncated,
        generatedTokens: state.generated,
        proposedTokens: c.proposed,
        acceptedTokens: c.accepted,
        acceptanceRate: c.proposed > 0 ? c.accepted / c.proposed : null,
        targetPasses: c.targetPasses,
        draftPasses: c.draftPasses,
        tokensPerSecond: outcome.wallMs > 0 ? state.generated / (outcome.wallMs / 1000) : 0,
      };
    });
  }
  const wallMs = performance.now() - start;
  const ran = sequences.filter((s) => s.finishReason !== 'error');
  const sum = (f: (s: SpeculativeSequence) => number) => ran.reduce((acc, s) => acc + f(s), 0);
  const generatedTokens = sum((s) => s.generatedTokens);
  const proposedTokens = sum((s) => s.proposedTokens);
  const acceptedTokens = sum((s) => s.acceptedTokens);
  return {
    sequences,
    stats: {
      generatedTokens,
      wallMs,
      tokensPerSecond: wallMs > 0 ? generatedTokens / (wallMs / 1000) : 0,
      proposedTokens,
      acceptedTokens,
      acceptanceRate: proposedTokens > 0 ? acceptedTokens / proposedTokens : null,
      targetPasses,
      draftPasses,
      targetMs,
      draftMs,
      ttftP50Ms: percentile(ttfts, 50),
      hitLimitFraction: ran.length > 0 ? ran.filter((s) => s.hitLimit).length / ran.length : 0,
    },
  };
}
