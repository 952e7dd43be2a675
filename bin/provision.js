#!/usr/bin/env node
// Launcher: runs the TypeScript provisioner through tsx, so `npm run provision` needs no build step.
require('tsx/cjs/api').register();
require('./provision.ts');
