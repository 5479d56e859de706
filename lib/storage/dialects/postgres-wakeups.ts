import type { DataSource } from 'typeorm';
import { describeError } from '../../errors/describe-error.js';
import type { ILoggerService } from '../../interfaces/logger.interface.js';
import { rowStoreMessages } from '../../worker.messages.js';
import { WAKEUP_CHANNEL } from './postgres.dialect.js';

/** The part of a pg PoolClient the listener uses. */
interface ListeningClient {
  query(sql: string): Promise<unknown>;
  on(event: 'notification', listener: (message: { channel: string; payload?: string }) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  release(destroy?: Error | boolean): void;
}

/** How often the listening connection proves it is alive; a silent break is found within this. */
const KEEPALIVE_MS = 10_000;
const MAX_RECONNECT_DELAY_MS = 30_000;

export interface WakeupHandlers {
  /** Rows were committed to this queue. */
  wake(queueName: string): void;
  /** Listening (again) after a gap in which notifications may have been missed. */
  resumed(): void;
}

/**
 * LISTEN on PostgreSQL: dispatches notify the queue's name when they commit (see insertWakingWorkers
 * in dialects/postgres.dialect) and this wakes the pollers at once instead of at their next interval.
 * One connection of the DataSource's pool is held for it. A connection that errors, ends or stops
 * answering the keepalive is replaced, with backoff, and the pollers are woken after each reconnect.
 * Polling stays the fallback throughout.
 */
export class PostgresWakeups {
  private client?: ListeningClient;
  private keepalive?: NodeJS.Timeout;
  private retry?: NodeJS.Timeout;
  private failures = 0;
  private stopped = false;

  constructor(
    private readonly dataSource: DataSource,
    private readonly logger: ILoggerService,
  ) {}

  /** Resolves once listening, or once the first attempt failed (it keeps trying in the background). */
  async start(handlers: WakeupHandlers): Promise<void> {
    this.handlers = handlers;
    await this.connect();
  }

  /** True while a LISTEN connection is up. */
  get listening(): boolean {
    return this.client !== undefined;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    clearInterval(this.keepalive);
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    try {
      await client.query(`UNLISTEN ${WAKEUP_CHANNEL}`);
      client.release();
    } catch (error) {
      client.release(error instanceof Error ? error : true);
    }
  }

  private handlers?: WakeupHandlers;

  private async connect(): Promise<void> {
    if (this.stopped) return;
    let client: ListeningClient | undefined;
    try {
      const pool = (this.dataSource.driver as unknown as { master: { connect(): Promise<ListeningClient> } }).master;
      client = await pool.connect();
      const listening = client;
      listening.on('notification', (message) => {
        if (message.channel === WAKEUP_CHANNEL && message.payload) this.handlers?.wake(message.payload);
      });
      listening.on('error', (error) => this.lost(listening, error));
      listening.on('end', () => this.lost(listening, new Error('connection ended')));
      await listening.query(`LISTEN ${WAKEUP_CHANNEL}`);
      if (this.stopped) {
        listening.release();
        return;
      }
      this.client = listening;
      this.keepalive = setInterval(
        () => void listening.query('SELECT 1').catch((error: unknown) => this.lost(listening, error)),
        KEEPALIVE_MS,
      );
      this.keepalive.unref();
      if (this.failures > 0) {
        this.logger.log(rowStoreMessages.listeningAgain(WAKEUP_CHANNEL, this.failures));
        this.handlers?.resumed();
      }
      this.failures = 0;
    } catch (error) {
      client?.release(error instanceof Error ? error : true);
      this.scheduleReconnect(error);
    }
  }

  private lost(client: ListeningClient, error: unknown): void {
    if (this.client !== client) return;
    this.client = undefined;
    clearInterval(this.keepalive);
    client.release(error instanceof Error ? error : true);
    if (!this.stopped) this.scheduleReconnect(error);
  }

  private scheduleReconnect(error: unknown): void {
    if (this.stopped) return;
    this.failures++;
    const delayMs = Math.min(MAX_RECONNECT_DELAY_MS, 250 * 2 ** (this.failures - 1));
    this.logger.warn(rowStoreMessages.listenFailed(describeError(error), delayMs));
    this.retry = setTimeout(() => void this.connect(), delayMs);
    this.retry.unref();
  }
}
