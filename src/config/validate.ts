/**
 * Validation at the edge: YAML text → a GridConfig with defaults applied and paths resolved, or
 * a ConfigError listing every problem as `path: got <value>, expected <what>`.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { hubIdProblem } from '../common/hub-id';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { METHODS, gridSchema, trainingSchema, type GridConfig } from './schema';
import { DATASET_NAMES, isDatasetName } from '../data/catalog';
import { fullFineTuneMisfit, gib } from './resources';
import { customDatasetChecks } from './custom-data';
import { applyOverrides } from './overrides';

export interface ConfigIssue {
  /** Dotted path of the field, e.g. `methods[2].r`; `(root)` for the document itself. */
  path: string;
  /** The offending value, as JSON (truncated). */
  value: string;
  /** What was expected instead. */
  expected: string;
}

/** Thrown by {@link loadGridConfig} / {@link validateGrid} when a config is invalid; no work has started. */
export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly issues: ConfigIssue[],
  ) {
    super(
      `invalid config ${source}:\n` +
        issues.map((i) => `  - ${i.path}: got ${i.value}, expected ${i.expected}`).join('\n'),
    );
    this.name = 'ConfigError';
  }
}

function pathString(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(root)';
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing (missing)';
  const s = JSON.stringify(value);
  return s.length > 80 ? s.slice(0, 77) + '...' : s;
}

function fromZod(issue: z.core.$ZodIssue): ConfigIssue[] {
  const path = pathString(issue.path);
  const value = (issue as { input?: unknown }).input;
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((k) => ({
        path: pathString([...issue.path, k]),
        value: show((value as Record<string, unknown> | undefined)?.[k]),
        expected: 'no such key (unknown field; check spelling)',
      }));
    case 'invalid_type':
      return [{ path, value: show(value), expected: issue.expected }];
    case 'invalid_value':
      return [
        { path, value: show(value), expected: `one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}` },
      ];
    case 'invalid_union': {
      if ('discriminator' in issue && issue.discriminator) {
        // zod puts the discriminator key in the path already; the input is the whole entry.
        const v = (value as Record<string, unknown> | undefined)?.[issue.discriminator];
        return [{ path, value: show(v), expected: `one of ${METHODS.join(', ')}` }];
      }
      // A union whose input has the shape of one branch (a custom dataset object among dataset
      // names): that branch's own issues, under this path, say what is wrong inside it.
      const inner = issue.errors.find((errs) => errs.length > 0 && errs.some((e) => e.path.length > 0));
      if (inner) return inner.flatMap((e) => fromZod({ ...e, path: [...issue.path, ...e.path] }));
      // A `many()` field: a single value or a list of them.
      const alts = issue.errors
        .map((e) => e[0])
        .filter((e): e is z.core.$ZodIssue => !!e)
        .map((e) =>
          e.code === 'invalid_type'
            ? e.expected
            : e.message.replace(/^Invalid input:?\s*/, '').replace(/^expected\s+/, ''),
        );
      const expected =
        alts.length === 2 && alts[1] === 'array' ? `${alts[0]} or a list of ${alts[0]}s` : alts.join(' or ');
      return [{ path, value: show(value), expected: expected || 'a valid value' }];
    }
    default:
      return [
        {
          path,
          value: show(value),
          expected: issue.message.replace(/^(Invalid input|Too small|Too big):\s*/, '').replace(/^expected\s+/, 'a '),
        },
      ];
  }
}

