import type { MigrationInterface } from 'typeorm';
import type { SupportedDatabaseType } from '../dialects/worker-dialect.js';
import {
  CreateNestjsWorkerTablesMysql1764400000000,
  CreateNestjsWorkerTablesPostgres1764400000000,
  CreateNestjsWorkerTablesSqlite1764400000000,
} from './create-tables.js';
import { ExactNestjsWorkerNamesMysql1764800000000 } from './exact-names.js';
import {
  AddNestjsWorkerJobControlMysql1764500000000,
  AddNestjsWorkerJobControlPostgres1764500000000,
  AddNestjsWorkerJobControlSqlite1764500000000,
} from './job-control.js';
import {
  AddNestjsWorkerFlowControlMysql1765000000000,
  AddNestjsWorkerFlowControlPostgres1765000000000,
  AddNestjsWorkerFlowControlSqlite1765000000000,
} from './flow-control.js';
import {
  AddNestjsWorkerJobHistoryMysql1764900000000,
  AddNestjsWorkerJobHistoryPostgres1764900000000,
  AddNestjsWorkerJobHistorySqlite1764900000000,
} from './job-history.js';
import {
  AddNestjsWorkerLeaseExpiryMysql1764700000000,
  AddNestjsWorkerLeaseExpiryPostgres1764700000000,
  AddNestjsWorkerLeaseExpirySqlite1764700000000,
} from './lease-expiry.js';
import {
  PartialNestjsWorkerUniqueIndexPostgres1764600000000,
  PartialNestjsWorkerUniqueIndexSqlite1764600000000,
} from './unique-index.js';

/*
 * The package's migrations, one file per family (a family: one schema change, one class per
 * database). A release's migrations never change once published; later schema changes get classes
 * of their own.
 */
export {
  CreateNestjsWorkerTablesMysql1764400000000,
  CreateNestjsWorkerTablesPostgres1764400000000,
  CreateNestjsWorkerTablesSqlite1764400000000,
  AddNestjsWorkerJobControlMysql1764500000000,
  AddNestjsWorkerJobControlPostgres1764500000000,
  AddNestjsWorkerJobControlSqlite1764500000000,
  PartialNestjsWorkerUniqueIndexPostgres1764600000000,
  PartialNestjsWorkerUniqueIndexSqlite1764600000000,
  AddNestjsWorkerLeaseExpiryMysql1764700000000,
  AddNestjsWorkerLeaseExpiryPostgres1764700000000,
  AddNestjsWorkerLeaseExpirySqlite1764700000000,
  ExactNestjsWorkerNamesMysql1764800000000,
  AddNestjsWorkerJobHistoryMysql1764900000000,
  AddNestjsWorkerJobHistoryPostgres1764900000000,
  AddNestjsWorkerJobHistorySqlite1764900000000,
  AddNestjsWorkerFlowControlMysql1765000000000,
  AddNestjsWorkerFlowControlPostgres1765000000000,
  AddNestjsWorkerFlowControlSqlite1765000000000,
};

/** The package's migrations for a database type: add them to your DataSource's `migrations`. */
export function workerMigrations(type: SupportedDatabaseType): (new () => MigrationInterface)[] {
  switch (type) {
    case 'postgres':
      return [
        CreateNestjsWorkerTablesPostgres1764400000000,
        AddNestjsWorkerJobControlPostgres1764500000000,
        PartialNestjsWorkerUniqueIndexPostgres1764600000000,
        AddNestjsWorkerLeaseExpiryPostgres1764700000000,
        AddNestjsWorkerJobHistoryPostgres1764900000000,
        AddNestjsWorkerFlowControlPostgres1765000000000,
      ];
    case 'mysql':
    case 'mariadb':
      return [
        CreateNestjsWorkerTablesMysql1764400000000,
        AddNestjsWorkerJobControlMysql1764500000000,
        AddNestjsWorkerLeaseExpiryMysql1764700000000,
        ExactNestjsWorkerNamesMysql1764800000000,
        AddNestjsWorkerJobHistoryMysql1764900000000,
        AddNestjsWorkerFlowControlMysql1765000000000,
      ];
    case 'better-sqlite3':
      return [
        CreateNestjsWorkerTablesSqlite1764400000000,
        AddNestjsWorkerJobControlSqlite1764500000000,
        PartialNestjsWorkerUniqueIndexSqlite1764600000000,
        AddNestjsWorkerLeaseExpirySqlite1764700000000,
        AddNestjsWorkerJobHistorySqlite1764900000000,
        AddNestjsWorkerFlowControlSqlite1765000000000,
      ];
  }
}
