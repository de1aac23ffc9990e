// Adjustments to @huggingface/tokenizers 0.2 pre-tokenizers, applied to each loaded tokenizer.
//
// Correctness: two patterns use JavaScript character classes where Rust `tokenizers` has Unicode
// semantics; the parity test found both on SmolLM2's tokenizer, and both change token ids:
// - ByteLevel's GPT-2 split: Rust runs it through Oniguruma, whose `\s` is the White_Space
//   property; JavaScript's `\s` also matches U+FEFF and misses U+0085.
// - Digits: Rust splits on `char::is_numeric` (categories Nd, Nl, No: "½", "²", "٣" are digits);
//   JavaScript's `\d` is ASCII 0-9 only.
// Speed: ByteLevel maps every pre-token to its byte alphabet through TextEncoder + Array.from +
// join, about a third of all encoding time; a direct loop with an ASCII fast path is twice as fast
// overall and produces the same strings.
import {
  ByteLevelPreTokenizer,
  DigitsPreTokenizer,
  SequencePreTokenizer,
  type PreTokenizer,
} from '@huggingface/tokenizers';

const byteLevelSplit = (): RegExp =>
  /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\p{White_Space}\p{L}\p{N}]+|\p{White_Space}+(?!\P{White_Space})|\p{White_Space}+/gu;

const digitsSplit = (individual: boolean): RegExp => (individual ? /[^\p{N}]+|\p{N}/gu : /[^\p{N}]+|\p{N}+/gu);

function byteLevelPreTokenize(pre: ByteLevelPreTokenizer): (text: string) => string[] {
  const table = pre.byte_encoder;
  const utf8 = new TextEncoder();
  const toByteAlphabet = (token: string): string => {
    let out = '';
    for (let i = 0; i < token.length; i++) {
      const code = token.charCodeAt(i);
      if (code >= 0x80) {
        out = '';
        for (const byte of utf8.encode(token)) out += table[byte];
        return out;
      }
      out += table[code];
    }
    return out;
  };
  return (text: string): string[] => {
    const prefixed = pre.add_prefix_space && !text.startsWith(' ') ? ` ${text}` : text;
    const pieces = pre.use_regex ? (prefixed.match(pre.pattern) ?? []) : [prefixed];
    return pieces.map(toByteAlphabet);
  };
}

/** Makes a loaded tokenizer's pre-tokenizers split exactly as Rust `tokenizers` does. */
export function matchRustPreTokenizers(pre: PreTokenizer | null): void {
  if (pre instanceof ByteLevelPreTokenizer) {
    pre.pattern = byteLevelSplit();
    pre.pre_tokenize_text = byteLevelPreTokenize(pre);
  } else if (pre instanceof DigitsPreTokenizer) {
    pre.pattern = digitsSplit(pre.config.individual_digits ?? false);
  } else if (pre instanceof SequencePreTokenizer) {
    pre.tokenizers.forEach(matchRustPreTokenizers);
  }
}
