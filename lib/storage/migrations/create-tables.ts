import type { MigrationInterface, QueryRunner } from 'typeorm';
import { postgresTables } from './names.js';

/*
 * The queue tables as TypeORM migrations, one class per dialect, so production databases need no
 * `synchronize`. The SQL is what TypeORM's schema builder emits for workerEntitySchemas(type); a test
 * checks that a migrated database has nothing left to synchronize.
 */

/** PostgreSQL; honours the DataSource's `schema` option. */
export class CreateNestjsWorkerTablesPostgres1764400000000 implements MigrationInterface {
  async up(queryRunner: QueryRunner): Promise<void> {
    const [pending, failed] = postgresTables(queryRunner);
    await queryRunner.query(
      `CREATE TABLE ${pending} ("id" BIGSERIAL NOT NULL, "queue_name" character varying(255) NOT NULL, ` +
        `"event_name" character varying(255) NOT NULL, "payload" text, "attempts" integer NOT NULL DEFAULT '0', ` +
        `"retries" integer NOT NULL, "error" text, "created_at" bigint NOT NULL, "updated_at" bigint NOT NULL, ` +
        `"deleted_at" bigint, "available_at" bigint NOT NULL, "locked_by" character varying(255), ` +
        `"lease_token" character varying(64), CONSTRAINT "PK_90364ee03ba3b1bddf99ef9dab6" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "IDX_nestjs_workers_due" ON ${pending} ("queue_name", "available_at", "id")`);
    await queryRunner.query(
      `CREATE TABLE ${failed} ("id" BIGSERIAL NOT NULL, "queue_name" character varying(255) NOT NULL, ` +
        `"event_name" character varying(255) NOT NULL, "payload" text, "attempts" integer NOT NULL DEFAULT '0', ` +
        `"retries" integer NOT NULL, "error" text, "created_at" bigint NOT NULL, "updated_at" bigint NOT NULL, ` +
        `"deleted_at" bigint, "failed_at" bigint NOT NULL, CONSTRAINT "PK_8013a8b1dfcc48975a2267150bf" PRIMARY ` +
        `KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "IDX_nestjs_failed_workers_queue" ON ${failed} ("queue_name", "failed_at")`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const [pending, failed] = postgresTables(queryRunner);
    await queryRunner.query(`DROP TABLE ${failed}`);
    await queryRunner.query(`DROP TABLE ${pending}`);
  }
}

/** MySQL 8 and MariaDB ≥ 10.6 (InnoDB). */
export class CreateNestjsWorkerTablesMysql1764400000000 implements MigrationInterface {
  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      'CREATE TABLE `nestjs_workers` (`id` bigint NOT NULL AUTO_INCREMENT, `queue_name` varchar(255) CHARACTER ' +
        'SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, ' +
        '`event_name` varchar(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, `payload` longtext NULL, ' +
        '`attempts` int NOT NULL DEFAULT 0, ' +
        '`retries` int NOT NULL, `error` longtext NULL, `created_at` bigint NOT NULL, `updated_at` bigint NOT NULL, ' +
        '`deleted_at` bigint NULL, `available_at` bigint NOT NULL, `locked_by` varchar(255) NULL, `lease_token` ' +
        'varchar(64) NULL, ' +
        'INDEX `IDX_nestjs_workers_due` (`queue_name`, `available_at`, `id`), PRIMARY KEY (`id`)) ENGINE=InnoDB',
    );
    await queryRunner.query(
      'CREATE TABLE `nestjs_failed_workers` (`id` bigint NOT NULL AUTO_INCREMENT, `queue_name` varchar(255) ' +
        'CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, ' +
        '`event_name` varchar(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, `payload` longtext NULL, ' +
        '`attempts` int NOT NULL DEFAULT 0, ' +
        '`retries` int NOT NULL, `error` longtext NULL, `created_at` bigint NOT NULL, `updated_at` bigint NOT NULL, ' +
        '`deleted_at` bigint NULL, `failed_at` bigint NOT NULL, ' +
        'INDEX `IDX_nestjs_failed_workers_queue` (`queue_name`, `failed_at`), PRIMARY KEY (`id`)) ENGINE=InnoDB',
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE `nestjs_failed_workers`');
    await queryRunner.query('DROP TABLE `nestjs_workers`');
  }
}

/** SQLite (better-sqlite3), for those who migrate their embedded database too. */
export class CreateNestjsWorkerTablesSqlite1764400000000 implements MigrationInterface {
  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      'CREATE TABLE "nestjs_workers" ("id" integer PRIMARY KEY AUTOINCREMENT NOT NULL, "queue_name" varchar(255) ' +
        'NOT NULL, ' +
        '"event_name" varchar(255) NOT NULL, "payload" text, "attempts" integer NOT NULL DEFAULT (0), "retries" ' +
        'integer NOT NULL, ' +
        '"error" text, "created_at" bigint NOT NULL, "updated_at" bigint NOT NULL, "deleted_at" bigint, ' +
        '"available_at" bigint NOT NULL, "locked_by" varchar(255), "lease_token" varchar(64))',
    );
    await queryRunner.query(
      'CREATE INDEX "IDX_nestjs_workers_due" ON "nestjs_workers" ("queue_name", "available_at", "id")',
    );
    await queryRunner.query(
      'CREATE TABLE "nestjs_failed_workers" ("id" integer PRIMARY KEY AUTOINCREMENT NOT NULL, "queue_name" ' +
        'varchar(255) NOT NULL, ' +
        '"event_name" varchar(255) NOT NULL, "payload" text, "attempts" integer NOT NULL DEFAULT (0), "retries" ' +
        'integer NOT NULL, ' +
        '"error" text, "created_at" bigint NOT NULL, "updated_at" bigint NOT NULL, "deleted_at" bigint, ' +
        '"failed_at" bigint NOT NULL)',
    );
    await queryRunner.query(
      'CREATE INDEX "IDX_nestjs_failed_workers_queue" ON "nestjs_failed_workers" ("queue_name", "failed_at")',
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE "nestjs_failed_workers"');
    await queryRunner.query('DROP TABLE "nestjs_workers"');
  }
}
