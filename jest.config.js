/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } } }],
    // ESM-only dependencies (cookie@1 under fastify's light-my-request): jest on Node 20 cannot require(esm).
    '^.+\\.js$': ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!(cookie)/)'],
  testMatch: ['**/*.test.ts'],
  // Long fault tests (test/faults/*.long.test.ts: restarts, kill -9, SIGTERM under load) run in `npm run test:faults`.
  testPathIgnorePatterns: ['/node_modules/', '/data/', '/data-demo/', '\\.long\\.test\\.ts$'],
  // Two cores: parallel workers fight over them; two workers keep the run short without thrashing.
  maxWorkers: 2,
  testTimeout: 30000,
  // Every fast-check property runs from a printed seed that FC_SEED replays (issue 9).
  setupFilesAfterEnv: ['<rootDir>/test/support/fast-check-seed.ts'],
};
