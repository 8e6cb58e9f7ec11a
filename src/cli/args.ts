/** Flag parsing shared by CLI commands: unknown or malformed flags are usage errors (exit 2). */
import { type ParseArgsConfig, parseArgs } from 'node:util';

export class UsageError extends Error {
  override name = 'UsageError';
}

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

export function parse(
  argv: string[],
  options: NonNullable<ParseArgsConfig['options']>,
  usage: string,
): Parsed {
  try {
    const r = parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    return { values: r.values as Parsed['values'], positionals: r.positionals };
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\nusage: ${usage}`);
  }
}

export function intFlag(
  v: string | boolean | undefined | (string | boolean)[],
  name: string,
  min = 0,
): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^-?\d+$/.test(v))
    throw new UsageError(`--${name}: expected an integer, got ${JSON.stringify(v)}`);
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min)
    throw new UsageError(`--${name}: must be an integer >= ${min}, got ${v}`);
  return n;
}

export function requireFlag(
  v: string | boolean | undefined | (string | boolean)[],
  name: string,
  usage: string,
): string {
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${name} is required\nusage: ${usage}`);
  return v;
}
