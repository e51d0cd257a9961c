#!/usr/bin/env node
// Committed launcher with its executable bit, so `npx kvmesh` works after a build (tsc output is not executable).
// The parent is read first, before the CLI's modules load (most of a second): `kvmesh up` and `kvmesh start`
// stop when it is gone, and one that died while they loaded would otherwise go unnoticed.
const parent = process.ppid;
const { recordLaunchParent } = await import('../dist/src/cli/parent-watch.js');
recordLaunchParent(parent);
const { run } = await import('../dist/src/cli/main.js');

await run(process.argv);
