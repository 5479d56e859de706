import {
  assertInteger,
  assertKnownKeys,
  assertPlainObject,
  assertStoredName,
} from '../common/worker-options.validation.js';
import { InvalidWorkerOptionsError } from '../errors/worker.error.js';
import {
  type FindJobsQuery,
  JOB_STATES,
  type JobState,
  type PayloadFilterValue,
  type ThroughputQuery,
} from '../interfaces/job-state.interface.js';
import type { JobFilter } from '../storage/sql/find-jobs.js';
import type { ThroughputFilter } from '../storage/sql/throughput-series.js';
import { DEFAULT_JOB_PAGE_SIZE, MAX_JOB_PAGE_SIZE } from '../worker.defaults.js';
import { jobQueryMessages } from '../worker.messages.js';

const FIND_KEYS = [
  'queueName',
  'eventName',
  'state',
  'uniqueKey',
  'createdFrom',
  'createdTo',
  'payload',
  'page',
  'pageSize',
] as const;
const THROUGHPUT_KEYS = ['queueName', 'eventName', 'from', 'to'] as const;

/** Payload field names a filter may use: they go into a JSON path, so only plain names. */
const PAYLOAD_KEY = /^[A-Za-z0-9_-]{1,64}$/;
export const MAX_PAYLOAD_KEY_LENGTH = 64;

/** A checked findJobs() query: the storage filter, and the page. */
export interface CheckedJobQuery {
  filter: JobFilter;
  page: number;
  pageSize: number;
}

/** Payload fields one findJobs() compares at most. */
export const MAX_PAYLOAD_FILTER_FIELDS = 20;

/** Checks a findJobs() query, naming the first bad field; nothing is read before it passes. */
export function checkFindJobsQuery(query: unknown): CheckedJobQuery {
  assertPlainObject('findJobs query', query);
  assertKnownKeys('', query, FIND_KEYS);
  const { queueName, eventName, uniqueKey, createdFrom, createdTo, state, payload } = query as FindJobsQuery;
  const pageSize = query.pageSize ?? DEFAULT_JOB_PAGE_SIZE;
  if (typeof pageSize !== 'number' || !Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_JOB_PAGE_SIZE) {
    throw new InvalidWorkerOptionsError('pageSize', jobQueryMessages.pageSizeOutOfRange(MAX_JOB_PAGE_SIZE, pageSize));
  }
  const page = query.page ?? 1;
  // The row offset, (page - 1) × pageSize, must stay an exact integer for the LIMIT clauses.
  assertInteger('page', page, 1, Math.floor(Number.MAX_SAFE_INTEGER / pageSize) - 1);
  const filter: JobFilter = {};
  if (queueName !== undefined) filter.queueName = checkedName('queueName', queueName);
  if (eventName !== undefined) filter.eventName = checkedName('eventName', eventName);
  if (uniqueKey !== undefined) filter.uniqueKey = checkedName('uniqueKey', uniqueKey);
  if (state !== undefined) filter.states = checkedStates(state);
  if (createdFrom !== undefined) filter.createdFrom = epochMsOf('createdFrom', createdFrom);
  if (createdTo !== undefined) filter.createdTo = epochMsOf('createdTo', createdTo);
  if (payload !== undefined) filter.payload = checkedPayload(payload);
  if (createdFrom !== undefined && createdTo !== undefined && filter.createdTo! <= filter.createdFrom!) {
    throw new InvalidWorkerOptionsError('createdTo', jobQueryMessages.emptyRange(createdFrom, createdTo));
  }
  return { filter, page: page as number, pageSize };
}

/** Checks a getThroughput() query. */
export function checkThroughputQuery(query: unknown): ThroughputFilter {
  assertPlainObject('getThroughput query', query);
  assertKnownKeys('', query, THROUGHPUT_KEYS);
  const { queueName, eventName, from, to } = query as ThroughputQuery;
  const filter: ThroughputFilter = {};
  if (queueName !== undefined) filter.queueName = checkedName('queueName', queueName);
  if (eventName !== undefined) filter.eventName = checkedName('eventName', eventName);
  if (from !== undefined) filter.from = epochMsOf('from', from);
  if (to !== undefined) filter.to = epochMsOf('to', to);
  if (from !== undefined && to !== undefined && filter.to! <= filter.from!) {
    throw new InvalidWorkerOptionsError('to', jobQueryMessages.emptyRange(from, to));
  }
  return filter;
}

function checkedName(field: string, value: unknown): string {
  assertStoredName(field, value);
  return value;
}

function checkedStates(state: unknown): JobState[] {
  const states = Array.isArray(state) ? (state as unknown[]) : [state];
  if (states.length === 0) throw new InvalidWorkerOptionsError('state', jobQueryMessages.noStates);
  for (const each of states) {
    if (!JOB_STATES.includes(each as JobState)) {
      throw new InvalidWorkerOptionsError('state', jobQueryMessages.unknownState(each, JOB_STATES));
    }
  }
  return [...new Set(states as JobState[])];
}

function epochMsOf(field: string, value: unknown): number {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw new InvalidWorkerOptionsError(field, jobQueryMessages.invalidDate(value));
  }
  return value.getTime();
}

function checkedPayload(payload: unknown): [string, PayloadFilterValue][] {
  assertPlainObject('payload', payload);
  // Each field is a condition with its parameters in every table's branch: a bounded number keeps
  // the statement within every database's parameter limit.
  const count = Object.keys(payload).length;
  if (count > MAX_PAYLOAD_FILTER_FIELDS) {
    throw new InvalidWorkerOptionsError(
      'payload',
      jobQueryMessages.tooManyPayloadFields(count, MAX_PAYLOAD_FILTER_FIELDS),
    );
  }
  const fields: [string, PayloadFilterValue][] = [];
  for (const [key, value] of Object.entries(payload)) {
    if (!PAYLOAD_KEY.test(key)) {
      throw new InvalidWorkerOptionsError('payload', jobQueryMessages.invalidPayloadKey(key, MAX_PAYLOAD_KEY_LENGTH));
    }
    const field = `payload.${key}`;
    const valid =
      value === null ||
      typeof value === 'string' ||
      typeof value === 'boolean' ||
      (typeof value === 'number' && Number.isFinite(value));
    if (!valid) throw new InvalidWorkerOptionsError(field, jobQueryMessages.invalidPayloadValue(value));
    // A lone surrogate becomes U+FFFD on its way to the database: two different strings would match alike.
    if (typeof value === 'string' && !(value as string & { isWellFormed(): boolean }).isWellFormed()) {
      throw new InvalidWorkerOptionsError(field, jobQueryMessages.malformedPayloadString);
    }
    fields.push([key, value as PayloadFilterValue]);
  }
  return fields;
}
