/*
 * Log and error texts, by area. Each area keeps its texts together under its own header.
 */

// ---------------------------------------------------------------------------------------------
// Storage: statements, dialects and the TypeORM repository (lib/storage)
// ---------------------------------------------------------------------------------------------

export const needsOpenTransaction = (): string =>
  'This needs the EntityManager of an open transaction (dataSource.transaction((manager) => …))';

export const cannotJoinCallerTransaction = (type: string): string =>
  `The ${type} dialect cannot join a caller's transaction: TypeORM runs all its queries on one connection there`;

export const notAnInteger = (what: string, value: string | number): string =>
  `Cannot write ${what} ${String(value)} into SQL: it is not an integer`;

export const notClaimedHere = (): string =>
  'TypeOrmWorkerRepository can only complete, retry or fail rows it claimed itself';

export const failedModelsOfCreator = (): string =>
  'TypeOrmWorkerRepository.failWorkers needs failed models made by TypeOrmWorkerCreator';
