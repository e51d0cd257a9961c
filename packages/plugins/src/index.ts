import type { AnyPluginManifest } from '@kvmesh/core';

// Each strategy exports its manifest from its own folder; builtinPlugins lists them all.

export const builtinPlugins: readonly AnyPluginManifest[] = [];
