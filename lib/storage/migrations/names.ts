import type { QueryRunner } from 'typeorm';

/** Pending, failed and schedules table, in the DataSource's schema when it names one. */
export function postgresTables(queryRunner: QueryRunner): [string, string, string] {
  return [
    qualifiedName(queryRunner, 'nestjs_workers'),
    qualifiedName(queryRunner, 'nestjs_failed_workers'),
    qualifiedName(queryRunner, 'nestjs_workers_schedules'),
  ];
}

/**
 * A table or index name qualified by the DataSource's schema (PostgreSQL indexes live in their table's
 * schema), each part quoted by the driver (a '"' in it doubled), so a schema name is never read as SQL.
 */
export function qualifiedName(queryRunner: QueryRunner, name: string): string {
  const { options, driver } = queryRunner.connection;
  const schema = (options as { schema?: string }).schema;
  return schema ? `${driver.escape(schema)}.${driver.escape(name)}` : driver.escape(name);
}
