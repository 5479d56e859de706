/**
 * What the module opened while the application starts (its DataSource, the polling intervals), closed
 * again when a later startup step fails. Nest calls no shutdown hook when creating the application or
 * a testing module fails, nor when init() fails in a hook: without this the module's connection pool
 * would stay open (a MariaDB pool keeps the process alive for good, a PostgreSQL one for ~10 s).
 */
export class WorkerStartup {
  private readonly undo: (() => unknown)[] = [];

  /** Registers how to close something just opened; what was opened last is closed first. */
  opened(close: () => unknown): void {
    this.undo.unshift(close);
  }

  /** Runs a startup step; when it throws, closes everything opened so far and rethrows. */
  async step<T>(run: () => T | Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      for (const close of this.undo.splice(0)) {
        try {
          await close();
        } catch {
          // The startup error is the one worth reporting.
        }
      }
      throw error;
    }
  }
}
