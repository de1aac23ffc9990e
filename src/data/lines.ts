// Byte stream → text lines with bounded memory. readline would buffer a runaway line (a file with
// no newlines, a corrupt download) in full; this keeps at most `maxLineBytes + 1` bytes of any line
// and lets the parser see that it was too long.
import { StringDecoder } from 'node:string_decoder';

/** Lines longer than this (in UTF-8 bytes) are malformed: no UnifiedQA instance comes close. */
export const MAX_LINE_BYTES = 64 * 1024;

export interface SplitLinesOptions {
  /** @default MAX_LINE_BYTES */
  maxLineBytes?: number;
}

/** One line of a byte stream, and whether a `\n` ended it (only the last line of a file may lack one). */
export interface SourceLine {
  text: string;
  /** False for a final line without a newline: in a file that should end with one, a sign it was cut short. */
  terminated: boolean;
}

/**
 * Splits a byte stream on `\n` (dropping a trailing `\r`) and decodes each line as UTF-8, invalid
 * sequences becoming U+FFFD so the parser can report them. A line longer than `maxLineBytes` is
 * yielded cut to `maxLineBytes + 1` bytes: long enough to be recognised as over-long, never larger.
 * A final line without a newline is yielded with `terminated: false`; an empty trailing line after
 * the last `\n` is not yielded.
 */
export async function* readLines(
  source: AsyncIterable<Uint8Array | string>,
  options: SplitLinesOptions = {},
): AsyncGenerator<SourceLine> {
  const maxLineBytes = options.maxLineBytes ?? MAX_LINE_BYTES;
  const cap = maxLineBytes + 1;
  let parts: Buffer[] = [];
  let kept = 0;
  let pending = false;

  const take = (chunk: Buffer): void => {
    pending = true;
    if (kept >= cap) return;
    const piece = chunk.length > cap - kept ? chunk.subarray(0, cap - kept) : chunk;
    // Copy: the source may reuse its chunk buffers after we yield.
    parts.push(Buffer.from(piece));
    kept += piece.length;
  };
  const flush = (): string => {
    let line = Buffer.concat(parts, kept);
    if (kept <= maxLineBytes && line[line.length - 1] === 0x0d) line = line.subarray(0, -1);
    parts = [];
    kept = 0;
    pending = false;
    // A fresh decoder per line: a broken sequence must not leak into the next line.
    return new StringDecoder('utf8').end(line);
  };

  for await (const raw of source) {
    const chunk =
      typeof raw === 'string' ? Buffer.from(raw, 'utf8') : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    let start = 0;
    for (let nl = chunk.indexOf(0x0a, start); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      take(chunk.subarray(start, nl));
      yield { text: flush(), terminated: true };
      start = nl + 1;
    }
    if (start < chunk.length) take(chunk.subarray(start));
  }
  if (pending) yield { text: flush(), terminated: false };
}

/** `readLines` without the end-of-file flag: every line's text, a final unterminated one included. */
export async function* splitLines(
  source: AsyncIterable<Uint8Array | string>,
  options: SplitLinesOptions = {},
): AsyncGenerator<string> {
  for await (const line of readLines(source, options)) yield line.text;
}
