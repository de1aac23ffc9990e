#!/usr/bin/env node
// The CLI is TypeScript run through tsx, so `npx peftgrid` works from a clone with no build step.
require('tsx/cjs');
require('../src/cli/main.ts');
