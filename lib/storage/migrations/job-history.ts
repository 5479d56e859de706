import type { MigrationInterface, QueryRunner } from 'typeorm';
import { collationForServer } from '../entities/worker.entity.js';
import { qualifiedName } from './names.js';

/*
 * Job state and history (issue 16): the attempt's start and progress on pending rows; the job's id,
 * timing and worker on failed rows; the history of completed and cancelled events (keepCompleted),
 * the worker processes, and outcome counts per minute. The SQL is what TypeORM's schema builder
 * emits for workerEntitySchemas(type) (SQLite: ADD COLUMN instead of rebuilding the tables).
 */

const HISTORY_INDEXES: [string, string][] = [
  ['IDX_nestjs_workers_history_queue', '"queue_name", "id"'],
  ['IDX_nestjs_workers_history_event', '"queue_name", "event_name", "id"'],
  ['IDX_nestjs_workers_history_state', '"queue_name", "state", "id"'],
  ['IDX_nestjs_workers_history_finished', '"queue_name", "finished_at"'],
  ['IDX_nestjs_workers_history_key', '"queue_name", "unique_key"'],
];

/** Columns added to the pending and the failed table, spelled for PostgreSQL and SQLite. */
const PENDING_COLUMNS: [string, string][] = [
  ['started_at', 'bigint'],
  ['progress', 'text'],
];
const FAILED_COLUMNS: [string, string][] = [
  ['job_id', 'bigint'],
  ['available_at', 'bigint'],
  ['started_at', 'bigint'],
  ['duration_ms', 'bigint'],
  ['worker_id', 'character varying(255)'],
  ['progress', 'text'],
];

