/**
 * Checkpoint upload/download throughput to a real S3 server (SeaweedFS on loopback) against a
 * plain file copy of the same bytes, measured in the same run so machine load hits every row.
 *
 *   node --import tsx bench/store-throughput.ts [--mb 128] [--repeats 3]
 *
 * The directory imitates a checkpoint: one large weights file (60 %), one optimizer state (35 %)
 * and a few small JSON files, all random (incompressible) bytes. Rows:
 *   file copy           fs.cp of the directory (the baseline: what the disk itself does)
 *   sha256              hashing the same bytes once (putDirectory hashes every file it uploads)
 *   file store put/get  FileObjectStore putDirectory/getDirectory (copy + sha256 + rename)
 *   S3 put multipart    putDirectory with 8 MiB parts, 4 in flight (the default S3ObjectStore)
 *   S3 put single PUT   putDirectory with one PUT per file (multipart threshold raised to ∞)
 *   S3 get ranged       getDirectory with 8 MiB ranged GETs, 4 in flight (the default)
 *   S3 get single GET   getDirectory with one GET per file
 * Each row reports the median of --repeats runs; the ratio is the row's MB/s over the file copy's.
 */
import { randomBytes } from 'node:crypto';
import { cp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FileObjectStore, getDirectory, putDirectory, S3ObjectStore, sha256File } from '../src/store';
import { startS3Server } from '../test/helpers/s3-server';

const MiB = 1 << 20;

async function writeRandom(path: string, bytes: number): Promise<void> {
  const chunk = 4 * MiB;
  const parts: Buffer[] = [];
  for (let left = bytes; left > 0; left -= chunk) parts.push(randomBytes(Math.min(chunk, left)));
  await writeFile(path, Buffer.concat(parts));
}

async function median(repeats: number, fn: (i: number) => Promise<void>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = process.hrtime.bigint();
    await fn(i);
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { mb: { type: 'string', default: '128' }, repeats: { type: 'string', default: '3' } },
  });
  const totalMb = Number(values.mb);
  const repeats = Number(values.repeats);
  if (!(totalMb > 0) || !(repeats >= 1))
    throw new TypeError(`--mb and --repeats: got ${values.mb}, ${values.repeats}; expected positive numbers`);
  const root = join(tmpdir(), `peftgrid-bench-store-${process.pid}`);
  const src = join(root, 'src');
  await mkdir(src, { recursive: true });
  const total = Math.round(totalMb * MiB);
  await writeRandom(join(src, 'trainable.safetensors'), Math.round(total * 0.6));
  await writeRandom(join(src, 'optimizer.pt'), Math.round(total * 0.35));
  for (const name of ['scheduler.pt', 'rng.pt', 'trainer_state.json', 'adapter_config.json'])
    await writeRandom(join(src, name), 16 * 1024);
  const bytes = Math.round(total * 0.6) + Math.round(total * 0.35) + 4 * 16 * 1024;

  const s3 = await startS3Server(join(root, 'weed'), 29600);
  Object.assign(process.env, s3.env);
  const url = `s3://${s3.bucket}/bench`;
  const multipart = new S3ObjectStore(url); // defaults: 16 MiB threshold, 8 MiB parts, 4 in flight
  const single = new S3ObjectStore(url, { multipartThreshold: Number.MAX_SAFE_INTEGER });
  const fileStore = new FileObjectStore(join(root, 'file-store'));
  const rows: [string, number][] = [];
  try {
    rows.push([
      'file copy (fs.cp)',
      await median(repeats, async (i) => {
        await cp(src, join(root, `copy-${i}`), { recursive: true });
      }),
    ]);
    rows.push([
      'sha256 only',
      await median(repeats, async () => {
        for (const f of ['trainable.safetensors', 'optimizer.pt']) await sha256File(join(src, f));
      }),
    ]);
    rows.push([
      'file store putDirectory',
      await median(repeats, async (i) => {
        await putDirectory(fileStore, `ck/put-${i}`, src, {});
      }),
    ]);
    rows.push([
      'file store getDirectory',
      await median(repeats, async (i) => {
        await getDirectory(fileStore, 'ck/put-0', join(root, `fget-${i}`));
      }),
    ]);
    rows.push([
      'S3 putDirectory multipart (8 MiB x4)',
      await median(repeats, async (i) => {
        await putDirectory(multipart, `ck/mp-${i}`, src, {});
      }),
    ]);
    rows.push([
      'S3 putDirectory single PUT',
      await median(repeats, async (i) => {
        await putDirectory(single, `ck/single-${i}`, src, {});
      }),
    ]);
    rows.push([
      'S3 getDirectory ranged (8 MiB x4)',
      await median(repeats, async (i) => {
        await getDirectory(multipart, 'ck/mp-0', join(root, `mget-${i}`));
      }),
    ]);
    rows.push([
      'S3 getDirectory single GET',
      await median(repeats, async (i) => {
        await getDirectory(single, 'ck/mp-0', join(root, `sget-${i}`));
      }),
    ]);
  } finally {
    multipart.destroy();
    single.destroy();
    await s3.stop();
    await rm(root, { recursive: true, force: true });
  }
  const base = bytes / MiB / rows[0]![1];
  console.log(
    `checkpoint-like directory: ${(bytes / MiB).toFixed(0)} MiB in 6 files; median of ${repeats}; SeaweedFS on loopback`,
  );
  console.log('| operation | seconds | MB/s | vs file copy |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const [name, s] of rows) {
    const mbs = bytes / MiB / s;
    console.log(`| ${name} | ${s.toFixed(2)} | ${mbs.toFixed(0)} | ${(mbs / base).toFixed(2)}x |`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
