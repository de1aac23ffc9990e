/**
 * Workflow inputs, defined in src/contracts (the CLI starts workflows with them, and src/ never
 * imports workflows/). Results and progress types are in src/contracts too.
 */
export type {
  ExperimentGridWorkflowInput,
  FineTuneRunWorkflowInput,
  PrepareDataWorkflowInput,
} from '../src/contracts/workflows';
