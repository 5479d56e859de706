import type { SqlStatement } from './statement.js';

/**
 * A statement written with named parameters (`:queueName`, `:limit`, …) compiled once into the
 * dialect's placeholders: `bind(values)` then only lists the values in placeholder order. A name may
 * appear several times (each occurrence is a placeholder of its own). `::type` casts and time
 * literals ('00:00:00') are left alone: a name starts with a letter right after a single colon.
 */
export interface NamedStatement<P extends object> {
  /** The SQL with the dialect's placeholders. */
  readonly sql: string;
  /** The statement with these values, in placeholder order. */
  bind(values: P): SqlStatement;
}

const NAMED_PARAMETER = /(?<![:\w]):([A-Za-z]\w*)/g;

/**
 * Compiles `sql` with named parameters; `placeholder(position)` spells the n-th one (1-based):
 * `?` by default, `$n` on PostgreSQL.
 */
export function namedStatement<P extends object>(
  sql: string,
  placeholder: (position: number) => string = () => '?',
): NamedStatement<P> {
  const names: (keyof P)[] = [];
  const compiled = sql.replace(NAMED_PARAMETER, (_match, name: string) => {
    names.push(name as keyof P);
    return placeholder(names.length);
  });
  return {
    sql: compiled,
    bind: (values) => ({ sql: compiled, parameters: names.map((name) => values[name]) }),
  };
}
