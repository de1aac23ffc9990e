/**
 * `--set path=value`: edits of the parsed YAML document before it is validated, so an override is
 * checked exactly like the file (an error names the same field path). Paths are dotted, a number
 * indexes a list (`models.0.revision`, `methods.1.r`); values are YAML (`4`, `true`, `main`,
 * `[8, 16]`), so they type the way they would in the file.
 */
import { parse as parseYaml } from 'yaml';

/** A `--set` that cannot be applied; the CLI shows it like a config error (exit 2). */
export interface OverrideProblem {
  path: string;
  value: string;
  expected: string;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `a.b=c` → `{ path: ['a', 'b'], value: 'c' }` (the value may itself contain `=`). */
export function parseOverride(arg: string): { path: string[]; raw: string } | OverrideProblem {
  const eq = arg.indexOf('=');
  const path = eq === -1 ? [] : arg.slice(0, eq).split('.');
  if (eq <= 0 || path.some((p) => p.trim() === ''))
    return {
      path: `--set ${arg}`,
      value: JSON.stringify(arg),
      expected: 'path=value with a dotted path, e.g. training.maxSteps=4',
    };
  return { path, raw: arg.slice(eq + 1) };
}

/**
 * Applies every `--set` in order to a copy of `doc`; returns it, or the problems (an index past the
 * end of a list, a path through a scalar, a value that is not YAML). Missing objects on the way
 * are created (`--set eval.threads=2` without an `eval:` section).
 */
export function applyOverrides(doc: unknown, sets: readonly string[]): { doc: unknown; problems: OverrideProblem[] } {
  const root: unknown = structuredClone(doc ?? {});
  const problems: OverrideProblem[] = [];
  for (const arg of sets) {
    const parsed = parseOverride(arg);
    if (!('raw' in parsed)) {
      problems.push(parsed);
      continue;
    }
    let value: unknown;
    try {
      // An empty value is the empty string, not YAML's null: `--set name=` should fail as a name.
      value = parsed.raw === '' ? '' : parseYaml(parsed.raw);
    } catch (err) {
      problems.push({
        path: parsed.path.join('.'),
        value: JSON.stringify(parsed.raw),
        expected: `a YAML value (${(err as Error).message.split('\n')[0]})`,
      });
      continue;
    }
    const problem = setPath(root, parsed.path, value);
    if (problem) problems.push(problem);
  }
  return { doc: root, problems };
}

function setPath(root: unknown, path: string[], value: unknown): OverrideProblem | undefined {
  let node = root;
  for (const [i, key] of path.entries()) {
    const last = i === path.length - 1;
    const at = path.slice(0, i + 1).join('.');
    if (Array.isArray(node)) {
      const index = /^\d+$/.test(key) ? Number(key) : NaN;
      // One past the end appends (`--set models.1.name=…` after one model); further would leave holes.
      if (!(index <= node.length))
        return {
          path: at,
          value: JSON.stringify(key),
          expected: `a list index from 0 to ${node.length} (${path.slice(0, i).join('.')} has ${node.length} entries)`,
        };
      if (last) node[index] = value;
      else node = node[index] ??= /^\d+$/.test(path[i + 1]!) ? [] : {};
    } else if (isRecord(node)) {
      if (last) node[key] = value;
      else node = node[key] ??= /^\d+$/.test(path[i + 1]!) ? [] : {};
    } else {
      return {
        path: path.slice(0, i).join('.') || '(root)',
        value: JSON.stringify(node),
        expected: `an object or list to set ${key} in`,
      };
    }
  }
  return undefined;
}
