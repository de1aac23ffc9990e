// Lint rules that guard architecture, not taste: workflow code must stay deterministic, so it may
// not import Node builtins, child processes or the ONNX runtime (they belong in activities).
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

// Imports flow one way: workers → activities/workflows → src (docs: ARCHITECTURE.md, contracts).
// Types that cross a layer live in src/contracts, so no exception is needed for `import type`.
// A relative import that climbs out (`../`…) into a top-level folder is matched by name.
const intoFolders = (folders, message) => ({ regex: `^(\\.\\./)+(${folders.join('|')})(/|$)`, message });
const LAYERS = {
  src: [
    intoFolders(
      ['workflows', 'activities', 'workers'],
      'src/ is the bottom layer: it never imports workflows/, activities/ or workers/ (shared types go in src/contracts).',
    ),
    intoFolders(
      ['datasets', 'bench', 'test'],
      'src/ is library code: it never imports datasets/, bench/ or test/ (the catalog is src/data/catalog.ts).',
    ),
  ],
  activities: [
    intoFolders(
      ['workers', 'bench', 'test'],
      'Activities never import workers/ (training progress is src/common/progress.ts), bench/ or test/.',
    ),
  ],
  workflows: [intoFolders(['workers', 'bench', 'test'], 'Workflows never import workers/, bench/ or test/.')],
};

export default tseslint.config(
  { ignores: ['node_modules/**', '.venv/**', '.data/**', 'dist/**', '**/*.js', '**/*.mjs'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  { files: ['src/**/*.ts'], rules: { 'no-restricted-imports': ['error', { patterns: LAYERS.src }] } },
  { files: ['activities/**/*.ts'], rules: { 'no-restricted-imports': ['error', { patterns: LAYERS.activities }] } },
  {
    // This rule's options replace, not merge with, any earlier ones: the layering patterns are repeated here.
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            ...nodeBuiltins.map((name) => ({
              name,
              message: 'Workflow code must be deterministic: no Node builtins.',
            })),
            { name: 'onnxruntime-node', message: 'ONNX Runtime belongs in activities.' },
            { name: 'pino', message: 'Use the workflow logger (log from @temporalio/workflow).' },
            { name: '@aws-sdk/client-s3', message: 'Object-store I/O belongs in activities.' },
          ],
          patterns: [
            {
              group: ['../activities/*', '../activities', '../src/store/*', '../src/engine/*'],
              allowTypeImports: true,
              message: 'Workflows import activities as types only.',
            },
            ...LAYERS.workflows,
          ],
        },
      ],
      'no-restricted-globals': ['error', 'setTimeout', 'setInterval', 'process', 'Buffer'],
      'no-restricted-properties': [
        'error',
        {
          object: 'Date',
          property: 'now',
          message: 'Use workflow time (Date is deterministic in workflows, but prefer workflow.sleep/now APIs).',
        },
        {
          object: 'Math',
          property: 'random',
          message: 'Math.random is replaced in workflows; use uuid4() or a seeded generator.',
        },
      ],
    },
  },
);
