#!/usr/bin/env node
// Launcher for `npm run bench`, as bin/meshlens.js: runs the TypeScript through tsx, no build step.
// `--server` is the child process the bench starts for meshlens itself (bench/server.ts), `--baseline` the one
// that measures JSON.parse (bench/baseline.ts).
// The child lists its threads before loading anything, so it can tell Node's startup threads from libuv's pool.
const threadsAtStart = process.argv[2] === '--server' ? listThreads() : [];
require('tsx/cjs/api').register();
if (process.argv[2] === '--server') {
  require('./server.ts')
    .runServer(threadsAtStart)
    .catch((err) => {
      process.stderr.write(`bench server: failed: ${(err && err.stack) || String(err)}\n`);
      process.exit(1);
    });
} else if (process.argv[2] === '--baseline') {
  require('./baseline.ts').runBaselineChild(JSON.parse(process.argv[3]));
} else {
  require('./index.ts').runBench();
}

function listThreads() {
  try {
    return require('node:fs').readdirSync('/proc/self/task');
  } catch {
    return [];
  }
}
