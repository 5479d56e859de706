import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';

const logger = new Logger('Sample');
const app = await NestFactory.create(AppModule.register());
// SIGINT/SIGTERM → app.close(): polling stops and running events finish before the database closes.
app.enableShutdownHooks([], { useProcessExit: true });
const port = Number(process.env.PORT ?? 3000);
await app.listen(port);

const url = `http://localhost:${port}`;
logger.log(`Sample listening on ${url}`);
logger.log(
  [
    'Try:',
    `  curl -X POST ${url}/notifications -H 'content-type: application/json' -d '{"userId":"123","message":"Hi"}'`,
    `  curl ${url}/mail/sent`,
    `  curl ${url}/health/workers`,
    `  curl ${url}/failed-events`,
    `  curl ${url}/metrics`,
    `  curl -X POST ${url}/workers/run -H 'content-type: application/json' -d '{"queueName":"email-queue"}'`,
  ].join('\n'),
);
