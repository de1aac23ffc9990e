/**
 * The rules of custom datasets (`data.datasets[i]` objects) that the schema cannot express: one
 * source per dataset, names that cannot be mistaken for UnifiedQA's, and local files that exist, so
 * a typo fails `peftgrid validate` instead of a download activity minutes later.
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { hubIdProblem } from '../common/hub-id';
import { DATASET_NAMES, isDatasetName } from '../data/catalog';
import type { CustomDatasetConfig, DataConfig } from './schema';

interface Issue {
  path: string;
  value: string;
  expected: string;
}

const show = (v: unknown): string => {
  const s = JSON.stringify(v);
  return s.length > 80 ? s.slice(0, 77) + '...' : s;
};

/** The custom datasets of a data config, in order. */
export function customDatasets(data: Pick<DataConfig, 'datasets'>): CustomDatasetConfig[] {
  return (data.datasets ?? []).filter((d): d is CustomDatasetConfig => typeof d !== 'string');
}

/** A local file a `train`/`test` value names (a path or file:// URL), or null for remote URLs. */
function localFile(p: string, cwd: string): string | null {
  // As validate.ts resolves them: `file://` + a path, relative ones against the config's directory.
  if (p.startsWith('file://')) return resolve(cwd, decodeURIComponent(p.slice('file://'.length)));
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(p)) return null;
  return resolve(cwd, p);
}

export function customDatasetChecks(data: DataConfig, cwd: string): Issue[] {
  const issues: Issue[] = [];
  const seen = new Map<string, number>();
  (data.datasets ?? []).forEach((d, i) => {
    const at = `data.datasets[${i}]`;
    const name = typeof d === 'string' ? d : d.name;
    if (seen.has(name))
      issues.push({
        path: typeof d === 'string' ? at : `${at}.name`,
        value: show(name),
        expected: `a unique dataset name (data.datasets[${seen.get(name)}] has it too)`,
      });
    seen.set(name, i);
    if (typeof d === 'string') return;
    if (isDatasetName(d.name))
      issues.push({
        path: `${at}.name`,
        value: show(d.name),
        expected: `a name that is not a UnifiedQA dataset (${DATASET_NAMES.join(', ')}): list that one by name instead`,
      });
    const files = d.train !== undefined || d.test !== undefined;
    const sources = [
      files ? 'train/test' : null,
      d.hfDisk !== undefined ? 'hfDisk' : null,
      d.hub !== undefined ? 'hub' : null,
    ];
    const given = sources.filter((x) => x !== null);
    if (given.length > 1)
      issues.push({
        path: `${at}.${given[1] === 'hfDisk' ? 'hfDisk' : 'hub'}`,
        value: show(given[1] === 'hfDisk' ? d.hfDisk : d.hub),
        expected: `one source: train/test JSONL files, hfDisk or hub (got ${given.join(' and ')})`,
      });
    else if (given.length === 0)
      issues.push({
        path: at,
        value: show(d),
        expected: 'a source: train and test (JSONL files), hfDisk (a save_to_disk directory) or hub (owner/name)',
      });
    if (d.hub !== undefined) {
      const problem = hubIdProblem(d.hub);
      if (problem)
        issues.push({ path: `${at}.hub`, value: show(d.hub), expected: `a hub dataset id owner/name (${problem})` });
    }
    if (d.revision !== undefined && d.hub === undefined)
      issues.push({
        path: `${at}.revision`,
        value: show(d.revision),
        expected: 'no revision: it applies to hub datasets only',
      });
    if (files && given.length === 1) {
      for (const split of ['train', 'test'] as const) {
        const v = d[split];
        if (v === undefined) {
          issues.push({
            path: `${at}.${split}`,
            value: 'nothing (missing)',
            expected: `a JSONL file of the ${split} split (both train and test are needed)`,
          });
          continue;
        }
        const file = localFile(v, cwd);
        if (file && !(existsSync(file) && statSync(file).isFile()))
          issues.push({
            path: `${at}.${split}`,
            value: show(v),
            expected: 'an existing JSONL file (or an https:// / s3:// URL)',
          });
      }
    }
    if (d.splits !== undefined && d.hfDisk === undefined && d.hub === undefined)
      issues.push({
        path: `${at}.splits`,
        value: show(d.splits),
        expected: 'no splits: they name the splits of an hfDisk DatasetDict or a hub dataset',
      });
    if (d.hfDisk !== undefined) {
      const dir = resolve(cwd, d.hfDisk);
      if (!existsSync(join(dir, 'dataset_dict.json')))
        issues.push({
          path: `${at}.hfDisk`,
          value: show(d.hfDisk),
          expected: 'a DatasetDict directory written by save_to_disk (with dataset_dict.json)',
        });
    }
  });
  return issues;
}
