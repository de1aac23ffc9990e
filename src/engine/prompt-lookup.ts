/**
 * Prompt-lookup decoding: speculative decoding with no draft model. A row's proposal is what
 * followed the latest earlier occurrence of its last n tokens (n from `maxNgram` down to 1) in its
 * own sequence, prompt and output so far. Extractive QA answers are spans of the passage, so once
 * the first tokens of an answer are out, the rest is usually one lookup away. The target verifies
 * proposals exactly as it verifies a draft model's ({@link verifyProposals}), so the output is
 * target-only greedy decoding, token for token; a row with no match runs a plain greedy step.
 */
import {
  resolveSpeculativeOptions,
  runSpeculative,
  verifyProposals,
  type Drafter,
  type SpeculativeOptions,
  type SpeculativeResult,
} from './speculative';
import type { EngineModel } from './session';

/** Options of {@link generatePromptLookup}: speculative decoding's, with the n-gram size in place of a draft. */
export interface PromptLookupOptions extends SpeculativeOptions {
  /** Longest suffix n-gram looked up in the sequence; shorter ones are tried when it has no match. @default 3 */
  maxNgram?: number;
}

/**
 * Up to `g` tokens proposed for `seq`: the tokens after the latest earlier occurrence of its last
 * n tokens, longest n first (a longer match is better evidence). Empty when nothing matches.
 */
export function lookupProposal(seq: readonly number[], maxNgram: number, g: number): number[] {
  if (g <= 0) return [];
  const len = seq.length;
  for (let n = Math.min(maxNgram, len - 1); n >= 1; n--) {
    // Candidate starts i of an earlier copy of seq[len − n, len): the latest one first, since
    // the text nearest the end (the answer being copied) is the likeliest continuation.
    for (let i = len - n - 1; i >= 0; i--) {
      let j = 0;
      while (j < n && seq[i + j] === seq[len - n + j]) j++;
      if (j === n) return seq.slice(i + n, Math.min(i + n + g, len));
    }
  }
  return [];
}

function lookupDrafter(maxNgram: number): Drafter {
  return {
    open: () => ({
      round: async (target, seqs, states, counters, g) => {
        const proposals = seqs.map((seq, r) => (states[r]!.done ? [] : lookupProposal(seq, maxNgram, g)));
        await verifyProposals(target, seqs, states, counters, proposals);
      },
    }),
  };
}

/**
 * Greedy decoding of `target` with prompt-lookup proposals: the same tokens as
 * `generate(target, prompts)`, in fewer target passes when outputs copy their prompts. Batching,
 * prompt-length rules and result shape as {@link generateSpeculative} (draftPasses are 0).
 * @throws TypeError on invalid options; FeedError / SessionRunError when ORT fails.
 */
export async function generatePromptLookup(
  target: EngineModel,
  prompts: readonly (readonly number[])[],
  options: PromptLookupOptions = {},
): Promise<SpeculativeResult> {
  const maxNgram = options.maxNgram ?? 3;
  // Beyond a handful of tokens a match is as good as certain; the bound catches unit mix-ups.
  if (!Number.isInteger(maxNgram) || maxNgram < 1 || maxNgram > 16) {
    throw new TypeError(`generatePromptLookup: maxNgram must be an integer in [1, 16], got ${maxNgram}`);
  }
  const remote = target.remote();
  if (remote)
    return remote.host.call<SpeculativeResult>({
      op: 'prompt-lookup',
      model: remote.id,
      prompts: [...prompts],
      options,
    });
  const resolved = resolveSpeculativeOptions('generatePromptLookup', target, target.config.maxPositions, options);
  return runSpeculative(target, lookupDrafter(maxNgram), prompts, resolved);
}
