import { readFileSync } from 'node:fs';

const cache = new Map<string, string>();

/**
 * The text of `proto/<name>.proto`. Relative to dist/src/membership/support/,
 * where this module runs from; the package ships proto/.
 */
export function membershipProto(name: string): string {
  let text = cache.get(name);
  if (text === undefined) {
    text = readFileSync(new URL(`../../../../proto/${name}.proto`, import.meta.url), 'utf8');
    cache.set(name, text);
  }
  return text;
}
