/**
 * Data contracts: the prepared splits prepareDataWorkflow returns (and every run of a grid reads),
 * the tokenized test items tokenizeData writes and evaluateModel reads, and the inputs and results
 * of the data activities (downloadDataset, resolveDatasets, prepareData, tokenizeData).
 */
import type { DataConfig } from '../config/schema';
import type { ObjectRef } from '../store/object-store';

export interface PreparedData {
  /** Content hash of the data config (the prepared split keys hash it with the raw files' sha256). */
  dataKey: string;
  train: ObjectRef;
  test: ObjectRef;
  /** Records per dataset and split, and malformed lines seen, for the report. */
  stats: { train: Record<string, number>; test: Record<string, number>; malformed: number };
}

export interface DownloadDatasetInput {
  storeUrl: string;
  baseUrl: string;
  dataset: string;
  split: string;
  /**
   * Size and sha256 the file must have, for a mirror whose files are known (the catalog's values
   * describe the canonical bucket only and are used there when this is absent). Without either, a
   * download cut short at a line boundary cannot be told from a complete one.
   */
  expected?: { bytes: number; sha256: string };
  /**
   * A custom dataset's JSONL file (https, http, file://, s3://), fetched instead of
   * `<baseUrl>/<dataset>/<split>.tsv`; `split` then only labels it (the data config's trainSplit or testSplit).
   */
  url?: string;
}

export interface ExportHfDatasetInput {
  storeUrl: string;
  /** Absolute path of a DatasetDict directory written by `save_to_disk` (`hfDisk`); or else `hub`. */
  path?: string;
  /** A hub dataset repo, staged like hub models (HF_TOKEN, HF_ENDPOINT), its data files read by `load_dataset`. */
  hub?: { repoId: string; revision?: string };
  /** The DatasetDict split to export. */
  split: string;
  /** The custom dataset's name. */
  dataset: string;
  /** The data config's trainSplit or testSplit: which of the two the rows serve as. */
  label: string;
}

export interface ResolveDatasetsInput {
  data: DataConfig;
}

export interface PrepareDataInput {
  storeUrl: string;
  dataKey: string;
  data: DataConfig;
  raw: { dataset: string; split: string; ref: ObjectRef }[];
}

export interface TokenizeDataInput {
  storeUrl: string;
  prepared: PreparedData;
  modelPath: string;
  /** Hub models: the commit sha stageModel pinned (activities/model-source.ts stages exactly it). */
  revision?: string;
  family: string;
  maxLength: number;
  /** ICL examples per test prompt (0 = zero-shot). */
  shots: number;
  seed: number;
  /** Also produce the training shard. */
  withTrain: boolean;
}

export interface TokenizeDataResult {
  train?: ObjectRef;
  test: ObjectRef;
  /** Examples skipped because even a one-token prompt could not fit the answer in maxLength. */
  skipped: number;
}

/** One test item as tokenizeData writes it. */
export interface TestItem {
  id: string;
  dataset: string;
  format: string;
  promptIds: number[];
  answers: string[];
  /** Multiple-choice options, for UnifiedQA's option-matched accuracy. */
  choices?: string[];
  /** The first reference answer's tokens + EOS, for held-out perplexity. */
  answerIds: number[];
}