export class AddNestjsWorkerJobHistoryPostgres1764900000000 implements MigrationInterface {
  async up(queryRunner: QueryRunner): Promise<void> {
    const table = (name: string): string => qualifiedName(queryRunner, name);
    await queryRunner.query(
      `CREATE TABLE ${table('nestjs_workers_history')} ("id" bigint NOT NULL, ` +
        '"queue_name" character varying(255) NOT NULL, "event_name" character varying(255) NOT NULL, ' +
        `"payload" text, "attempts" integer NOT NULL DEFAULT '0', "retries" integer NOT NULL, ` +
        `"priority" integer NOT NULL DEFAULT '0', "unique_key" character varying(255), "error" text, ` +
        '"created_at" bigint NOT NULL, "updated_at" bigint NOT NULL, "deleted_at" bigint, ' +
        '"state" character varying(16) NOT NULL, "progress" text, "result" text, "available_at" bigint NOT NULL, ' +
        '"started_at" bigint, "finished_at" bigint NOT NULL, "duration_ms" bigint, ' +
        '"worker_id" character varying(255), CONSTRAINT "PK_51c82c7532d3f3cf8a1ae2babdb" PRIMARY KEY ("id"))',
    );
    for (const [name, columns] of HISTORY_INDEXES)
      await queryRunner.query(`CREATE INDEX "${name}" ON ${table('nestjs_workers_history')} (${columns})`);
    await queryRunner.query(
      `CREATE TABLE ${table('nestjs_workers_processes')} ("id" character varying(255) NOT NULL, ` +
        '"host" character varying(255) NOT NULL, "pid" integer NOT NULL, "queues" text NOT NULL, ' +
        '"concurrency" integer NOT NULL, "running" integer NOT NULL, "started_at" bigint NOT NULL, ' +
        '"heartbeat_at" bigint NOT NULL, CONSTRAINT "PK_233cd0a779bab106083bcd25a0e" PRIMARY KEY ("id"))',
    );
    await queryRunner.query(
      `CREATE TABLE ${table('nestjs_workers_throughput')} ("queue_name" character varying(255) NOT NULL, ` +
        '"minute" bigint NOT NULL, "event_name" character varying(255) NOT NULL, ' +
        `"completed" integer NOT NULL DEFAULT '0', "failed" integer NOT NULL DEFAULT '0', ` +
        `"retried" integer NOT NULL DEFAULT '0', "cancelled" integer NOT NULL DEFAULT '0', ` +
        `"snoozed" integer NOT NULL DEFAULT '0', "duration_ms" bigint NOT NULL DEFAULT '0', ` +
        'CONSTRAINT "PK_cac10e8532fba2766831e4cdbf0" PRIMARY KEY ("queue_name", "minute", "event_name"))',
    );
    await queryRunner.query(
      `CREATE INDEX "IDX_nestjs_workers_throughput_minute" ON ${table('nestjs_workers_throughput')} ("minute")`,
    );
    for (const [column, type] of PENDING_COLUMNS)
      await queryRunner.query(`ALTER TABLE ${table('nestjs_workers')} ADD "${column}" ${type}`);
    for (const [column, type] of FAILED_COLUMNS)
      await queryRunner.query(`ALTER TABLE ${table('nestjs_failed_workers')} ADD "${column}" ${type}`);
    await queryRunner.query(
      `CREATE INDEX "IDX_nestjs_failed_workers_job" ON ${table('nestjs_failed_workers')} ("job_id")`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const table = (name: string): string => qualifiedName(queryRunner, name);
    await queryRunner.query(`DROP INDEX ${table('IDX_nestjs_failed_workers_job')}`);
    for (const [column] of FAILED_COLUMNS)
      await queryRunner.query(`ALTER TABLE ${table('nestjs_failed_workers')} DROP COLUMN "${column}"`);
    for (const [column] of PENDING_COLUMNS)
      await queryRunner.query(`ALTER TABLE ${table('nestjs_workers')} DROP COLUMN "${column}"`);
    for (const name of ['nestjs_workers_throughput', 'nestjs_workers_processes', 'nestjs_workers_history'])
      await queryRunner.query(`DROP TABLE ${table(name)}`);
  }
}

export class AddNestjsWorkerJobHistoryMysql1764900000000 implements MigrationInterface {
  async up(queryRunner: QueryRunner): Promise<void> {
    const [{ version }] = (await queryRunner.query('SELECT VERSION() AS version')) as [{ version: string }];
    const exact = `CHARACTER SET "utf8mb4" COLLATE "${collationForServer(version)}"`;
    await queryRunner.query(
      `CREATE TABLE \`nestjs_workers_history\` (\`id\` bigint NOT NULL, \`queue_name\` varchar(255) ${exact} ` +
        `NOT NULL, \`event_name\` varchar(255) ${exact} NOT NULL, \`payload\` longtext NULL, ` +
        "`attempts` int NOT NULL DEFAULT '0', `retries` int NOT NULL, `priority` int NOT NULL DEFAULT '0', " +
        `\`unique_key\` varchar(255) ${exact} NULL, \`error\` longtext NULL, \`created_at\` bigint NOT NULL, ` +
        '`updated_at` bigint NOT NULL, `deleted_at` bigint NULL, `state` varchar(16) NOT NULL, ' +
        '`progress` longtext NULL, `result` longtext NULL, `available_at` bigint NOT NULL, ' +
        '`started_at` bigint NULL, `finished_at` bigint NOT NULL, `duration_ms` bigint NULL, ' +
        '`worker_id` varchar(255) NULL, ' +
        HISTORY_INDEXES.map(([name, columns]) => `INDEX \`${name}\` (${columns.replaceAll('"', '`')}), `).join('') +
        'PRIMARY KEY (`id`)) ENGINE=InnoDB',
    );
    await queryRunner.query(
      'CREATE TABLE `nestjs_workers_processes` (`id` varchar(255) NOT NULL, `host` varchar(255) NOT NULL, ' +
        '`pid` int NOT NULL, `queues` longtext NOT NULL, `concurrency` int NOT NULL, `running` int NOT NULL, ' +
        '`started_at` bigint NOT NULL, `heartbeat_at` bigint NOT NULL, PRIMARY KEY (`id`)) ENGINE=InnoDB',
    );
    await queryRunner.query(
      `CREATE TABLE \`nestjs_workers_throughput\` (\`queue_name\` varchar(255) ${exact} NOT NULL, ` +
        `\`minute\` bigint NOT NULL, \`event_name\` varchar(255) ${exact} NOT NULL, ` +
        "`completed` int NOT NULL DEFAULT '0', `failed` int NOT NULL DEFAULT '0', " +
        "`retried` int NOT NULL DEFAULT '0', `cancelled` int NOT NULL DEFAULT '0', " +
        "`snoozed` int NOT NULL DEFAULT '0', `duration_ms` bigint NOT NULL DEFAULT '0', " +
        'INDEX `IDX_nestjs_workers_throughput_minute` (`minute`), ' +
        'PRIMARY KEY (`queue_name`, `minute`, `event_name`)) ENGINE=InnoDB',
    );
    for (const [column, type] of PENDING_COLUMNS)
      await queryRunner.query(`ALTER TABLE \`nestjs_workers\` ADD \`${column}\` ${mysqlType(type)} NULL`);
    for (const [column, type] of FAILED_COLUMNS)
      await queryRunner.query(`ALTER TABLE \`nestjs_failed_workers\` ADD \`${column}\` ${mysqlType(type)} NULL`);
    await queryRunner.query('CREATE INDEX `IDX_nestjs_failed_workers_job` ON `nestjs_failed_workers` (`job_id`)');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP INDEX `IDX_nestjs_failed_workers_job` ON `nestjs_failed_workers`');
    for (const [column] of FAILED_COLUMNS)
      await queryRunner.query(`ALTER TABLE \`nestjs_failed_workers\` DROP COLUMN \`${column}\``);
    for (const [column] of PENDING_COLUMNS)
      await queryRunner.query(`ALTER TABLE \`nestjs_workers\` DROP COLUMN \`${column}\``);
    for (const name of ['nestjs_workers_throughput', 'nestjs_workers_processes', 'nestjs_workers_history'])
      await queryRunner.query(`DROP TABLE \`${name}\``);
  }
}

export class AddNestjsWorkerJobHistorySqlite1764900000000 implements MigrationInterface {
  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      'CREATE TABLE "nestjs_workers_history" ("id" integer PRIMARY KEY NOT NULL, "queue_name" varchar(255) ' +
        'NOT NULL, "event_name" varchar(255) NOT NULL, "payload" text, "attempts" integer NOT NULL DEFAULT (0), ' +
        '"retries" integer NOT NULL, "priority" integer NOT NULL DEFAULT (0), "unique_key" varchar(255), ' +
        '"error" text, "created_at" bigint NOT NULL, "updated_at" bigint NOT NULL, "deleted_at" bigint, ' +
        '"state" varchar(16) NOT NULL, "progress" text, "result" text, "available_at" bigint NOT NULL, ' +
        '"started_at" bigint, "finished_at" bigint NOT NULL, "duration_ms" bigint, "worker_id" varchar(255))',
    );
    for (const [name, columns] of HISTORY_INDEXES)
      await queryRunner.query(`CREATE INDEX "${name}" ON "nestjs_workers_history" (${columns})`);
    await queryRunner.query(
      'CREATE TABLE "nestjs_workers_processes" ("id" varchar(255) PRIMARY KEY NOT NULL, "host" varchar(255) ' +
        'NOT NULL, "pid" integer NOT NULL, "queues" text NOT NULL, "concurrency" integer NOT NULL, ' +
        '"running" integer NOT NULL, "started_at" bigint NOT NULL, "heartbeat_at" bigint NOT NULL)',
    );
    await queryRunner.query(
      'CREATE TABLE "nestjs_workers_throughput" ("queue_name" varchar(255) NOT NULL, "minute" bigint NOT NULL, ' +
        '"event_name" varchar(255) NOT NULL, "completed" integer NOT NULL DEFAULT (0), ' +
        '"failed" integer NOT NULL DEFAULT (0), "retried" integer NOT NULL DEFAULT (0), ' +
        '"cancelled" integer NOT NULL DEFAULT (0), "snoozed" integer NOT NULL DEFAULT (0), ' +
        '"duration_ms" bigint NOT NULL DEFAULT (0), PRIMARY KEY ("queue_name", "minute", "event_name"))',
    );
    await queryRunner.query(
      'CREATE INDEX "IDX_nestjs_workers_throughput_minute" ON "nestjs_workers_throughput" ("minute")',
    );
    for (const [column, type] of PENDING_COLUMNS)
      await queryRunner.query(`ALTER TABLE "nestjs_workers" ADD COLUMN "${column}" ${sqliteType(type)}`);
    for (const [column, type] of FAILED_COLUMNS)
      await queryRunner.query(`ALTER TABLE "nestjs_failed_workers" ADD COLUMN "${column}" ${sqliteType(type)}`);
    await queryRunner.query('CREATE INDEX "IDX_nestjs_failed_workers_job" ON "nestjs_failed_workers" ("job_id")');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP INDEX "IDX_nestjs_failed_workers_job"');
    for (const [column] of FAILED_COLUMNS)
      await queryRunner.query(`ALTER TABLE "nestjs_failed_workers" DROP COLUMN "${column}"`);
    for (const [column] of PENDING_COLUMNS)
      await queryRunner.query(`ALTER TABLE "nestjs_workers" DROP COLUMN "${column}"`);
    for (const name of ['nestjs_workers_throughput', 'nestjs_workers_processes', 'nestjs_workers_history'])
      await queryRunner.query(`DROP TABLE "${name}"`);
  }
}

function mysqlType(type: string): string {
  return type === 'text' ? 'longtext' : type.replace('character varying', 'varchar');
}

function sqliteType(type: string): string {
  return type.replace('character varying', 'varchar');
}
