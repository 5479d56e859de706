/**
 * Which event classes a module or service owns: the ones it lists; @QueueEvent() classes collected
 * from the rest of the process neither clash with them nor get reported as its own, and a clash names
 * the file each class comes from. In a file of its own: its classes clash on purpose.
 */
import { Inject } from '@nestjs/common';
import { BaseEvent, DuplicateEventNameError, EventService, QueueEvent, UnknownEventError } from '../lib/index.js';
import { RecordingEventService } from '../lib/testing/index.js';
import { EmailNotificationEvent as OtherModulesEmailEvent } from './fixtures/same-name-event.js';
import { createTestApp, RecordingLogger } from './support/test-app.js';

const MISSING_PROVIDER = 'MISSING_PROVIDER';

@QueueEvent('mail')
class EmailNotificationEvent extends BaseEvent<{ to: string }> {
  async execute(): Promise<void> {}
}

@QueueEvent('listed-mail')
class ListedNeedsProviderEvent extends BaseEvent<null> {
  @Inject(MISSING_PROVIDER) private readonly missing!: unknown;
  async execute(): Promise<void> {}
}

describe('event classes per module (issue 14 point 18)', () => {
  it('lets new EventService({ events: [A] }) run although another file has an @QueueEvent class of the same name', async () => {
    const service = new RecordingEventService({ events: [EmailNotificationEvent] });
    const registered = service.getRegisteredEvents().filter((event) => event.name === 'EmailNotificationEvent');
    expect(registered).toEqual([
      { name: 'EmailNotificationEvent', eventClass: EmailNotificationEvent, queueName: 'mail' },
    ]);
    await expect(service.dispatch(new EmailNotificationEvent({ to: 'ada@example.com' }))).resolves.toBe('recorded-1');
    // The other file's class is not this service's: dispatching it stores nothing.
    await expect(service.dispatch(new OtherModulesEmailEvent({ to: 'bob@example.com' }))).rejects.toBeInstanceOf(
      UnknownEventError,
    );
    expect(service.dispatches.map((dispatch) => dispatch.event.constructor)).toEqual([EmailNotificationEvent]);
  });

  it('still refuses a service that lists nothing, naming the file and line of each class', () => {
    const create = () => new EventService();
    expect(create).toThrow(DuplicateEventNameError);
    expect(create).toThrow(
      'Two event classes are registered as "EmailNotificationEvent" (EmailNotificationEvent (decorated at ' +
        'test/fixtures/same-name-event.ts:10) and EmailNotificationEvent (decorated at test/event-registration.spec.ts:14))',
    );
  });

  it('lets a service that lists other events start, and refuses only a use of the name two collected classes claim', async () => {
    const service = new RecordingEventService({ events: [ListedNeedsProviderEvent] });
    await expect(service.dispatch(new ListedNeedsProviderEvent(null))).resolves.toBe('recorded-1');
    await expect(service.dispatch(new EmailNotificationEvent({ to: 'ada@example.com' }))).rejects.toBeInstanceOf(
      DuplicateEventNameError,
    );
    expect(service.getRegisteredEvents().map((event) => event.name)).not.toContain('EmailNotificationEvent');
    expect(service.dispatches).toHaveLength(1);
  });

  it('refuses two listed classes of one name, saying where each comes from', () => {
    expect(() => new EventService({ events: [EmailNotificationEvent, OtherModulesEmailEvent] })).toThrow(
      'Two event classes are registered as "EmailNotificationEvent" (EmailNotificationEvent (listed, decorated at ' +
        'test/event-registration.spec.ts:14) and EmailNotificationEvent (listed, decorated at test/fixtures/same-name-event.ts:10))',
    );
  });

  it("does not warn about another module's events at startup, only about the events it lists", async () => {
    const logger = new RecordingLogger();
    const t = await createTestApp({ events: [EmailNotificationEvent, ListedNeedsProviderEvent], logger });
    try {
      const warnings = logger.messages('warn');
      expect(warnings).toEqual([
        expect.stringContaining('Cannot inject ListedNeedsProviderEvent.missing (MISSING_PROVIDER)'),
      ]);
      expect(t.events.getRegisteredEvents().find((event) => event.name === 'EmailNotificationEvent')?.eventClass).toBe(
        EmailNotificationEvent,
      );
    } finally {
      await t.close();
    }
  });
});
