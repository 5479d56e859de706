import type { MigrationInterface, QueryRunner } from 'typeorm';
import { KEYED_ROWS } from '../entities/worker.entity.js';
import { postgresTables, qualifiedName } from './names.js';

/*
 * Keyed rows only in the unique index (PostgreSQL, SQLite): most rows have no key, and an index
 * entry for each of them was written on every insert and claim for nothing. MySQL/MariaDB have no
 * partial indexes; their index stays as it is.
 */

export class PartialNestjsWorkerUniqueIndexPostgres1764600000000 implements MigrationInterface {
  async up(queryRunner: QueryRunner): Promise<void> {
    const [pending] = postgresTables(queryRunner);
    await queryRunner.query(`DROP INDEX ${qualifiedName(queryRunner, 'IDX_nestjs_workers_unique')}`);
    await queryRunner.query(
      `CREATE UNIQUE INDEX "IDX_nestjs_workers_unique" ON ${pending} ("queue_name", "unique_key") WHERE ${KEYED_ROWS}`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const [pending] = postgresTables(queryRunner);
    await queryRunner.query(`DROP INDEX ${qualifiedName(queryRunner, 'IDX_nestjs_workers_unique')}`);
    await queryRunner.query(
      `CREATE UNIQUE INDEX "IDX_nestjs_workers_unique" ON ${pending} ("queue_name", "unique_key")`,
    );
  }
}

export class PartialNestjsWorkerUniqueIndexSqlite1764600000000 implements MigrationInterface {
  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP INDEX "IDX_nestjs_workers_unique"');
    await queryRunner.query(
      `CREATE UNIQUE INDEX "IDX_nestjs_workers_unique" ON "nestjs_workers" ("queue_name", "unique_key") WHERE ` +
        `${KEYED_ROWS}`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP INDEX "IDX_nestjs_workers_unique"');
    await queryRunner.query(
      'CREATE UNIQUE INDEX "IDX_nestjs_workers_unique" ON "nestjs_workers" ("queue_name", "unique_key")',
    );
  }
}
