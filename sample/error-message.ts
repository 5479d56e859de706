/** The message of anything thrown, for the seed's `{ error: message }` response bodies. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
