/** Generation engine on onnxruntime-node for models exported per docs/contracts.md §2. */
export { loadModel, EngineModel, MODEL_FILE, CONFIG_FILE } from './session';
export type { LoadModelOptions, ExecutionProviderChoice } from './session';
export { readEngineConfig, parseEngineConfig } from './config';
export type { EngineConfig } from './config';
export { generate } from './generate';
export { lengthBuckets, inInputOrder } from './buckets';
export type { GenerateOptions, GenerateResult, GeneratedSequence, GenerationStats, BatchTiming } from './generate';
export type { FinishReason } from './sequence-state';
export type { LongPromptPolicy } from './prompts';
export { scoreContinuation } from './score';
export type { ScoreOptions, ContinuationScore } from './score';
export { kvNames } from './contract';
export { percentile } from './stats';
export { describeFeed } from './feed-check';
export type { Feed } from './feed-check';
export {
  EngineError,
  EngineConfigError,
  ModelLoadError,
  GraphContractError,
  FeedError,
  SessionRunError,
} from './errors';
export type { TensorMismatch } from './errors';
export { generateSpeculative, checkDraftPair, DraftMismatchError } from './speculative';
export { generatePromptLookup, lookupProposal } from './prompt-lookup';
export type { PromptLookupOptions } from './prompt-lookup';
export type { SpeculativeOptions, SpeculativeResult, SpeculativeSequence, SpeculativeStats } from './speculative';
export { EngineHost, EngineHostExitedError, engineRunInFromEnv, RUN_IN_ENV } from './host';
export type { EngineRunIn } from './host';
export type { RemotePlacement } from './session';
