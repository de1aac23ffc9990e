// Data preparation: UnifiedQA catalog → records → prompts → token ids → pgtok shards.
export {
  CATALOG,
  DATASET_NAMES,
  SAMPLE_DATASETS,
  SAMPLES_DIR,
  UNIFIEDQA_BASE_URL,
  UNIFIEDQA_TOTAL_LINES,
  datasetSplits,
  datasetUrl,
  getDataset,
  isDatasetName,
  sampleBaseUrl,
  type DatasetEntry,
  type DatasetName,
  type QaFormat,
  type SampleDatasetName,
  type Split,
  type SplitFile,
} from './catalog';
export { createRng, seedFrom, type Rng } from '../common/rng';
export { MAX_LINE_BYTES, readLines, splitLines, type SourceLine, type SplitLinesOptions } from './lines';
export {
  UnifiedQaParser,
  parseChoices,
  parseUnifiedQa,
  parseUnifiedQaStream,
  recordId,
  toUnifiedQaInput,
  type DatasetRef,
  type Fields,
  type MalformedLine,
  type MalformedReason,
  type ParseOptions,
  type ParseResult,
  type ParseStats,
  type QaRecord,
} from './unifiedqa';
export { createShotPool, drawShots, type ShotPool } from './shots';
export {
  answerFrame,
  renderChatTemplate,
  type AnswerFrame,
  type ChatMessage,
  type TemplateTokens,
} from './chat-template';
export {
  K_SHOT_INSTRUCTION,
  MODEL_FAMILIES,
  ZERO_SHOT_INSTRUCTION,
  formatExample,
  questionText,
  type FormatOptions,
  type FormattedExample,
  type ModelFamily,
  type ShotOptions,
  type TokenizerInfo,
} from './formats';
export {
  TokenizerConfigError,
  loadTokenizer,
  type DecodeOptions,
  type EncodeOptions,
  type TokenizerWrapper,
} from './tokenizer';
export {
  AnswerTooLongError,
  DoubleBosError,
  encodePrompt,
  testItem,
  tokenizeForTraining,
  type TrainingExample,
  type TrainingTokenization,
} from './tokenize';
export {
  closeTokenizePools,
  tokenizeTrainingParallel,
  type ParallelExample,
  type ParallelTokenizeOptions,
  type ParallelTokenizeResult,
} from './tokenize-parallel';
export {
  PGTOK_MAGIC,
  PGTOK_VERSION,
  PgtokFormatError,
  describePgtok,
  pgtokManifest,
  readPgtok,
  writePgtok,
  writePgtokFile,
  type DecodedPgtokExample,
  type PgtokExample,
  type PgtokFileInfo,
  type PgtokManifest,
  type PgtokSplitManifest,
} from './pgtok';
