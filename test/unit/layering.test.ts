/**
 * The layering rule in eslint.config.mjs: imports flow workers → activities/workflows → src.
 * Each case lints one line, placed as if it were a file in that folder, with the repo's real
 * config, and checks that no-restricted-imports fires (or, for the allowed directions, does not).
 */
import { strict as assert } from 'node:assert';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { ESLint } from 'eslint';

const REPO = resolve(__dirname, '..', '..');
const eslint = new ESLint({ cwd: REPO });

/** Messages of no-restricted-imports for `code` linted as the file at `filePath` (repo-relative). */
async function restricted(filePath: string, code: string): Promise<string[]> {
  const results = await eslint.lintText(`${code}\nexport {};\n`, { filePath: resolve(REPO, filePath) });
  assert.equal(results.length, 1, `${filePath} was not linted (ignored?)`);
  return results[0]!.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('layering lint rule', () => {
  const violations: Array<[string, string, RegExp]> = [
    [
      'src/report/layer-fixture.ts',
      "import type { RunResult } from '../../workflows/types';",
      /src\/ is the bottom layer/,
    ],
    ['src/cli/layer-fixture.ts', "import { trainModel } from '../../activities';", /src\/ is the bottom layer/],
    [
      'src/cli/layer-fixture.ts',
      "import { metricsSettings } from '../../workers/metrics';",
      /src\/ is the bottom layer/,
    ],
    ['src/data/layer-fixture.ts', "import { CATALOG } from '../../datasets/catalog';", /src\/ is library code/],
    [
      'src/engine/layer-fixture.ts',
      "import { ensureTinyOnnx } from '../../test/helpers/engine-fixture';",
      /src\/ is library code/,
    ],
    [
      'src/layer-fixture.ts',
      "export { benchmarkKvCache } from '../bench/engine-kv-benchmark';",
      /src\/ is library code/,
    ],
    [
      'activities/layer-fixture.ts',
      "import { reportTrainingProgress } from '../workers/metrics';",
      /Activities never import workers/,
    ],
    [
      'workflows/layer-fixture.ts',
      "import type { WorkerSetOptions } from '../workers/create';",
      /Workflows never import workers/,
    ],
    ['workflows/layer-fixture.ts', "import { trainModel } from '../activities';", /as types only/],
  ];
  for (const [file, code, message] of violations) {
    it(`rejects ${code} in ${file}`, async () => {
      const messages = await restricted(file, code);
      assert.equal(messages.length, 1, `expected one no-restricted-imports error, got ${JSON.stringify(messages)}`);
      assert.match(messages[0]!, message);
    });
  }

  const allowed: Array<[string, string]> = [
    ['src/cli/layer-fixture.ts', "import type { GridResult, RunResult } from '../contracts';"],
    ['src/contracts/layer-fixture.ts', "import type { ExperimentGridWorkflowInput } from './workflows';"],
    ['activities/layer-fixture.ts', "import { reportTrainingProgress } from '../src/common/progress';"],
    ['workflows/layer-fixture.ts', "import type * as activities from '../activities';"],
    ['workers/layer-fixture.ts', "import * as activities from '../activities';"],
  ];
  for (const [file, code] of allowed) {
    it(`allows ${code} in ${file}`, async () => {
      assert.deepEqual(await restricted(file, code), []);
    });
  }
});
