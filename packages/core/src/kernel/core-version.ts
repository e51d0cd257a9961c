import { readFileSync } from 'node:fs';

/**
 * The version of this copy of `@kvmesh/core`, from its package.json (which
 * sits three folders above this module in the built package:
 * `dist/src/kernel/`). Plugins declare the core versions they support with
 * `PluginManifest.coreVersions`; the registry compares against this.
 */
export const CORE_VERSION: string = (
  JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