/** Semantic checks the schema cannot express: cross-references and things on disk. */
function crossChecks(grid: GridConfig, cwd: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const seen = new Map<string, number>();
  grid.models.forEach((m, i) => {
    if (seen.has(m.name))
      issues.push({
        path: `models[${i}].name`,
        value: show(m.name),
        expected: `a unique model name (models[${seen.get(m.name)}] has it too)`,
      });
    seen.set(m.name, i);
    if (isLocalPath(m.path)) {
      const dir = resolve(cwd, m.path);
      if (!existsSync(dir) || !statSync(dir).isDirectory()) {
        issues.push({
          path: `models[${i}].path`,
          value: show(m.path),
          expected: 'an existing model directory (or an s3:// prefix / hub id)',
        });
      } else if (!existsSync(join(dir, 'config.json')) || !existsSync(join(dir, 'tokenizer.json'))) {
        issues.push({
          path: `models[${i}].path`,
          value: show(m.path),
          expected: 'an HF model directory with config.json and tokenizer.json',
        });
      }
    } else if (!/^s3:\/\//.test(m.path)) {
      const problem = hubIdProblem(m.path);
      if (problem)
        issues.push({
          path: `models[${i}].path`,
          value: show(m.path),
          expected: `a local directory, an s3:// prefix or a hub id (owner/name: ${problem})`,
        });
    }
    if (m.revision !== undefined && (isLocalPath(m.path) || /^s3:\/\//.test(m.path)))
      issues.push({
        path: `models[${i}].revision`,
        value: show(m.revision),
        expected: 'no revision: it applies to hub ids only (models[i].path is a local directory or s3:// prefix)',
      });
  });
  grid.speculative.forEach((s, i) => {
    const lookup = s.drafting === 'prompt-lookup';
    if (lookup && s.draft !== undefined)
      issues.push({
        path: `speculative[${i}].draft`,
        value: show(s.draft),
        expected: 'no draft with drafting: prompt-lookup (the proposals come from the prompt itself)',
      });
    if (!lookup && s.draft === undefined)
      issues.push({
        path: `speculative[${i}].draft`,
        value: 'undefined',
        expected: 'a model name from models, or drafting: prompt-lookup (no draft model)',
      });
    if (s.distill !== undefined && s.drafting !== 'distilled')
      issues.push({
        path: `speculative[${i}].distill`,
        value: show(s.distill),
        expected: `no distill with drafting: ${s.drafting ?? 'model'} (it applies to drafting: distilled only)`,
      });
    if (!lookup && s.maxNgram !== undefined)
      issues.push({
        path: `speculative[${i}].maxNgram`,
        value: show(s.maxNgram),
        expected: 'no maxNgram: it applies to drafting: prompt-lookup only',
      });
    for (const role of lookup ? (['target'] as const) : (['target', 'draft'] as const)) {
      if (s[role] !== undefined && !seen.has(s[role]))
        issues.push({
          path: `speculative[${i}].${role}`,
          value: show(s[role]),
          expected: `a model name from models (${[...seen.keys()].join(', ')})`,
        });
    }
    const target = grid.models.find((m) => m.name === s.target);
    const draft = grid.models.find((m) => m.name === s.draft);
    if (target && draft && target.name === draft.name) {
      issues.push({
        path: `speculative[${i}].draft`,
        value: show(s.draft),
        expected: 'a different model than the target',
      });
    } else if (target && draft) {
      const a = vocabularyOf(target.path, cwd);
      const b = vocabularyOf(draft.path, cwd);
      // Greedy speculative decoding compares token ids: the two tokenizers must be the same.
      if (a && b && a !== b)
        issues.push({
          path: `speculative[${i}].draft`,
          value: show(s.draft),
          expected: `a model with the same tokenizer as the target ${s.target} (their tokenizer.json files' sha256 differ)`,
        });
    }
  });
  grid.data.datasets?.forEach((d, i) => {
    if (typeof d !== 'string') return;
    if (!isDatasetName(d))
      issues.push({
        path: `data.datasets[${i}]`,
        value: show(d),
        expected: `one of the UnifiedQA datasets: ${DATASET_NAMES.join(', ')}, or a custom dataset {name, format, train, test}`,
      });
  });
  issues.push(...customDatasetChecks(grid.data, cwd));
  grid.methods.forEach((m, i) => issues.push(...methodChecks(m, `methods[${i}]`, grid.training.maxSteps)));
  issues.push(...memoryChecks(grid, cwd));
  const precisions = grid.eval.precision === undefined ? [] : [grid.eval.precision].flat();
  if (grid.eval.engine === 'torch' && precisions.includes('int8'))
    issues.push({
      path: 'eval.precision',
      value: show(grid.eval.precision),
      expected: 'fp32 with eval.engine torch (int8 is a quantized ONNX export: eval.engine onnx or auto)',
    });
  const { warmupSteps, checkpointEverySteps, maxSteps } = grid.training;
  if (warmupSteps > maxSteps) {
    issues.push({
      path: 'training.warmupSteps',
      value: show(warmupSteps),
      expected: `at most training.maxSteps (${maxSteps})`,
    });
  }
  if (checkpointEverySteps > maxSteps) {
    // The trainer would accept it, but no checkpoint is ever written: durability silently off.
    issues.push({
      path: 'training.checkpointEverySteps',
      value: show(checkpointEverySteps),
      expected: `at most training.maxSteps (${maxSteps}), or no checkpoint is ever written and a retry restarts from step 0 (unset, it defaults to ${DEFAULT_CHECKPOINT_EVERY})`,
    });
  }
  return issues;
}

/**
 * A `full` fine-tune that cannot fit (the trainer's ModelTooLarge, found before any data is
 * prepared): local models only, where config.json is readable; the trainer checks every model
 * again against the real device before loading weights.
 */
function memoryChecks(grid: GridConfig, cwd: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  grid.methods.forEach((entry, j) => {
    if (entry.method !== 'full') return;
    for (const m of grid.models) {
      if (!isLocalPath(m.path)) continue;
      const misfit = fullFineTuneMisfit(resolve(cwd, m.path), grid.training);
      if (!misfit) continue;
      const { need, have, params } = misfit;
      issues.push({
        path: `methods[${j}].method`,
        value: show(entry.method),
        expected:
          `a method that fits (ModelTooLarge): full fine-tuning of ${m.name} (${(params / 1e9).toFixed(2)}B parameters) ` +
          `needs about ${gib(need.total)} (weights ${gib(need.weights)}, gradients and ${grid.training.optimizer} states ` +
          `${gib(need.trainable)}, activations ${gib(need.activations)}) but ${have.source} has ${gib(have.bytes)}; ` +
          'use lora or qlora',
      });
    }
  });
  return issues;
}

const DEFAULT_CHECKPOINT_EVERY = trainingSchema.parse({}).checkpointEverySteps;
const valuesOf = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);

/**
 * Rules between the fields of one method entry, as trainer/spec.py applies them to each run. A
 * list-valued field expands the grid, so a rule holds for every combination, not only the first.
 */
function methodChecks(m: GridConfig['methods'][number], at: string, maxSteps: number): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (m.method === 'adalora') {
    if (m.tinit + m.tfinal >= maxSteps) {
      issues.push({
        path: `${at}.tfinal`,
        value: show(m.tfinal),
        expected: `tinit + tfinal < training.maxSteps (${maxSteps}) so AdaLoRA has a budgeting phase`,
      });
    }
    for (const initR of valuesOf(m.initR)) {
      for (const targetR of valuesOf(m.targetR)) {
        if (targetR > initR)
          issues.push({
            path: `${at}.targetR`,
            value: show(targetR),
            expected: `at most initR (${initR}) in every (initR, targetR) run: AdaLoRA prunes the rank down from initR to targetR`,
          });
      }
    }
  }
  if (m.method === 'ia3' && m.feedforwardModules) {
    if (!m.targetModules) {
      issues.push({
        path: `${at}.feedforwardModules`,
        value: show(m.feedforwardModules),
        expected: 'targetModules given too (feedforwardModules must be a subset of targetModules)',
      });
    } else {
      const extra = m.feedforwardModules.filter((n) => !m.targetModules!.includes(n));
      if (extra.length)
        issues.push({
          path: `${at}.feedforwardModules`,
          value: show(m.feedforwardModules),
          expected: `a subset of targetModules ${show(m.targetModules)} (not in it: ${extra.join(', ')})`,
        });
    }
  }
  return issues;
}

