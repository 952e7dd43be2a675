// Launcher of a meshlens target on the relay bus (test/support/relay-bus.ts), run by the distributed test with
// `fork`: like bin/meshlens.js, it runs the TypeScript through tsx.
require('tsx/cjs/api').register();
require('./relay-child-main.ts');
