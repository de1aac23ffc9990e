/**
 * Every activity, re-exported for the workers (as values) and the workflows (as types only).
 * cpu queue: data, evaluation, results, tracking, report. gpu queue: trainModel, distillDraft, exportModel, evaluateModel
 * (the torch engine). Both: stageModel.
 */
export { downloadDataset } from './download';
export type { DownloadDatasetInput } from './download';
export { exportHfDataset } from './hf-dataset';
export type { ExportHfDatasetInput } from './hf-dataset';
export { resolveDatasets, prepareData } from './prepare';
export type { ResolveDatasetsInput, PrepareDataInput } from './prepare';
export { stageModel } from './stage-model';
export type { StageModelInput, StageModelResult, StageModelHeartbeat } from './stage-model';
export { tokenizeData } from './tokenize';
export type { TokenizeDataInput, TokenizeDataResult } from './tokenize';
export { trainModel } from './train';
export type { TrainModelInput, TrainModelResult, TrainHeartbeat } from './train';
export { distillDraft } from './distill';
export type { DistillDraftInput } from './distill';
export { exportModel } from './export';
export type { ExportModelInput, ExportModelResult } from './export';
export { evaluateModel } from './evaluate';
export type { EvaluateModelInput, EvaluateModelResult, TestItem } from './evaluate';
export { deriveRunKeys } from './run-keys';
export type { DeriveRunKeysInput, DeriveRunKeysResult } from './run-keys';
export { lookupRunResult, saveRunResult } from './results';
export type { LookupRunResultInput, SaveRunResultInput, SaveRunResultResult } from './results';
export { trackGridReport, trackRunEnded, trackRunResult } from './track';
export type {
  TrackGridReportInput,
  TrackGridReportResult,
  TrackRunEndedInput,
  TrackRunResultInput,
  TrackRunResultResult,
} from './track';
export { writeReport } from './report';
export type { WriteReportInput, WriteReportResult } from './report';
export { awaitWorkflowClosed } from './await-workflow';
export type {
  AwaitWorkflowClosedInput,
  AwaitWorkflowClosedResult,
  AwaitWorkflowClosedHeartbeat,
} from './await-workflow';
