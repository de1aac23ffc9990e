/**
 * Every type that crosses a boundary between workflows, activities, the CLI, the report and the
 * trainer. Imports flow one way (workers → activities/workflows → src), so these live in src/ and
 * import nothing outside it; eslint.config.mjs keeps it so.
 *
 * Naming: a function's input and result are named after it in PascalCase, so no two contracts
 * share a name: `experimentGridWorkflow` takes an `ExperimentGridWorkflowInput`, the `prepareData`
 * activity a `PrepareDataInput`, `trainModel` returns a `TrainModelResult`.
 */
export type * from './data';
export type * from './evaluation';
export type * from './grid';
export type * from './heartbeat';
export type * from './model';
export type * from './run';
export type * from './tracking';
export type * from './run-logs';
export type * from './training';
export type * from './workflows';
