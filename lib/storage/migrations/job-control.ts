import type { MigrationInterface, QueryRunner } from 'typeorm';
import { postgresTables, qualifiedName } from './names.js';

/*
 * Job control (priority, unique events, recurring events): two columns on both queue tables, an
 * index in claim order (priority first), a unique index for keyed rows, and the recurring events'
 * slot table.
 * A release's migrations never change once published; later schema changes get classes of their own.
 */

export class AddNestjsWorkerJobControlPostgres1764500000000 implements MigrationInterface {
  async up(queryRunner: QueryRunner): Promise<void> {
    const [pending, failed, schedules] = postgresTables(queryRunner);
    for (const table of [pending, failed]) {
      await queryRunner.query(`ALTER TABLE ${table} ADD "priority" integer NOT NULL DEFAULT '0'`);
      await queryRunner.query(`ALTER TABLE ${table} ADD "unique_key" character varying(255)`);
    }
    await queryRunner.query(
      `CREATE INDEX "IDX_nestjs_workers_claim" ON ${pending} ("queue_name", "priority", "available_at", "id")`,
    );
    await queryRunner.query(
      `CREATE UNIQUE INDEX "IDX_nestjs_workers_unique" ON ${pending} ("queue_name", "unique_key")`,
    );
    await queryRunner.query(
      `CREATE TABLE ${schedules} ("name" character varying(255) NOT NULL, "last_slot_at" bigint NOT NULL, ` +
        `"updated_at" bigint NOT NULL, CONSTRAINT "PK_4e51f4d75ecd881e284e0c805cd" PRIMARY KEY ("name"))`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const [pending, failed, schedules] = postgresTables(queryRunner);
    await queryRunner.query(`DROP TABLE ${schedules}`);
    await queryRunner.query(`DROP INDEX ${qualifiedName(queryRunner, 'IDX_nestjs_workers_unique')}`);
    await queryRunner.query(`DROP INDEX ${qualifiedName(queryRunner, 'IDX_nestjs_workers_claim')}`);
    for (const table of [failed, pending]) {
      await queryRunner.query(`ALTER TABLE ${table} DROP COLUMN "unique_key"`);
      await queryRunner.query(`ALTER TABLE ${table} DROP COLUMN "priority"`);
    }
  }
}

export class AddNestjsWorkerJobControlMysql1764500000000 implements MigrationInterface {
  async up(queryRunner: QueryRunner): Promise<void> {
    for (const table of ['`nestjs_workers`', '`nestjs_failed_workers`']) {
      await queryRunner.query(`ALTER TABLE ${table} ADD \`priority\` int NOT NULL DEFAULT '0'`);
      await queryRunner.query(
        `ALTER TABLE ${table} ADD \`unique_key\` varchar(255) CHARACTER SET "utf8mb4" COLLATE "utf8mb4_bin" NULL`,
      );
    }
    await queryRunner.query(
      'CREATE INDEX `IDX_nestjs_workers_claim` ON `nestjs_workers` (`queue_name`, `priority`, `available_at`, `id`)',
    );
    await queryRunner.query(
      'CREATE UNIQUE INDEX `IDX_nestjs_workers_unique` ON `nestjs_workers` (`queue_name`, `unique_key`)',
    );
    await queryRunner.query(
      'CREATE TABLE `nestjs_workers_schedules` (`name` varchar(255) CHARACTER SET "utf8mb4" COLLATE ' +
        '"utf8mb4_bin" NOT NULL, ' +
        '`last_slot_at` bigint NOT NULL, `updated_at` bigint NOT NULL, PRIMARY KEY (`name`)) ENGINE=InnoDB',
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE `nestjs_workers_schedules`');
    await queryRunner.query('DROP INDEX `IDX_nestjs_workers_unique` ON `nestjs_workers`');
    await queryRunner.query('DROP INDEX `IDX_nestjs_workers_claim` ON `nestjs_workers`');
    for (const table of ['`nestjs_failed_workers`', '`nestjs_workers`']) {
      await queryRunner.query(`ALTER TABLE ${table} DROP COLUMN \`unique_key\``);
      await queryRunner.query(`ALTER TABLE ${table} DROP COLUMN \`priority\``);
    }
  }
}

export class AddNestjsWorkerJobControlSqlite1764500000000 implements MigrationInterface {
  async up(queryRunner: QueryRunner): Promise<void> {
    for (const table of ['"nestjs_workers"', '"nestjs_failed_workers"']) {
      await queryRunner.query(`ALTER TABLE ${table} ADD COLUMN "priority" integer NOT NULL DEFAULT (0)`);
      await queryRunner.query(`ALTER TABLE ${table} ADD COLUMN "unique_key" varchar(255)`);
    }
    await queryRunner.query(
      'CREATE INDEX "IDX_nestjs_workers_claim" ON "nestjs_workers" ("queue_name", "priority", "available_at", "id")',
    );
    await queryRunner.query(
      'CREATE UNIQUE INDEX "IDX_nestjs_workers_unique" ON "nestjs_workers" ("queue_name", "unique_key")',
    );
    await queryRunner.query(
      'CREATE TABLE "nestjs_workers_schedules" ("name" varchar(255) PRIMARY KEY NOT NULL, "last_slot_at" bigint ' +
        'NOT NULL, "updated_at" bigint NOT NULL)',
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE "nestjs_workers_schedules"');
    await queryRunner.query('DROP INDEX "IDX_nestjs_workers_unique"');
    await queryRunner.query('DROP INDEX "IDX_nestjs_workers_claim"');
    for (const table of ['"nestjs_failed_workers"', '"nestjs_workers"']) {
      await queryRunner.query(`ALTER TABLE ${table} DROP COLUMN "unique_key"`);
      await queryRunner.query(`ALTER TABLE ${table} DROP COLUMN "priority"`);
    }
  }
}
