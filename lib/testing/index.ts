/**
 * Test helpers (the `nestjs-workers/testing` entry point): a recording EventService with dispatch
 * assertions, and drain()/drainAll() to run due events in a test. Framework-agnostic.
 */
export { drain, drainAll } from './drain.js';
export type { DeepPartial, PayloadMatcher } from './payload-matcher.js';
export {
  DispatchAssertionError,
  type EventConstructor,
  type PayloadOf,
  type RecordedDispatch,
  RecordingEventService,
} from './recording-event.service.js';
