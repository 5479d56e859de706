/** The message of anything thrown: Error instances and the odd non-Error throw alike. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
