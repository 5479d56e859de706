import type { MigrationInterface, QueryRunner } from 'typeorm';
import { collationForServer } from '../entities/worker.entity.js';
import { qualifiedName } from './names.js';

/*
 * Flow control (issue 17): the pending and failed rows' concurrency key; each queue's paused flag and claim
 * lock; the slots of limited claims; the rate limiters' lock rows and granted starts; the throttled
 * dispatches' windows. The SQL is what TypeORM's schema builder emits for workerEntitySchemas(type)
 * (SQLite: ADD COLUMN instead of rebuilding the pending table).
 */

const FLOW_TABLES = [
  'nestjs_workers_throttles',
  'nestjs_workers_rate_starts',
  'nestjs_workers_rate_limits',
  'nestjs_workers_slots',
  'nestjs_workers_queues',
];

export class AddNestjsWorkerFlowControlPostgres1765000000000 implements MigrationInterface {
  async up(queryRunner: QueryRunner): Promise<void> {
    const table = (name: string): string => qualifiedName(queryRunner, name);
    await queryRunner.query(
      `CREATE TABLE ${table('nestjs_workers_queues')} ("queue_name" character varying(255) NOT NULL, ` +
        `"paused" integer NOT NULL DEFAULT '0', "paused_at" bigint, "updated_at" bigint NOT NULL, ` +
        'CONSTRAINT "PK_a5ec088d95edad2dd75b9601a68" PRIMARY KEY ("queue_name"))',
    );
    await queryRunner.query(
      `CREATE TABLE ${table('nestjs_workers_slots')} ("job_id" bigint NOT NULL, ` +
        '"queue_name" character varying(255) NOT NULL, "concurrency_key" character varying(255), ' +
        '"lease_token" character varying(64) NOT NULL, ' +
        'CONSTRAINT "PK_bea954d282905f0fcbc69bee325" PRIMARY KEY ("job_id"))',
    );
    await queryRunner.query(
      `CREATE INDEX "IDX_nestjs_workers_slots_queue" ON ${table('nestjs_workers_slots')} ` +
        '("queue_name", "concurrency_key")',
    );
    await queryRunner.query(
      `CREATE TABLE ${table('nestjs_workers_rate_limits')} ("name" character varying(255) NOT NULL, ` +
        'CONSTRAINT "PK_87e9ed8a0174e388f1759c5d2cd" PRIMARY KEY ("name"))',
    );
    await queryRunner.query(
      `CREATE TABLE ${table('nestjs_workers_rate_starts')} ("id" BIGSERIAL NOT NULL, ` +
        `"name" character varying(255) NOT NULL, "bucket_key" character varying(255) NOT NULL DEFAULT '', ` +
        '"started_at" bigint NOT NULL, CONSTRAINT "PK_ea1451917b7a9ce2e4cbf5ee140" PRIMARY KEY ("id"))',
    );
    await queryRunner.query(
      `CREATE INDEX "IDX_nestjs_workers_rate_starts" ON ${table('nestjs_workers_rate_starts')} ` +
        '("name", "started_at", "bucket_key")',
    );
    await queryRunner.query(
      `CREATE INDEX "IDX_nestjs_workers_rate_starts_key" ON ${table('nestjs_workers_rate_starts')} ` +
        '("name", "bucket_key", "started_at")',
    );
    await queryRunner.query(
      `CREATE TABLE ${table('nestjs_workers_throttles')} ("queue_name" character varying(255) NOT NULL, ` +
        '"unique_key" character varying(255) NOT NULL, "job_id" bigint NOT NULL, "until_at" bigint NOT NULL, ' +
        'CONSTRAINT "PK_91090c2efd9d60abfcb8d312422" PRIMARY KEY ("queue_name", "unique_key"))',
    );
    await queryRunner.query(
      `CREATE INDEX "IDX_nestjs_workers_throttles_until" ON ${table('nestjs_workers_throttles')} ("until_at")`,
    );
    await queryRunner.query(`ALTER TABLE ${table('nestjs_workers')} ADD "concurrency_key" character varying(255)`);
    await queryRunner.query(
      `ALTER TABLE ${table('nestjs_failed_workers')} ADD "concurrency_key" character varying(255)`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const table = (name: string): string => qualifiedName(queryRunner, name);
    await queryRunner.query(`ALTER TABLE ${table('nestjs_failed_workers')} DROP COLUMN "concurrency_key"`);
    await queryRunner.query(`ALTER TABLE ${table('nestjs_workers')} DROP COLUMN "concurrency_key"`);
    for (const name of FLOW_TABLES) await queryRunner.query(`DROP TABLE ${table(name)}`);
  }
}

export class AddNestjsWorkerFlowControlMysql1765000000000 implements MigrationInterface {
  async up(queryRunner: QueryRunner): Promise<void> {
    const [{ version }] = (await queryRunner.query('SELECT VERSION() AS version')) as [{ version: string }];
    const exact = `CHARACTER SET "utf8mb4" COLLATE "${collationForServer(version)}"`;
    await queryRunner.query(
      `CREATE TABLE \`nestjs_workers_queues\` (\`queue_name\` varchar(255) ${exact} NOT NULL, ` +
        "`paused` int NOT NULL DEFAULT '0', `paused_at` bigint NULL, `updated_at` bigint NOT NULL, " +
        'PRIMARY KEY (`queue_name`)) ENGINE=InnoDB',
    );
    await queryRunner.query(
      `CREATE TABLE \`nestjs_workers_slots\` (\`job_id\` bigint NOT NULL, \`queue_name\` varchar(255) ${exact} ` +
        `NOT NULL, \`concurrency_key\` varchar(255) ${exact} NULL, \`lease_token\` varchar(64) NOT NULL, ` +
        'INDEX `IDX_nestjs_workers_slots_queue` (`queue_name`, `concurrency_key`), ' +
        'PRIMARY KEY (`job_id`)) ENGINE=InnoDB',
    );
    await queryRunner.query(
      `CREATE TABLE \`nestjs_workers_rate_limits\` (\`name\` varchar(255) ${exact} NOT NULL, ` +
        'PRIMARY KEY (`name`)) ENGINE=InnoDB',
    );
    await queryRunner.query(
      'CREATE TABLE `nestjs_workers_rate_starts` (`id` bigint NOT NULL AUTO_INCREMENT, ' +
        `\`name\` varchar(255) ${exact} NOT NULL, \`bucket_key\` varchar(255) ${exact} NOT NULL DEFAULT '', ` +
        '`started_at` bigint NOT NULL, INDEX `IDX_nestjs_workers_rate_starts` (`name`, `started_at`, `bucket_key`), ' +
        'INDEX `IDX_nestjs_workers_rate_starts_key` (`name`, `bucket_key`, `started_at`), ' +
        'PRIMARY KEY (`id`)) ENGINE=InnoDB',
    );
    await queryRunner.query(
      `CREATE TABLE \`nestjs_workers_throttles\` (\`queue_name\` varchar(255) ${exact} NOT NULL, ` +
        `\`unique_key\` varchar(255) ${exact} NOT NULL, \`job_id\` bigint NOT NULL, \`until_at\` bigint NOT NULL, ` +
        'INDEX `IDX_nestjs_workers_throttles_until` (`until_at`), ' +
        'PRIMARY KEY (`queue_name`, `unique_key`)) ENGINE=InnoDB',
    );
    for (const name of ['nestjs_workers', 'nestjs_failed_workers'])
      await queryRunner.query(`ALTER TABLE \`${name}\` ADD \`concurrency_key\` varchar(255) ${exact} NULL`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE `nestjs_failed_workers` DROP COLUMN `concurrency_key`');
    await queryRunner.query('ALTER TABLE `nestjs_workers` DROP COLUMN `concurrency_key`');
    for (const name of FLOW_TABLES) await queryRunner.query(`DROP TABLE \`${name}\``);
  }
}

export class AddNestjsWorkerFlowControlSqlite1765000000000 implements MigrationInterface {
  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      'CREATE TABLE "nestjs_workers_queues" ("queue_name" varchar(255) PRIMARY KEY NOT NULL, ' +
        '"paused" integer NOT NULL DEFAULT (0), "paused_at" bigint, "updated_at" bigint NOT NULL)',
    );
    await queryRunner.query(
      'CREATE TABLE "nestjs_workers_slots" ("job_id" integer PRIMARY KEY NOT NULL, "queue_name" varchar(255) ' +
        'NOT NULL, "concurrency_key" varchar(255), "lease_token" varchar(64) NOT NULL)',
    );
    await queryRunner.query(
      'CREATE INDEX "IDX_nestjs_workers_slots_queue" ON "nestjs_workers_slots" ("queue_name", "concurrency_key")',
    );
    await queryRunner.query('CREATE TABLE "nestjs_workers_rate_limits" ("name" varchar(255) PRIMARY KEY NOT NULL)');
    await queryRunner.query(
      'CREATE TABLE "nestjs_workers_rate_starts" ("id" integer PRIMARY KEY AUTOINCREMENT NOT NULL, ' +
        `"name" varchar(255) NOT NULL, "bucket_key" varchar(255) NOT NULL DEFAULT (''), "started_at" bigint NOT NULL)`,
    );
    await queryRunner.query(
      'CREATE INDEX "IDX_nestjs_workers_rate_starts" ON "nestjs_workers_rate_starts" ' +
        '("name", "started_at", "bucket_key")',
    );
    await queryRunner.query(
      'CREATE INDEX "IDX_nestjs_workers_rate_starts_key" ON "nestjs_workers_rate_starts" ' +
        '("name", "bucket_key", "started_at")',
    );
    await queryRunner.query(
      'CREATE TABLE "nestjs_workers_throttles" ("queue_name" varchar(255) NOT NULL, "unique_key" varchar(255) ' +
        'NOT NULL, "job_id" bigint NOT NULL, "until_at" bigint NOT NULL, PRIMARY KEY ("queue_name", "unique_key"))',
    );
    await queryRunner.query(
      'CREATE INDEX "IDX_nestjs_workers_throttles_until" ON "nestjs_workers_throttles" ("until_at")',
    );
    await queryRunner.query('ALTER TABLE "nestjs_workers" ADD COLUMN "concurrency_key" varchar(255)');
    await queryRunner.query('ALTER TABLE "nestjs_failed_workers" ADD COLUMN "concurrency_key" varchar(255)');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE "nestjs_failed_workers" DROP COLUMN "concurrency_key"');
    await queryRunner.query('ALTER TABLE "nestjs_workers" DROP COLUMN "concurrency_key"');
    for (const name of FLOW_TABLES) await queryRunner.query(`DROP TABLE "${name}"`);
  }
}
