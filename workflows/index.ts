export { experimentGridWorkflow, gridProgressQuery, cancelRunSignal } from './experiment-grid';
export { fineTuneRunWorkflow, runProgressQuery } from './fine-tune-run';
export { prepareDataWorkflow } from './prepare-data';
export type * from './types';
