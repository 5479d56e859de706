/**
 * Two event classes with one name stop startup (DuplicateEventNameError). In a file of its own
 * because @QueueEvent() classes register process-wide, and this file's classes clash on purpose.
 */
import { Test } from '@nestjs/testing';
import { BaseEvent, DuplicateEventNameError, QueueEvent, WorkerModule } from '../lib/index.js';
import { tempDatabase } from './support/test-app.js';

@QueueEvent('billing', { name: 'InvoiceCreated' })
class InvoiceCreatedV1 extends BaseEvent<null> {
  async execute(): Promise<void> {}
}

@QueueEvent('billing', { name: 'InvoiceCreated' })
class InvoiceCreatedV2 extends BaseEvent<null> {
  async execute(): Promise<void> {}
}

describe('event names', () => {
  it('refuses to start when two event classes share one name', async () => {
    const database = tempDatabase();
    const compile = () =>
      Test.createTestingModule({
        imports: [WorkerModule.forRoot({ autoStart: false, database: { database: database.file } })],
      }).compile();
    await expect(compile()).rejects.toBeInstanceOf(DuplicateEventNameError);
    await expect(compile()).rejects.toThrow(
      'Two event classes are registered as "InvoiceCreated" (InvoiceCreatedV1 (decorated at test/duplicate-events.spec.ts:9) ' +
        'and InvoiceCreatedV2 (decorated at test/duplicate-events.spec.ts:14))',
    );
    expect(new InvoiceCreatedV1(null).getName()).toBe(new InvoiceCreatedV2(null).getName());
    database.cleanup();
  });
});
