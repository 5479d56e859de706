import type { MigrationInterface, QueryRunner } from 'typeorm';
import { collationForServer } from '../entities/worker.entity.js';

/*
 * Exact names on MySQL/MariaDB: utf8mb4_bin pads with spaces, so a worker of queue 'mail' ran events
 * of 'mail ' and unique key 'key ' held 'key' off. The name columns take the server's binary NO PAD
 * collation, which it is asked for: type 'mysql' may be MariaDB, and neither server knows the other's
 * name for it. PostgreSQL and SQLite compare text exactly already and need nothing.
 * Reverting fails while names that differ only in trailing spaces share a key or schedule.
 */
export class ExactNestjsWorkerNamesMysql1764800000000 implements MigrationInterface {
  async up(queryRunner: QueryRunner): Promise<void> {
    const [{ version }] = (await queryRunner.query('SELECT VERSION() AS version')) as [{ version: string }];
    await modifyNameColumns(queryRunner, collationForServer(version));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await modifyNameColumns(queryRunner, 'utf8mb4_bin');
  }
}

async function modifyNameColumns(queryRunner: QueryRunner, collation: string): Promise<void> {
  const column = (name: string, nullable = false): string =>
    `MODIFY \`${name}\` varchar(255) CHARACTER SET utf8mb4 COLLATE ${collation} ${nullable ? 'NULL' : 'NOT NULL'}`;
  for (const table of ['`nestjs_workers`', '`nestjs_failed_workers`']) {
    await queryRunner.query(
      `ALTER TABLE ${table} ${column('queue_name')}, ${column('event_name')}, ${column('unique_key', true)}`,
    );
  }
  await queryRunner.query(`ALTER TABLE \`nestjs_workers_schedules\` ${column('name')}`);
}
