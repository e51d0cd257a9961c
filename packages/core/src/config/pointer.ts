/** The segments of an RFC 6901 JSON Pointer (`/a/b~1c` → `['a', 'b/c']`); `''` is the whole document. */
export function pointerSegments(pointer: string): string[] {
  return pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** The value at a JSON Pointer, or undefined when a segment on the way is missing. */
export function getPointer(target: unknown, pointer: string): unknown {
  let node: unknown = target;
  for (const segment of pointerSegments(pointer)) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string, unknown>)[segment];
  }
  return node;
}

/** Sets a value at a JSON Pointer, creating objects on the way. */
export function setPointer(target: unknown, pointer: string, value: unknown): void {
  const segments = pointerSegments(pointer);
  let node = target as Record<string, unknown>;
  for (const segment of segments.slice(0, -1)) {
    if (typeof node[segment] !== 'object' || node[segment] === null) node[segment] = {};
    node = node[segment] as Record<string, unknown>;
  }
  node[segments.at(-1)!] = value;
}

/** Whether `pointer` is `base` or inside it (`/placement/options/x` is inside `/placement`). */
export function pointerWithin(pointer: string, base: string): boolean {
  return pointer === base || pointer.startsWith(`${base}/`);
}

/**
 * Sets each override at its JSON Pointer (see `ValidateOptions.overrides`):
 * a function is given the value there and answers the new one; undefined is skipped.
 */
export function applyOverrides(config: unknown, overrides: Readonly<Record<string, unknown>>): void {
  if (typeof config !== 'object' || config === null) return;
  for (const [pointer, value] of Object.entries(overrides)) {
    const next =
      typeof value === 'function' ? (value as (current: unknown) => unknown)(getPointer(config, pointer)) : value;
    if (next !== undefined) setPointer(config, pointer, next);
  }
}