/** sha256 of a local model's tokenizer.json, or null when it is not a readable local directory. */
function vocabularyOf(path: string, cwd: string): string | null {
  if (!isLocalPath(path)) return null;
  try {
    return createHash('sha256')
      .update(readFileSync(join(resolve(cwd, path), 'tokenizer.json')))
      .digest('hex');
  } catch {
    return null;
  }
}

/** A model path that names a local directory (not s3://, not a hub id like `org/name`). */
export function isLocalPath(p: string): boolean {
  if (/^[a-z0-9]+:\/\//i.test(p)) return false;
  return p.startsWith('.') || p.startsWith('/') || p.startsWith('~') || existsSync(p);
}

/** Relative local paths and file:// URLs resolve against `cwd` so workers see absolute paths. */
function resolvePaths(grid: GridConfig, cwd: string): GridConfig {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(cwd, p));
  const url = (u: string) => {
    if (u.startsWith('file://')) return 'file://' + abs(u.slice('file://'.length));
    if (/^[a-z0-9]+:\/\//i.test(u)) return u;
    return 'file://' + abs(u);
  };
  // Custom datasets' files too: a worker on another directory (or machine) must find the same file.
  const datasets = grid.data.datasets?.map((d) =>
    typeof d === 'string'
      ? d
      : {
          ...d,
          ...(d.train !== undefined ? { train: url(d.train) } : {}),
          ...(d.test !== undefined ? { test: url(d.test) } : {}),
          ...(d.hfDisk !== undefined ? { hfDisk: abs(d.hfDisk) } : {}),
        },
  );
  return {
    ...grid,
    store: url(grid.store),
    data: { ...grid.data, baseUrl: url(grid.data.baseUrl), ...(datasets ? { datasets } : {}) },
    models: grid.models.map((m) => (isLocalPath(m.path) ? { ...m, path: abs(m.path) } : m)),
  };
}

/** Validate an already-parsed object. Throws {@link ConfigError} listing every issue. */
export function validateGrid(raw: unknown, source = '<config>', cwd = process.cwd()): GridConfig {
  const parsed = gridSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) throw new ConfigError(source, parsed.error.issues.flatMap(fromZod));
  const issues = crossChecks(parsed.data, cwd);
  if (issues.length) throw new ConfigError(source, issues);
  return resolvePaths(parsed.data, cwd);
}

/**
 * Parse YAML text (with line-accurate syntax errors), apply `--set path=value` overrides (see
 * overrides.ts), and validate the result.
 */
export function parseGridYaml(
  text: string,
  source = '<config>',
  cwd = process.cwd(),
  overrides: readonly string[] = [],
): GridConfig {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length) {
    throw new ConfigError(
      source,
      doc.errors.map((e) => ({
        path: `(yaml line ${e.linePos?.[0]?.line ?? '?'})`,
        value: show(e.code),
        expected: e.message.split('\n')[0] ?? 'valid YAML',
      })),
    );
  }
  if (overrides.length === 0) return validateGrid(doc.toJS(), source, cwd);
  const { doc: edited, problems } = applyOverrides(doc.toJS(), overrides);
  const label = `${source} with ${overrides.map((o) => `--set ${o}`).join(' ')}`;
  if (problems.length) throw new ConfigError(label, problems);
  return validateGrid(edited, label, cwd);
}

export function loadGridConfig(file: string, cwd = process.cwd(), overrides: readonly string[] = []): GridConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [
      { path: '(file)', value: show(file), expected: `a readable YAML file (${(err as Error).message})` },
    ]);
  }
  return parseGridYaml(text, file, cwd, overrides);
}
