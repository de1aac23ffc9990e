/**
 * Data contracts: the prepared splits prepareDataWorkflow returns (and every run of a grid reads),
 * and the tokenized test items tokenizeData writes and evaluateModel reads.
 */
import type { ObjectRef } from '../store/object-store';

export interface PreparedData {
  /** Content hash of the data config (the prepared split keys hash it with the raw files' sha256). */
  dataKey: string;
  train: ObjectRef;
  test: ObjectRef;
  /** Records per dataset and split, and malformed lines seen, for the report. */
  stats: { train: Record<string, number>; test: Record<string, number>; malformed: number };
}
