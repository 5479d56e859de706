import { SetMetadata } from '@nestjs/common';
import { InvalidWorkerOptionsError } from '../errors/worker.error.js';
import {
  WORKER_LIFECYCLE_EVENT_NAMES,
  type WorkerLifecycleEventName,
} from '../interfaces/worker-lifecycle.interface.js';
import { ON_WORKER_EVENT_METADATA } from '../worker.constants.js';

/**
 * Calls the decorated provider method with a WorkerLifecycleEvent on each of the named moments:
 * 'dispatched' (row written), 'completed', 'retrying' (failed, will run again), 'failed' (moved to the
 * failed store). A hook that throws is logged and changes nothing.
 */
export function OnWorkerEvent(...names: WorkerLifecycleEventName[]): MethodDecorator {
  if (names.length === 0)
    throw new InvalidWorkerOptionsError(
      '@OnWorkerEvent()',
      `needs at least one of ${WORKER_LIFECYCLE_EVENT_NAMES.join(', ')}`,
    );
  for (const name of names) {
    if (!WORKER_LIFECYCLE_EVENT_NAMES.includes(name)) {
      throw new InvalidWorkerOptionsError(
        '@OnWorkerEvent()',
        `unknown event ${JSON.stringify(name)} (known: ${WORKER_LIFECYCLE_EVENT_NAMES.join(', ')})`,
      );
    }
  }
  return SetMetadata(ON_WORKER_EVENT_METADATA, names);
}
