// Lint rules that guard architecture, not taste: workflow code must stay deterministic, so it may
// not import Node builtins, child processes or the ONNX runtime (they belong in activities).
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

export default tseslint.config(
  { ignores: ['node_modules/**', '.venv/**', '.data/**', 'dist/**', '**/*.js', '**/*.mjs'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            ...nodeBuiltins.map((name) => ({ name, message: 'Workflow code must be deterministic: no Node builtins.' })),
            { name: 'onnxruntime-node', message: 'ONNX Runtime belongs in activities.' },
            { name: 'pino', message: 'Use the workflow logger (log from @temporalio/workflow).' },
            { name: '@aws-sdk/client-s3', message: 'Object-store I/O belongs in activities.' },
          ],
          patterns: [
            { group: ['../activities/*', '../activities', '../src/store/*', '../src/engine/*'], allowTypeImports: true, message: 'Workflows import activities as types only.' },
          ],
        },
      ],
      'no-restricted-globals': ['error', 'setTimeout', 'setInterval', 'process', 'Buffer'],
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'Use workflow time (Date is deterministic in workflows, but prefer workflow.sleep/now APIs).' },
        { object: 'Math', property: 'random', message: 'Math.random is replaced in workflows; use uuid4() or a seeded generator.' },
      ],
    },
  },
);
