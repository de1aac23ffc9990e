/**
 * The model's content identity: one sha256 over the files that define a model directory (config,
 * tokenizer, weights index, weights). It enters the training and evaluation keys, so replacing a
 * model at the same path never resumes or reuses the old model's checkpoints or results.
 *
 * Cheap even for a 7B model: files up to FULL_HASH_BYTES are hashed whole (configs, tokenizers,
 * index files, tiny test models); larger weight files by their size, their safetensors header
 * (names, dtypes, shapes, offsets) and SAMPLES evenly spaced blocks of their bytes. Weights of two
 * different checkpoints differ almost everywhere, so a few MiB of samples tell them apart; an edit
 * confined to bytes between the samples of a multi-GB file is not seen (documented limit).
 * Cached per worker by path and each file's size, mtime, ctime and inode: ctime and inode change
 * on any replacement, even one that preserves mtimes (cp -p, rsync -a).
 */
import { createHash } from 'node:crypto';
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Hex } from '../src/common/hash';
import { sha256File } from '../src/store';

/** Files of an HF model directory that change what it computes or how it tokenizes. */
const MODEL_FILES =
  /^(config\.json|generation_config\.json|tokenizer\.json|tokenizer_config\.json|special_tokens_map\.json|tokenizer\.model|chat_template\.jinja|.*\.safetensors|.*\.safetensors\.index\.json|.*\.bin|.*\.bin\.index\.json|.*\.gguf)$/;
/** Files up to this size are hashed whole: 64 MiB is well under a second of sha256. */
const FULL_HASH_BYTES = 64 * 1024 * 1024;
/** Sampled blocks per large file: 64 × 64 KiB = 4 MiB read per shard. */
const SAMPLES = 64;
const BLOCK = 64 * 1024;

export interface ModelFingerprint {
  /** 64 hex. */
  sha256: string;
  /** `content`: hashed from the files; `name`: no local directory (hub id), the name stands in. */
  basis: 'content' | 'name';
}

const cache = new Map<string, ModelFingerprint>();

/** Size, header and sampled blocks of a large file (see the module comment). */
async function sampledDigest(path: string, size: number): Promise<string> {
  const h = createHash('sha256').update(`size:${size}\n`);
  const fh = await open(path, 'r');
  try {
    const read = async (offset: number, length: number) => {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await fh.read(buf, 0, length, offset);
      return buf.subarray(0, bytesRead);
    };
    if (path.endsWith('.safetensors')) {
      // 8-byte little-endian header length, then the JSON header: every tensor's name, dtype, shape.
      const len = Number((await read(0, 8)).readBigUInt64LE(0));
      if (len > 0 && len < size) h.update(await read(8, len));
    }
    for (let i = 0; i < SAMPLES; i++) {
      const offset = Math.floor((i * Math.max(0, size - BLOCK)) / (SAMPLES - 1));
      h.update(await read(offset, BLOCK));
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

/** The fingerprint of the model at a local path; a path that is not a directory is fingerprinted by its name. */
export async function modelFingerprint(dir: string): Promise<ModelFingerprint> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((f) => MODEL_FILES.test(f)).sort();
  } catch {
    names = [];
  }
  // A hub id (the trainer resolves it where it is online): its name is all there is to hash here.
  if (names.length === 0) return { sha256: sha256Hex(`name:${dir}`), basis: 'name' };
  const stats = await Promise.all(names.map(async (n) => [n, await stat(join(dir, n))] as const));
  const cacheKey = `${dir}|${stats.map(([n, s]) => `${n}:${s.size}:${s.mtimeMs}:${s.ctimeMs}:${s.ino}`).join('|')}`;
  const cached = cache.get(cacheKey);
  if (cached) return cached;
  const h = createHash('sha256');
  for (const [n, s] of stats) {
    const digest =
      s.size <= FULL_HASH_BYTES
        ? await sha256File(join(dir, n))
        : `sampled:${await sampledDigest(join(dir, n), s.size)}`;
    h.update(`${n}\0${digest}\n`);
  }
  const fingerprint: ModelFingerprint = { sha256: h.digest('hex'), basis: 'content' };
  cache.set(cacheKey, fingerprint);
  return fingerprint;
}
