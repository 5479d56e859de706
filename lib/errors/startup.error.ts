import { WorkerError } from './worker.error.js';

/**
 * The driver package of the chosen database type is not installed: drivers are optional peer
 * dependencies, so an app installs only the one it uses. `installCommand` is what to run.
 */
export class MissingDatabaseDriverError extends WorkerError {
  readonly installCommand: string;

  constructor(
    readonly type: string,
    readonly packageName: string,
    packageSpec: string,
    cause?: unknown,
  ) {
    const installCommand = `npm install ${packageSpec}`;
    const database =
      type === 'better-sqlite3'
        ? 'The embedded SQLite database (type "better-sqlite3", the default)'
        : `Database type "${type}"`;
    super(`${database} needs the ${packageName} package, which is not installed: run ${installCommand}`, { cause });
    this.installCommand = installCommand;
  }
}

/**
 * The queue tables, or columns that later migrations add, do not exist on the database and nothing at
 * startup creates them (no synchronize, no migrationsRun): every poll would fail with "relation does
 * not exist" or "column … does not exist".
 */
export class MissingWorkerTablesError extends WorkerError {
  constructor(
    readonly type: string,
    readonly missingTables: readonly string[],
    /** "table.column" of the columns missing from tables that exist: a database of an earlier release. */
    readonly missingColumns: readonly string[] = [],
  ) {
    // The embedded database's options have no migrationsRun, and its DataSource cannot be shared.
    const remedy =
      type === 'better-sqlite3'
        ? `leave database.synchronize at true (the default) in WorkerModule's options, or run ` +
          `workerMigrations('better-sqlite3') on the file`
        : `set database: { migrationsRun: true } in WorkerModule's options (it runs workerMigrations('${type}')), ` +
          `or add ...workerMigrations('${type}') to the migrations of your own DataSource and run them`;
    const problems = [
      ...(missingTables.length > 0 ? [`the queue tables ${missingTables.join(', ')} do not exist`] : []),
      ...(missingColumns.length > 0
        ? [
            `the columns ${missingColumns.join(', ')} do not exist ` +
              '(a database of an earlier release: run the newer migrations)',
          ]
        : []),
    ];
    const sentence = problems.join('; and ');
    super(`On this ${type} database ${sentence}. Create them: ${remedy}`);
  }
}

/**
 * A second global WorkerModule in one application. Every injection of WorkerService or EventService
 * would get one of the two unpredictably (and dispatch into its database): give `isGlobal: false` to
 * each further instance and import it in the module that uses it.
 */
export class DuplicateWorkerModuleError extends WorkerError {
  constructor(readonly globalInstances: number) {
    super(
      `WorkerModule is imported ${globalInstances} times as a global module in one application: ` +
        'only one instance may be global (isGlobal, the default). Give the others isGlobal: false and import ' +
        'each in the module whose providers use it; the same forRoot() value imported twice is one instance.',
    );
  }
}
