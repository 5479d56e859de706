import { CorruptPayloadError } from '../errors/worker.error.js';
import { deserializePayload } from '../events/payload-serializer.js';
import type { IWorkerAttributes } from '../interfaces/worker-attributes.interface.js';

/** A row of either table as the database returns it from raw SQL (snake_case, driver-typed). */
export type RawWorkerRow = Record<string, unknown>;

/** The fields both tables share, normalised (string id, epoch-ms numbers). */
export interface StoredWorkerFields {
  id?: string;
  queueName: string;
  eventName: string;
  payload: string | null;
  attempts: number;
  retries: number;
  error: string | null;
  createdAt: number;
  updatedAt: number;
  failedAt?: number;
  deletedAt?: number | null;
  /** Due time of a row being created (delayed dispatch). */
  availableAt?: number;
  priority: number;
  uniqueKey: string | null;
  /**
   * Flow control's key, a pending row's column only. Undefined: not read, and not written by an
   * update (a row read without it keeps its key).
   */
  concurrencyKey?: string | null;
}

/** Lease columns of a claimed pending row. */
export interface LeaseFields {
  leaseToken: string | null;
  availableAt: number;
}

/**
 * Error text as every database can store it: PostgreSQL refuses NUL (\u0000) in text, so an event
 * whose error message held one could be neither retried nor moved and its real error was lost. NUL
 * becomes U+FFFD (the replacement character). A message of megabytes (a handler that puts a whole
 * response body in its error) is cut to MAX_ERROR_TEXT characters, with a note of what was cut: on
 * MySQL/MariaDB a statement over max_allowed_packet fails and breaks its pooled connection, and the
 * retry or failed move would be lost with it. Every write of error text (retries, failed rows, the
 * larascript-events model API) goes through here.
 */
export function storableErrorText(text: string): string;
export function storableErrorText(text: string | null): string | null;
export function storableErrorText(text: string | null): string | null {
  if (text === null) return null;
  const kept =
    text.length > MAX_ERROR_TEXT
      ? `${text.slice(0, MAX_ERROR_TEXT)}\n… (${text.length - MAX_ERROR_TEXT} more characters cut)`
      : text;
  return kept.includes('\u0000') ? kept.replaceAll('\u0000', '\ufffd') : kept;
}

/** The longest error text (message and stack) stored with a row, in UTF-16 code units. */
export const MAX_ERROR_TEXT = 64 * 1024;

/** A concurrency key as a row of any table returns it: none (SQL NULL) or its text. */
export function concurrencyKeyOf(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value);
}

export function fromRawRow(raw: RawWorkerRow): StoredWorkerFields & LeaseFields {
  return {
    id: String(raw.id),
    queueName: String(raw.queue_name),
    eventName: String(raw.event_name),
    payload: raw.payload === null || raw.payload === undefined ? null : String(raw.payload),
    attempts: Number(raw.attempts),
    retries: Number(raw.retries),
    error: raw.error === null || raw.error === undefined ? null : String(raw.error),
    priority: Number(raw.priority ?? 0),
    uniqueKey: raw.unique_key === null || raw.unique_key === undefined ? null : String(raw.unique_key),
    ...(raw.concurrency_key === undefined ? {} : { concurrencyKey: concurrencyKeyOf(raw.concurrency_key) }),
    createdAt: Number(raw.created_at),
    updatedAt: Number(raw.updated_at),
    deletedAt: raw.deleted_at === null || raw.deleted_at === undefined ? null : Number(raw.deleted_at),
    leaseToken: raw.lease_token === null || raw.lease_token === undefined ? null : String(raw.lease_token),
    availableAt: Number(raw.available_at),
  };
}

/** Stored fields → larascript-events' attributes. Throws CorruptPayloadError when the payload no longer parses. */
export function toAttributes(fields: StoredWorkerFields): IWorkerAttributes {
  const attributes: IWorkerAttributes = {
    id: fields.id,
    payload: null,
    attempts: fields.attempts,
    retries: fields.retries,
    queueName: fields.queueName,
    eventName: fields.eventName,
    createdAt: new Date(fields.createdAt),
    updatedAt: new Date(fields.updatedAt),
  };
  if (fields.error !== null) attributes.error = fields.error;
  if (fields.priority !== 0) attributes.priority = fields.priority;
  if (fields.uniqueKey !== null) attributes.uniqueKey = fields.uniqueKey;
  if (fields.concurrencyKey !== undefined && fields.concurrencyKey !== null) {
    attributes.concurrencyKey = fields.concurrencyKey;
  }
  if (fields.failedAt !== undefined) attributes.failedAt = new Date(fields.failedAt);
  if (fields.deletedAt !== undefined && fields.deletedAt !== null) attributes.deletedAt = new Date(fields.deletedAt);
  try {
    attributes.payload = deserializePayload(fields.payload);
  } catch (error) {
    throw new CorruptPayloadError(attributes, fields.payload ?? '', error);
  }
  return attributes;
}
