import type { MigrationInterface, QueryRunner } from 'typeorm';
import { qualifiedName } from './names.js';

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
    `UPDATE ${pending} SET ${column('lease_expires_at')} = ${column('available_at')} WHERE ` +
      `${column('lease_token')} IS NOT NULL`,
  );
}

async function dropLeaseExpiry(queryRunner: QueryRunner): Promise<void> {
  const { pending, column } = leaseNames(queryRunner);
  await queryRunner.query(
    `UPDATE ${pending} SET ${column('available_at')} = ${column('lease_expires_at')} WHERE ` +
      `${column('lease_expires_at')} > ${column('available_at')}`,
  );
  await queryRunner.query(`ALTER TABLE ${pending} DROP COLUMN ${column('lease_expires_at')}`);
}

function leaseNames(queryRunner: QueryRunner): { pending: string; column: (name: string) => string } {
  return {
    pending: qualifiedName(queryRunner, 'nestjs_workers'),
    column: (name) => queryRunner.connection.driver.escape(name),
  };
}
