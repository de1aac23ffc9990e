/** Per-sequence stopping logic of greedy decoding, independent of how tokens are computed. */

/** Why a sequence stopped. */
export type FinishReason = 'eos' | 'stop' | 'length' | 'error';

/** Stopping rules shared by all rows of a run. */
export interface StopRules {
  /** Any of these ends a sequence; it is not part of the output. */
  eosTokenIds: ReadonlySet<number>;
  /** A sequence ends when its output ends with one of these; the matched tokens are removed. */
  stopSequences: readonly (readonly number[])[];
  /** A sequence ends after this many generated tokens. */
  maxNewTokens: number;
}

/** One row's output so far; frozen once `finishReason` is set. */
export class SequenceState {
  /** Output tokens (EOS and matched stop sequences removed). */
  readonly tokens: number[] = [];
  /**
   * Tokens the model generated for this row, up to and including the EOS or stop sequence that
   * ended it: the row's share of real decoding work, counted for throughput. Tokens computed for
   * the row after it finished (while other rows of its batch continue) are not counted.
   */
  generated = 0;
  finishReason: Exclude<FinishReason, 'error'> | undefined;

  constructor(private readonly rules: StopRules) {}

  get done(): boolean {
    return this.finishReason !== undefined;
  }

  /** Appends the row's next greedy token unless the row has finished. */
  accept(token: number): void {
    if (this.done) return;
    this.generated++;
    if (this.rules.eosTokenIds.has(token)) {
      this.finishReason = 'eos';
      return;
    }
    this.tokens.push(token);
    const stop = this.rules.stopSequences.find((seq) => endsWith(this.tokens, seq));
    if (stop) {
      this.tokens.length -= stop.length;
      this.finishReason = 'stop';
    } else if (this.generated >= this.rules.maxNewTokens) {
      this.finishReason = 'length';
    }
  }
}

function endsWith(tokens: readonly number[], suffix: readonly number[]): boolean {
  if (suffix.length === 0 || suffix.length > tokens.length) return false;
  const offset = tokens.length - suffix.length;
  return suffix.every((id, i) => tokens[offset + i] === id);
}
