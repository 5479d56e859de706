import { UnserializablePayloadError, UnserializableProgressError } from '../errors/worker.error.js';
import { MAX_PROGRESS_BYTES } from '../worker.defaults.js';
import { progressMessages as messages } from '../worker.messages.js';
import { serializePayload } from './payload-serializer.js';

/** Where a running event's reportProgress() values go: the claimed run that executes it. */
export interface ProgressSink {
  noteProgress(json: string): void;
}

/**
 * The run each event is executing in, set by the run for the time execute() runs. A WeakMap rather
 * than a field of the event: the event's own properties stay the user's, and a run never keeps an
 * event alive.
 */
const sinks = new WeakMap<object, ProgressSink>();

export function attachProgressSink(event: object, sink: ProgressSink): void {
  sinks.set(event, sink);
}

/** Only the sink's own attachment: a later run of the same object (run again by hand) keeps its own. */
export function detachProgressSink(event: object, sink: ProgressSink): void {
  if (sinks.get(event) === sink) sinks.delete(event);
}

export function progressSinkOf(event: object): ProgressSink | undefined {
  return sinks.get(event);
}

/**
 * A progress value as the JSON text stored in the row, checked by the payload serializer's rules
 * (nothing JSON would silently change) and at most MAX_PROGRESS_BYTES: it is written with every
 * heartbeat that follows a report.
 */
export function serializeProgress(eventName: string, value: unknown): string {
  if (value === undefined) throw new UnserializableProgressError(eventName, messages.undefinedValue());
  let json: string | null;
  try {
    json = serializePayload(eventName, value);
  } catch (error) {
    if (!(error instanceof UnserializablePayloadError)) throw error;
    throw new UnserializableProgressError(eventName, messages.problemAt(error.path, error.problem));
  }
  // serializePayload() stores a null payload as no text at all; progress null is the JSON null.
  if (json === null) return 'null';
  // Fewer UTF-16 units than a third of the limit cannot exceed it (3 bytes per unit at most).
  if (json.length > MAX_PROGRESS_BYTES / 3) {
    const bytes = Buffer.byteLength(json, 'utf8');
    if (bytes > MAX_PROGRESS_BYTES) {
      throw new UnserializableProgressError(eventName, messages.tooLarge(bytes, MAX_PROGRESS_BYTES));
    }
  }
  return json;
}
