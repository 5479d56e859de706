import { BaseEvent, QueueEvent } from '../lib/index.js';
import { createTestApp, failedRows, pendingRows } from './support/test-app.js';

const ran: string[] = [];

@QueueEvent('smoke')
class SmokeEvent extends BaseEvent<{ n: number }> {
  async execute(): Promise<void> {
    ran.push(`ok ${this.getPayload().n}`);
  }
}

describe('smoke', () => {
  it('dispatches and runs', async () => {
    const t = await createTestApp();
    const id = await t.events.dispatch(new SmokeEvent({ n: 1 }));
    expect(id).toBe('1');
    expect(await pendingRows(t.dataSource)).toHaveLength(1);
    const result = await t.workers.runWorker({ queueName: 'smoke', retries: 3, runAfterSeconds: 0, runOnce: true });
    expect(result).toEqual({ queueName: 'smoke', processed: 1, failed: 0, retried: 0 });
    expect(ran).toEqual(['ok 1']);
    expect(await pendingRows(t.dataSource)).toHaveLength(0);
    expect(await failedRows(t.dataSource)).toHaveLength(0);
    await t.close();
  });
});
