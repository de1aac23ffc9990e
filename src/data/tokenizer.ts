// Loads a Hugging Face tokenizer directory (tokenizer.json + tokenizer_config.json) into a small,
// explicit wrapper. Token ids must equal those of the Rust `tokenizers` library the Python side uses
// (test/python/test_tokenizer_parity.py holds us to that), so the wrapper passes the JS library only
// the settings `tokenizers` itself honours; transformers-only knobs of tokenizer_config.json
// (remove_space, do_lowercase_and_remove_accent, …) would make the two disagree.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { matchRustPreTokenizers } from './pretokenizers';

export interface EncodeOptions {
  /**
   * Whether the tokenizer's post-processor adds its special tokens (usually BOS). Off by default:
   * our prompt formats write BOS as text exactly where the model expects it, and encoding with
   * special tokens on top would double it.
   * @default false
   */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** @default false */
  skipSpecialTokens?: boolean;
}

export interface TokenizerWrapper {
  encode(text: string, options?: EncodeOptions): number[];
  decode(ids: readonly number[], options?: DecodeOptions): string;
  tokenToId(token: string): number | undefined;
  /** Null for tokenizers without a BOS token (e.g. Qwen). */
  bosToken: string | null;
  bosTokenId: number | null;
  eosToken: string;
  eosTokenId: number;
  /** The configured pad token, else EOS: padded positions are masked, so any id works, but it must exist. */
  padToken: string;
  padTokenId: number;
  /** Number of ids the tokenizer can produce (highest id + 1), added tokens included. */
  vocabSize: number;
  /** sha256 (hex) of tokenizer.json: tokenized shards record it so stale shards are detectable. */
  sha256: string;
  /** chat_template.jinja if present (it takes precedence, as in transformers), else tokenizer_config's. */
  chatTemplate: string | null;
}

/** Thrown when a model directory lacks files or settings a prompt format cannot do without. */
export class TokenizerConfigError extends Error {
  override name = 'TokenizerConfigError';
}

type TokenSetting = string | { content?: unknown } | null | undefined;

interface TokenizerConfigJson {
  bos_token?: TokenSetting;
  eos_token?: TokenSetting;
  pad_token?: TokenSetting;
  chat_template?: string | { name: string; template: string }[];
  clean_up_tokenization_spaces?: boolean;
  additional_special_tokens?: TokenSetting[];
}

interface TokenizerJson {
  added_tokens?: { id: number }[];
  model: { vocab: Record<string, number> | [string, number][] };
}

function tokenContent(setting: TokenSetting): string | null {
  if (typeof setting === 'string') return setting;
  if (setting && typeof setting === 'object' && typeof setting.content === 'string') return setting.content;
  return null;
}

async function readOptional(path: string): Promise<Buffer | null> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

function pickChatTemplate(config: TokenizerConfigJson, jinjaFile: string | null): string | null {
  if (jinjaFile !== null) return jinjaFile;
  const t = config.chat_template;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) return t.find((x) => x.name === 'default')?.template ?? t[0]?.template ?? null;
  return null;
}

function maxId(json: TokenizerJson): number {
  const vocab = json.model.vocab;
  let max = -1;
  if (Array.isArray(vocab)) max = vocab.length - 1;
  else for (const id of Object.values(vocab)) if (id > max) max = id;
  for (const t of json.added_tokens ?? []) if (t.id > max) max = t.id;
  return max;
}

export async function loadTokenizer(modelDir: string): Promise<TokenizerWrapper> {
  const raw = await readOptional(join(modelDir, 'tokenizer.json'));
  if (raw === null)
    throw new TokenizerConfigError(`${modelDir}: no tokenizer.json (only fast tokenizers are supported)`);
  // A corrupt file fails the same way on every retry: report it as a config error, not a crash.
  const parse = <T>(name: string, text: string): T => {
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new TokenizerConfigError(`${modelDir}/${name}: not valid JSON (${(err as Error).message})`);
    }
  };
  const json = parse<TokenizerJson>('tokenizer.json', raw.toString('utf8'));
  const readJson = async (name: string): Promise<TokenizerConfigJson> =>
    parse<TokenizerConfigJson>(name, (await readOptional(join(modelDir, name)))?.toString('utf8') ?? '{}');
  const config = await readJson('tokenizer_config.json');
  const specialMap = await readJson('special_tokens_map.json');
  const chatTemplate = pickChatTemplate(
    config,
    (await readOptional(join(modelDir, 'chat_template.jinja')))?.toString('utf8') ?? null,
  );

  const additional = (config.additional_special_tokens ?? []).map(tokenContent).filter((t): t is string => t !== null);
  const tokenizer = new Tokenizer(json, {
    clean_up_tokenization_spaces: config.clean_up_tokenization_spaces ?? false,
    additional_special_tokens: additional,
  });
  matchRustPreTokenizers(tokenizer.pre_tokenizer);

  const lookup = (token: string | null): number | null =>
    token === null ? null : (tokenizer.token_to_id(token) ?? null);
  const setting = (key: 'bos_token' | 'eos_token' | 'pad_token'): string | null =>
    tokenContent(config[key]) ?? tokenContent(specialMap[key]);

  const bosToken = setting('bos_token');
  const eosToken = setting('eos_token');
  if (eosToken === null) throw new TokenizerConfigError(`${modelDir}: tokenizer_config.json names no eos_token`);
  const eosTokenId = lookup(eosToken);
  if (eosTokenId === null)
    throw new TokenizerConfigError(`${modelDir}: eos_token "${eosToken}" is not in the vocabulary`);
  const bosTokenId = lookup(bosToken);
  if (bosToken !== null && bosTokenId === null) {
    throw new TokenizerConfigError(`${modelDir}: bos_token "${bosToken}" is not in the vocabulary`);
  }
  const configuredPad = setting('pad_token');
  const padTokenId = lookup(configuredPad) ?? eosTokenId;
  const padToken = configuredPad !== null && lookup(configuredPad) !== null ? configuredPad : eosToken;

  return {
    encode: (text, options = {}) =>
      tokenizer.encode(text, { add_special_tokens: options.addSpecialTokens ?? false }).ids,
    // The JS library rejects an empty id list; an empty generation decodes to the empty string.
    decode: (ids, options = {}) =>
      ids.length === 0
        ? ''
        : tokenizer.decode(Array.from(ids), { skip_special_tokens: options.skipSpecialTokens ?? false }),
    tokenToId: (token) => tokenizer.token_to_id(token),
    bosToken: bosTokenId === null ? null : bosToken,
    bosTokenId,
    eosToken,
    eosTokenId,
    padToken,
    padTokenId,
    vocabSize: maxId(json) + 1,
    sha256: createHash('sha256').update(raw).digest('hex'),
    chatTemplate,
  };
}
