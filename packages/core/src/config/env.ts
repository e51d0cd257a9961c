import type { ConfigProblem } from './problems.js';

const REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;
const WHOLE = /^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}$/;

/**
 * Replaces `${VAR}` and `${VAR:-default}` in every string of a parsed config.
 *
 * A string that is exactly one reference takes the JSON value of the
 * variable when it parses as JSON (`"${REPL_FACTOR:-2}"` becomes the number
 * 2), else its text; references inside longer strings are spliced as text.
 * Unset variables without a default are reported, with the path, in `problems`.
 */
export function interpolateEnv(
  value: unknown,
  env: Readonly<Record<string, string | undefined>>,
  problems: ConfigProblem[],
  path = '',
): unknown {
  if (typeof value === 'string') return interpolateString(value, env, problems, path);
  if (Array.isArray(value)) return value.map((item, i) => interpolateEnv(item, env, problems, `${path}/${i}`));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, interpolateEnv(v, env, problems, `${path}/${escapePointer(k)}`)]),
    );
  }
  return value;
}

function interpolateString(
  text: string,
  env: Readonly<Record<string, string | undefined>>,
  problems: ConfigProblem[],
  path: string,
): unknown {
  const lookup = (name: string, fallback: string | undefined): string => {
    const found = env[name];
    if (found !== undefined && found !== '') return found;
    if (fallback !== undefined) return fallback;
    problems.push({
      path: path || '/',
      message: `environment variable ${name} is not set and has no default`,
      env: true,
    });
    return '';
  };
  const whole = WHOLE.exec(text);
  if (whole) {
    const raw = lookup(whole[1]!, whole[2]);
    try {
      return JSON.parse(raw) as unknown;
    } catch {
      return raw;
    }
  }
  return text.replace(REFERENCE, (_m, name: string, fallback: string | undefined) => lookup(name, fallback));
}

/** RFC 6901 escaping of one JSON Pointer segment. */
export function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}
