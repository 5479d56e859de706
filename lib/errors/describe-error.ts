/** The message of whatever was thrown, for a log line (a thrown value need not be an Error). */
export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
