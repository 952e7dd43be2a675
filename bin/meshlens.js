#!/usr/bin/env node
// Launcher: runs the TypeScript CLI through tsx, so `npx meshlens` and `npm start` need no build step.
require('tsx/cjs/api').register();
require('./meshlens.ts');
