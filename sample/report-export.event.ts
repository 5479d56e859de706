import { BaseEvent, QueueEvent } from '../lib/index.js';

export interface ReportExportPayload {
  /** The month to export, 'YYYY-MM'. */
  month: string;
  /** Rows to "export" (the sample makes them up, 100 a second); default 500. */
  rows?: number;
}

export interface ReportExportResult {
  month: string;
  rows: number;
  file: string;
}

/**
 * A long export that reports how far it got and returns where the file is. `report-queue` keeps
 * completed events for a day (keepCompleted in app.module.ts), so GET /jobs/:id shows the progress
 * while it runs and the result once it is done.
 */
@QueueEvent('report-queue')
export class ReportExportEvent extends BaseEvent<ReportExportPayload, ReportExportResult> {
  async execute(signal?: AbortSignal): Promise<ReportExportResult> {
    const { month, rows = 500 } = this.getPayload();
    const chunk = 100;
    for (let done = 0; done < rows; done += chunk) {
      signal?.throwIfAborted();
      await new Promise((resolve) => setTimeout(resolve, 1000)); // the work on one chunk
      // Cheap to call often: the value is written with the next lease renewal, the last one wins.
      this.reportProgress({ done: Math.min(done + chunk, rows), of: rows });
    }
    return { month, rows, file: `exports/report-${month}.csv` };
  }
}
