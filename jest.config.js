// Suites that need a database server run only when its URL is set (.ci/run always sets both, and
// with CI=true test/support/databases.ts fails the run when one is missing).
const postgres = Boolean(process.env.WORKERS_TEST_POSTGRES_URL);
const mysql = Boolean(process.env.WORKERS_TEST_MYSQL_URL);
const serverOnlySuites = [
  ...(postgres ? [] : ['<rootDir>/test/postgres-restart.spec.ts', '<rootDir>/test/wakeups.spec.ts']),
  ...(postgres || mysql ? [] : ['<rootDir>/test/multi-process.spec.ts', '<rootDir>/test/server-databases.spec.ts']),
];

/** @type {import('jest').Config} */
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.spec.ts'],
  testPathIgnorePatterns: ['/node_modules/', ...serverOnlySuites],
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }],
  },
  testTimeout: 30000,
};
