import type { MigrationInterface, QueryRunner } from 'typeorm';
import type { SupportedDatabaseType } from '../dialects/worker-dialect.js';
import { collationForServer, KEYED_ROWS } from '../entities/worker.entity.js';

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
        `"deleted_at" bigint, "failed_at" bigint NOT NULL, CONSTRAINT "PK_8013a8b1dfcc48975a2267150bf" PRIMARY KEY ("id"))`,
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
      'CREATE TABLE `nestjs_workers` (`id` bigint NOT NULL AUTO_INCREMENT, `queue_name` varchar(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, ' +
        '`event_name` varchar(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, `payload` longtext NULL, `attempts` int NOT NULL DEFAULT 0, ' +
        '`retries` int NOT NULL, `error` longtext NULL, `created_at` bigint NOT NULL, `updated_at` bigint NOT NULL, ' +
        '`deleted_at` bigint NULL, `available_at` bigint NOT NULL, `locked_by` varchar(255) NULL, `lease_token` varchar(64) NULL, ' +
        'INDEX `IDX_nestjs_workers_due` (`queue_name`, `available_at`, `id`), PRIMARY KEY (`id`)) ENGINE=InnoDB',
    );
    await queryRunner.query(
      'CREATE TABLE `nestjs_failed_workers` (`id` bigint NOT NULL AUTO_INCREMENT, `queue_name` varchar(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, ' +
        '`event_name` varchar(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, `payload` longtext NULL, `attempts` int NOT NULL DEFAULT 0, ' +
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
      'CREATE TABLE "nestjs_workers" ("id" integer PRIMARY KEY AUTOINCREMENT NOT NULL, "queue_name" varchar(255) NOT NULL, ' +
        '"event_name" varchar(255) NOT NULL, "payload" text, "attempts" integer NOT NULL DEFAULT (0), "retries" integer NOT NULL, ' +
        '"error" text, "created_at" bigint NOT NULL, "updated_at" bigint NOT NULL, "deleted_at" bigint, ' +
        '"available_at" bigint NOT NULL, "locked_by" varchar(255), "lease_token" varchar(64))',
    );
    await queryRunner.query(
      'CREATE INDEX "IDX_nestjs_workers_due" ON "nestjs_workers" ("queue_name", "available_at", "id")',
    );
    await queryRunner.query(
      'CREATE TABLE "nestjs_failed_workers" ("id" integer PRIMARY KEY AUTOINCREMENT NOT NULL, "queue_name" varchar(255) NOT NULL, ' +
        '"event_name" varchar(255) NOT NULL, "payload" text, "attempts" integer NOT NULL DEFAULT (0), "retries" integer NOT NULL, ' +
        '"error" text, "created_at" bigint NOT NULL, "updated_at" bigint NOT NULL, "deleted_at" bigint, "failed_at" bigint NOT NULL)',
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
      'CREATE TABLE `nestjs_workers_schedules` (`name` varchar(255) CHARACTER SET "utf8mb4" COLLATE "utf8mb4_bin" NOT NULL, ' +
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
      'CREATE TABLE "nestjs_workers_schedules" ("name" varchar(255) PRIMARY KEY NOT NULL, "last_slot_at" bigint NOT NULL, "updated_at" bigint NOT NULL)',
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
      `CREATE UNIQUE INDEX "IDX_nestjs_workers_unique" ON "nestjs_workers" ("queue_name", "unique_key") WHERE ${KEYED_ROWS}`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP INDEX "IDX_nestjs_workers_unique"');
    await queryRunner.query(
      'CREATE UNIQUE INDEX "IDX_nestjs_workers_unique" ON "nestjs_workers" ("queue_name", "unique_key")',
    );
  }
}

/*
 * Leases in a column of their own (issue 14): the claim no longer moves available_at to the lease
 * expiry, so an abandoned row keeps its place in the claim order. Rows leased when the migration
 * runs keep their lease: their expiry, then in available_at, is copied to lease_expires_at (and back
 * on the way down). Stop the workers of the previous release before migrating: they still write
 * leases into available_at.
 */

export class AddNestjsWorkerLeaseExpiryPostgres1764700000000 implements MigrationInterface {
  up = addLeaseExpiry;
  down = dropLeaseExpiry;
}

export class AddNestjsWorkerLeaseExpiryMysql1764700000000 implements MigrationInterface {
  up = addLeaseExpiry;
  down = dropLeaseExpiry;
}

export class AddNestjsWorkerLeaseExpirySqlite1764700000000 implements MigrationInterface {
  up = addLeaseExpiry;
  down = dropLeaseExpiry;
}

/** The same statements on every database, quoted by its driver (and schema-qualified on PostgreSQL). */
async function addLeaseExpiry(queryRunner: QueryRunner): Promise<void> {
  const { pending, column } = leaseNames(queryRunner);
  await queryRunner.query(`ALTER TABLE ${pending} ADD ${column('lease_expires_at')} bigint`);
  await queryRunner.query(
    `UPDATE ${pending} SET ${column('lease_expires_at')} = ${column('available_at')} WHERE ${column('lease_token')} IS NOT NULL`,
  );
}

async function dropLeaseExpiry(queryRunner: QueryRunner): Promise<void> {
  const { pending, column } = leaseNames(queryRunner);
  await queryRunner.query(
    `UPDATE ${pending} SET ${column('available_at')} = ${column('lease_expires_at')} WHERE ${column('lease_expires_at')} > ${column('available_at')}`,
  );
  await queryRunner.query(`ALTER TABLE ${pending} DROP COLUMN ${column('lease_expires_at')}`);
}

function leaseNames(queryRunner: QueryRunner): { pending: string; column: (name: string) => string } {
  return {
    pending: qualifiedName(queryRunner, 'nestjs_workers'),
    column: (name) => queryRunner.connection.driver.escape(name),
  };
}

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

/** Pending, failed and schedules table, in the DataSource's schema when it names one. */
function postgresTables(queryRunner: QueryRunner): [string, string, string] {
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
function qualifiedName(queryRunner: QueryRunner, name: string): string {
  const { options, driver } = queryRunner.connection;
  const schema = (options as { schema?: string }).schema;
  return schema ? `${driver.escape(schema)}.${driver.escape(name)}` : driver.escape(name);
}

/** The package's migrations for a database type: add them to your DataSource's `migrations`. */
export function workerMigrations(type: SupportedDatabaseType): (new () => MigrationInterface)[] {
  switch (type) {
    case 'postgres':
      return [
        CreateNestjsWorkerTablesPostgres1764400000000,
        AddNestjsWorkerJobControlPostgres1764500000000,
        PartialNestjsWorkerUniqueIndexPostgres1764600000000,
        AddNestjsWorkerLeaseExpiryPostgres1764700000000,
      ];
    case 'mysql':
    case 'mariadb':
      return [
        CreateNestjsWorkerTablesMysql1764400000000,
        AddNestjsWorkerJobControlMysql1764500000000,
        AddNestjsWorkerLeaseExpiryMysql1764700000000,
        ExactNestjsWorkerNamesMysql1764800000000,
      ];
    case 'better-sqlite3':
      return [
        CreateNestjsWorkerTablesSqlite1764400000000,
        AddNestjsWorkerJobControlSqlite1764500000000,
        PartialNestjsWorkerUniqueIndexSqlite1764600000000,
        AddNestjsWorkerLeaseExpirySqlite1764700000000,
      ];
  }
}
