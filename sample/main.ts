import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ADMIN_TOKEN } from './admin-token.guard.js';
import { AppModule } from './app.module.js';

const logger = new Logger('Sample');
const app = await NestFactory.create(AppModule.register());
// SIGINT/SIGTERM → app.close(): polling stops and running events finish before the database closes.
app.enableShutdownHooks([], { useProcessExit: true });
const port = Number(process.env.PORT ?? 3000);
await app.listen(port);

const url = `http://localhost:${port}`;
// Operator endpoints want this token: SAMPLE_ADMIN_TOKEN (never printed), else a new one at every start.
const token = process.env.SAMPLE_ADMIN_TOKEN ? '$SAMPLE_ADMIN_TOKEN' : app.get<string>(ADMIN_TOKEN);
const admin = `-H "authorization: Bearer ${token}"`;
logger.log(`Sample listening on ${url}`);
logger.log(
  [
    'Try:',
    `  curl -X POST ${url}/notifications -H 'content-type: application/json' -d '{"userId":"123","message":"Hi"}'`,
    `  curl ${url}/mail/sent`,
    `  curl ${url}/health/workers`,
    `  curl ${url}/metrics`,
    `  curl -X POST ${url}/webhooks -H 'content-type: application/json' -d '{"url":"https://unreachable.example/hook"}'`,
    '  (fails 3 times, 2 s apart, then:)',
    `  curl ${admin} ${url}/failed-events`,
    `  curl -X POST ${admin} ${url}/failed-events/retry`,
    `  curl -X POST ${admin} ${url}/workers/run -H 'content-type: application/json' -d '{"queueName":"email-queue"}'`,
  ].join('\n'),
);
