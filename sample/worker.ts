import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';

const logger = new Logger('SampleWorker');
// No HTTP server: this process only polls the queues, sharing the SQLite file with `npm run sample`
// (leases keep the two from running one event twice). The cron stays with the HTTP process so that
// running both does not queue every digest twice.
const app = await NestFactory.createApplicationContext(AppModule.register({ digestCron: false }));
// useProcessExit: exit 0 after a clean drain; Nest otherwise re-raises the signal, which shells and
// process managers report as a failure (143).
app.enableShutdownHooks([], { useProcessExit: true });
logger.log(`Worker running (pid ${process.pid}); send SIGTERM or press Ctrl+C to drain and stop`);
