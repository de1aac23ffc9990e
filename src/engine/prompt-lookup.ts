/**
 * Prompt-lookup decoding: speculative decoding with no draft model. A row's proposal is what
 * followed the latest earlier occurrence of its last n tokens (n from `maxNgram` down to 1) in its
 * own sequence, prompt and output so far. Extractive QA answers are spans of the passage, so once
 * the first tokens of an answer are out, the rest is usually one lookup away. At each n, when the
 * row's own sequence has no match, the outputs already generated for the same test set are
 * searched too (latest first): answers to one task share their phrasing ("The answer is (c)",
 * "The story of … is a classic tale of"), which a passage does not contain. The target verifies
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
  /**
   * Outputs generated earlier for the same test set (an evaluation's previous chunks), searched
   * after a row's own sequence; each output this call finishes joins them. The latest
   * {@link HISTORY_LIMIT} are kept.
   */
  history?: readonly (readonly number[])[];
}

/** Earlier outputs a prompt-lookup drafter searches: enough for a test set's phrasing, cheap to scan. */
export const HISTORY_LIMIT = 256;

/**
 * Up to `g` tokens proposed for `seq`: the tokens after the latest earlier occurrence of its last
 * n tokens, longest n first (a longer match is better evidence); at each n `seq` itself first,
 * then the `corpus` outputs, newest first. Empty when nothing matches.
 */
export function lookupProposal(
  seq: readonly number[],
  maxNgram: number,
  g: number,
  corpus: readonly (readonly number[])[] = [],
): number[] {
  if (g <= 0) return [];
  const len = seq.length;
  for (let n = Math.min(maxNgram, len - 1); n >= 1; n--) {
    // Candidate starts i of an earlier copy of seq[len − n, len): the latest one first, since
    // the text nearest the end (the answer being copied) is the likeliest continuation.
    const own = continuationAfter(seq, seq, len, n, len - n - 1, g);
    if (own) return own;
    for (let c = corpus.length - 1; c >= 0; c--) {
      const text = corpus[c]!;
      const found = continuationAfter(text, seq, len, n, text.length - n - 1, g);
      if (found) return found;
    }
  }
  return [];
}

/**
 * The (at most g) tokens of `text` after its latest copy, starting at or before `from`, of
 * `seq[len − n, len)`; undefined when there is none. The copy is followed by at least one token.
 */
function continuationAfter(
  text: readonly number[],
  seq: readonly number[],
  len: number,
  n: number,
  from: number,
  g: number,
): number[] | undefined {
  for (let i = from; i >= 0; i--) {
    let j = 0;
    while (j < n && text[i + j] === seq[len - n + j]) j++;
    if (j === n) return text.slice(i + n, Math.min(i + n + g, text.length));
  }
  return undefined;
}

function lookupDrafter(maxNgram: number, history: readonly (readonly number[])[]): Drafter {
  const corpus = [...history]; // at most HISTORY_LIMIT (generatePromptLookup); grows as rows finish
  return {
    open: () => {
      const recorded = new Set<number>();
      return {
        round: async (target, seqs, states, counters, g) => {
          const proposals = seqs.map((seq, r) => (states[r]!.done ? [] : lookupProposal(seq, maxNgram, g, corpus)));
          await verifyProposals(target, seqs, states, counters, proposals);
          states.forEach((state, r) => {
            if (!state.done || recorded.has(r)) return;
            recorded.add(r);
            corpus.push(state.tokens);
            if (corpus.length > HISTORY_LIMIT) corpus.shift();
          });
        },
      };
    },
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
  // Only the latest HISTORY_LIMIT outputs are searched, so only those cross to the engine process.
  if (options.history && options.history.length > HISTORY_LIMIT)
    options = { ...options, history: options.history.slice(-HISTORY_LIMIT) };
  const remote = target.remote();
  if (remote)
    return remote.host.call<SpeculativeResult>({
      op: 'prompt-lookup',
      model: remote.id,
      prompts: [...prompts],
      options,
    });
  const resolved = resolveSpeculativeOptions('generatePromptLookup', target, target.config.maxPositions, options);
  return runSpeculative(target, lookupDrafter(maxNgram, options.history ?? []), prompts, resolved);
}
