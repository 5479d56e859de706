// Run in a copy of the ESM app with better-sqlite3 uninstalled: WorkerModule.forRoot() (the embedded
// SQLite default) must fail startup with MissingDatabaseDriverError, whose message gives the install
// command, and leave nothing open (the process exits by itself).
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MissingDatabaseDriverError, WorkerModule } from 'nestjs-workers';

class AppModule {}
Module({ imports: [WorkerModule.forRoot()] })(AppModule);

try {
  await NestFactory.createApplicationContext(AppModule, { abortOnError: false, logger: false });
  throw new Error('startup succeeded without better-sqlite3');
} catch (error) {
  if (!(error instanceof MissingDatabaseDriverError)) throw error;
  if (!error.message.includes('npm install better-sqlite3@12'))
    throw new Error(`no install command in: ${error.message}`);
  console.log(`without better-sqlite3: ${error.name}: ${error.message}`);
}
