/** The logging a worker needs; Nest's `Logger`, a Nest `LoggerService` and `console` all fit. */
export interface ILoggerService {
  log(message: string, ...optionalParams: unknown[]): unknown;
  error(message: string, ...optionalParams: unknown[]): unknown;
  warn(message: string, ...optionalParams: unknown[]): unknown;
  debug?(message: string, ...optionalParams: unknown[]): unknown;
}
