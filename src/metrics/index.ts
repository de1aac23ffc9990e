/** QA metrics and their aggregation: pure functions, no I/O. */
export { normalizeAnswer, normalizedTokens } from './normalize';
export { exactMatch, tokenF1, jaccardStudy, jaccardSet } from './qa';
export { rougeL, lcsLength } from './rouge';
export { maxOverReferences } from './references';
export { bootstrapCI, bootstrapStatistic, quantileSorted } from './bootstrap';
export type { BootstrapOptions, ConfidenceInterval } from './bootstrap';
export { perplexity } from './perplexity';
export { summarize } from './summarize';
export type { EvalItem, GroupSummary, Summary, SummarizeOptions } from './summarize';
export { matchOption, officialScore, optionMatchedAccuracy } from './official';
