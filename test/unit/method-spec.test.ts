/**
 * The method spec stays typed from the schema to the activity (src/contracts/method.ts): a planned
 * run's spec is one variant of a discriminated union, every hyperparameter one resolved value.
 * The type assertions below are checked by `tsc` (a wrong type is a compile error of this file).
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { MethodSpec, MethodSpecOf } from '../../src/contracts/method';
import { planRuns } from '../../src/config/plan';
import { gridSchema } from '../../src/config/schema';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const typeIs = <A, B>(ok: Equal<A, B>) => ok;

// Lists narrowed to one value; string lists stay lists; lr lifted out; speculative is a variant.
typeIs<MethodSpecOf<'lora'>['r'], number>(true);
typeIs<MethodSpecOf<'adalora'>['initR'], number>(true);
typeIs<MethodSpecOf<'adalora'>['tinit'], number>(true);
typeIs<MethodSpecOf<'icl'>['shots'], number>(true);
typeIs<MethodSpecOf<'prompt_tuning'>['initText'], string>(true);
typeIs<MethodSpecOf<'qlora'>['targetModules'], string[] | undefined>(true);
typeIs<MethodSpecOf<'speculative'>['gamma'], number>(true);
typeIs<'lr' extends keyof MethodSpecOf<'lora'> ? true : false, false>(true);
typeIs<MethodSpec['method'], 'lora' | 'qlora' | 'adalora' | 'ia3' | 'prompt_tuning' | 'full' | 'icl' | 'speculative'>(
  true,
);

const grid = gridSchema.parse({
  name: 'spec',
  models: [
    { name: 'm', path: '/m', family: 'llama' },
    { name: 'd', path: '/d', family: 'llama' },
  ],
  methods: [
    { method: 'lora', r: [4, 8], lr: [1e-4, 2e-4] },
    { method: 'adalora', initR: [12, 6] },
    { method: 'prompt_tuning' },
    { method: 'icl', shots: [0, 3] },
    { method: 'qlora', targetModules: ['q_proj', 'v_proj'] },
  ],
  speculative: [{ target: 'm', draft: 'd' }],
});

describe('typed method spec', () => {
  const runs = planRuns(grid);

  it('has every hyperparameter resolved to one value (schema defaults applied once, lists expanded)', () => {
    for (const { method } of runs) {
      for (const [k, v] of Object.entries(method)) {
        assert.ok(k === 'targetModules' || !Array.isArray(v), `${method.method}.${k} is one value`);
        assert.notEqual(v, undefined, `${method.method}.${k} is resolved`);
      }
      assert.ok(!('lr' in method), 'a method lr lives in training.lr');
    }
    const spec = runs.find((r) => r.method.method === 'speculative')!.method;
    assert.deepEqual(spec, { method: 'speculative', draft: 'd', gamma: 4 }, 'gamma: the schema default');
    const pt = runs.find((r) => r.method.method === 'prompt_tuning')!.method;
    assert.deepEqual(pt, { method: 'prompt_tuning', numVirtualTokens: 20, initText: 'answer the question' });
    assert.deepEqual(
      runs.filter((r) => r.method.method === 'icl').map((r) => r.shots),
      [0, 3, 0, 3],
      'two models',
    );
    assert.deepEqual(
      runs.filter((r) => r.method.method === 'lora').map((r) => r.training.lr),
      [1e-4, 2e-4, 1e-4, 2e-4, 1e-4, 2e-4, 1e-4, 2e-4],
    );
  });

  it('narrows on method, so a consumer reads fields without casts or repeated defaults', () => {
    const describe = (m: MethodSpec): string => {
      switch (m.method) {
        case 'lora':
        case 'qlora':
          return `r${m.r}`;
        case 'adalora':
          return `r${m.initR}->${m.targetR}`;
        case 'prompt_tuning':
          return `vt${m.numVirtualTokens}`;
        case 'icl':
          return `${m.shots}-shot`;
        case 'speculative':
          return `${m.draft}/g${m.gamma}`;
        default:
          return m.method;
      }
    };
    assert.deepEqual(
      [...new Set(runs.map((r) => describe(r.method)))],
      ['r4', 'r8', 'r12->8', 'r6->8', 'vt20', '0-shot', '3-shot', 'd/g4'],
    );
  });
});
