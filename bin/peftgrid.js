#!/usr/bin/env node
// The CLI is TypeScript run through tsx, so `npx peftgrid` works from a clone with no build step.
// runCli() is called unconditionally: however this file is reached (npx, npm exec, npm link, a
// symlink, `node bin/peftgrid.js`), the command runs. Node resolves the symlinks of the main
// module, so tsx and src/ are found next to the real file.
require('tsx/cjs');
require('../src/cli/main.ts').runCli(process.argv.slice(2));
