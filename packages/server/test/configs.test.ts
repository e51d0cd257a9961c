import { readFile, readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { checkConfigFile } from '../src/check-config.js';
import { serverEditorSchema } from '../src/editor-schema.js';

const CONFIGS = fileURLToPath(new URL('../../../../configs/', import.meta.url));
const SCHEMA_FILE = 'kvmesh.schema.json';

/**
 * Values for the environment variables configs reference (the CSE138
 * topology reads its view, address and replication factor from there). A
 * config that references a variable not listed here fails, so add it.
 */
const ENV: Readonly<Record<string, string>> = {
  ADDRESS: '127.0.0.1:8090',
  VIEW: '127.0.0.1:8090,127.0.0.2:8090,127.0.0.3:8090,127.0.0.4:8090',
  REPL_FACTOR: '2',
};

async function configFiles(): Promise<string[]> {
  return (await readdir(CONFIGS)).filter((f) => f.endsWith('.json') && f !== SCHEMA_FILE).sort();
}

test('configs/kvmesh.schema.json is what `kvmesh schema` generates now', async (t) => {
  const committed = JSON.parse(await readFile(CONFIGS + SCHEMA_FILE, 'utf8')) as unknown;
  t.deepEqual(
    committed,
    JSON.parse(JSON.stringify(serverEditorSchema())),
    'run `npm run schema` and commit the result',
  );
});

test('configs/single.json starts one lmdb node on 127.0.0.1:7700 with data under ./data/', async (t) => {
  const config = JSON.parse(await readFile(`${CONFIGS}single.json`, 'utf8')) as Record<string, any>;
  t.is(config['node'].address, '127.0.0.1:7700');
  t.regex(config['node'].dataDir, /^\.\/data\//);
  t.is(config['storage'].name, 'lmdb');
  t.is(config['placement'].name, 'single');
});

test('every config in configs/ names the schema and validates', async (t) => {
  const files = await configFiles();
  t.true(files.includes('single.json'));
  for (const file of files) {
    const text = await readFile(CONFIGS + file, 'utf8');
    const config = JSON.parse(text) as Record<string, unknown>;
    t.is(config['$schema'], `./${SCHEMA_FILE}`, `${file} has "$schema"`);
    for (const match of text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}/g)) {
      t.true(
        match[2] !== undefined || match[1]! in ENV,
        `${file} references \${${match[1]}}: add a value to ENV in this test`,
      );
    }
    await t.notThrowsAsync(checkConfigFile(CONFIGS + file, { env: ENV }), file);
  }
});
