#!/usr/bin/env node
// Committed launcher with its executable bit, so `npx kvmesh` works after a build (tsc output is not executable).
import { run } from '../dist/src/cli/main.js';

await run(process.argv);
