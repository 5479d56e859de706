/**
 * Event @Inject() properties that cannot be resolved: a warning at startup naming every such event,
 * and a failed attempt with the dependency error when it runs (optional dependencies are skipped).
 */
import { Inject, Injectable, Optional, Scope } from '@nestjs/common';
import { BaseEvent, QueueEvent } from '../lib/index.js';
import { createTestApp, failedRows, RecordingLogger } from './support/test-app.js';

@Injectable()
class NotProvidedService {}

@Injectable({ scope: Scope.REQUEST })
class RequestScopedService {}

@Injectable()
class AuditService {
  readonly entries: string[] = [];
}

@QueueEvent('deps')
class NeedsMissingProviderEvent extends BaseEvent<null> {
  @Inject(NotProvidedService) private readonly service!: NotProvidedService;
  async execute(): Promise<void> {}
}

// Registered by its decorator alone; the startup check must find it.
@QueueEvent('deps')
export class NeedsRequestScopeEvent extends BaseEvent<null> {
  @Inject(RequestScopedService) private readonly service!: RequestScopedService;
  async execute(): Promise<void> {}
}

@QueueEvent('deps')
class OptionalDependencyEvent extends BaseEvent<null> {
  static sawAudit: boolean[] = [];
  @Optional() @Inject(NotProvidedService) private readonly missing?: NotProvidedService;
  @Inject(AuditService) private readonly audit!: AuditService;
  async execute(): Promise<void> {
    OptionalDependencyEvent.sawAudit.push(this.audit instanceof AuditService && this.missing === undefined);
  }
}

describe('event dependencies', () => {
  it('warns at startup about every event whose @Inject() properties cannot be resolved', async () => {
    const logger = new RecordingLogger();
    const t = await createTestApp({ logger }, { providers: [AuditService, RequestScopedService] });
    try {
      const warnings = logger.messages('warn');
      expect(warnings).toEqual([
        expect.stringMatching(
          /^Cannot inject NeedsMissingProviderEvent\.service \(NotProvidedService\): .*; executions of this event fail/,
        ),
        expect.stringMatching(
          /^Cannot inject NeedsRequestScopeEvent\.service \(RequestScopedService\): .*scoped provider/,
        ),
      ]);
    } finally {
      await t.close();
    }
  });

  it('fails the attempt with the dependency error, and skips optional dependencies that are missing', async () => {
    const logger = new RecordingLogger();
    const t = await createTestApp({ logger }, { providers: [AuditService] });
    try {
      await t.events.dispatch(new NeedsMissingProviderEvent(null));
      await t.events.dispatch(new OptionalDependencyEvent(null));
      const result = await t.workers.runWorker({ queueName: 'deps', retries: 1, runAfterSeconds: 0, runOnce: true });
      expect(result).toEqual({ queueName: 'deps', processed: 1, failed: 1, retried: 0, cancelled: 0 });
      expect(OptionalDependencyEvent.sawAudit).toEqual([true]);
      const [failed] = await failedRows(t.dataSource);
      expect(String(failed!.error)).toContain(
        'EventDependencyError: Cannot inject NeedsMissingProviderEvent.service (NotProvidedService)',
      );
    } finally {
      await t.close();
    }
  });
});
