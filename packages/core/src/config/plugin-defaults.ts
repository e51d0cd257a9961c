import { Ajv } from 'ajv';
import { STRATEGY_FAMILIES } from '../plugin.js';
import type { AnyPluginManifest, ConfigDefault } from '../plugin.js';
import type { PluginCatalog } from './catalog.js';
import { getPointer, pointerWithin, setPointer } from './pointer.js';
import type { ConfigProblem } from './problems.js';
import { FACADES_SECTION } from './schema.js';

/** Where a filled value came from: the JSON Pointer of the option that gave it, by the path it filled. */
export type FilledPaths = ReadonlyMap<string, string>;

// A separate instance: options are validated here on a copy only, to hand the hook its defaults.
const ajv = new Ajv({ allErrors: false, useDefaults: true, strict: false });

interface Chosen {
  readonly manifest: AnyPluginManifest;
  /** JSON Pointer of the plugin's section: `/placement`, `/facades/0`. */
  readonly section: string;
  readonly options: Record<string, unknown>;
}

/**
 * Applies every chosen plugin's `configDefaults` to `config` (the file's
 * document, changed in place): a value written by an option fills its path
 * where the file leaves it unset; a different value already there is a
 * conflict, reported at the option with both paths. Plugins whose options
 * are invalid give nothing (the schema pass reports them).
 * @returns the paths filled, each with the option it came from.
 */
export function applyPluginDefaults(
  config: Record<string, unknown>,
  registry: PluginCatalog,
  problems: ConfigProblem[],
): FilledPaths {
  const filled = new Map<string, string>();
  const snapshot = structuredClone(config);
  for (const chosen of chosenPlugins(config, registry)) {
    const hook = chosen.manifest.configDefaults;
    if (hook === undefined) continue;
    const options = structuredClone(chosen.options);
    if (!ajv.validate(chosen.manifest.optionsSchema, options)) continue;
    let given: readonly ConfigDefault[];
    try {
      given = hook(options, snapshot);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      problems.push({
        path: `${chosen.section}/options`,
        message: `${chosen.manifest.family} '${chosen.manifest.name}' could not map its options: ${reason}`,
      });
      continue;
    }
    for (const item of given) {
      if (getPointer(chosen.options, item.option) === undefined) continue;
      const from = `${chosen.section}/options${item.option}`;
      if (!item.path.startsWith('/') || pointerWithin(item.path, chosen.section)) {
        problems.push({
          path: from,
          message: `${chosen.manifest.family} '${chosen.manifest.name}' maps this option to ${JSON.stringify(item.path)}, which is not another section of the config`,
        });
        continue;
      }
      const existing = getPointer(config, item.path);
      if (existing === undefined) {
        setPointer(config, item.path, structuredClone(item.value));
        filled.set(item.path, from);
      } else if (!sameJson(existing, item.value)) {
        const setter = filled.get(item.path);
        const where = setter === undefined ? `the file sets ${item.path}` : `${setter} gives ${item.path}`;
        problems.push({
          path: from,
          message: `gives ${item.path} the value ${preview(item.value)}, but ${where} to ${preview(existing)}; keep one of the two`,
        });
      }
    }
  }
  return filled;
}

/** A problem at or inside a filled path names the option that filled it. */
export function withOrigin(problem: ConfigProblem, filled: FilledPaths): ConfigProblem {
  for (const [path, from] of filled) {
    if (pointerWithin(problem.path, path)) return { ...problem, message: `${problem.message} (given by ${from})` };
  }
  return problem;
}

/** The plugins a document chooses, strategies first then facades, each with its section and options as written. */
function* chosenPlugins(config: Record<string, unknown>, registry: PluginCatalog): Generator<Chosen> {
  for (const family of STRATEGY_FAMILIES) {
    const section = config[family] as { name?: unknown; options?: unknown } | undefined;
    if (typeof section?.name !== 'string' || !registry.has(family, section.name)) continue;
    yield { manifest: registry.get(family, section.name), section: `/${family}`, options: optionsOf(section) };
  }
  const facades = config[FACADES_SECTION];
  if (!Array.isArray(facades)) return;
  for (const [i, entry] of facades.entries()) {
    const e = entry as { name?: unknown; options?: unknown } | undefined;
    if (typeof e?.name !== 'string' || !registry.has('facade', e.name)) continue;
    yield { manifest: registry.get('facade', e.name), section: `/${FACADES_SECTION}/${i}`, options: optionsOf(e) };
  }
}

function optionsOf(section: { options?: unknown }): Record<string, unknown> {
  const o = section.options;
  return typeof o === 'object' && o !== null && !Array.isArray(o) ? (o as Record<string, unknown>) : {};
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? 'nothing';
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
