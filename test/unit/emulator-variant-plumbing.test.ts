/**
 * Every emulator a test starts runs under the variant preset of env TBDAV_EMULATOR_VARIANT
 * (`npm run test:variants` relies on it): each startEmulator call in test/ passes its options
 * through withEnvVariant (test/helpers/emulator-variant.ts). A test about one variant still sets
 * its own `variant` fields, which win.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { walkFiles } from '../helpers/files.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The .ts files below `dir`. */
const walk = async (dir: string): Promise<string[]> => (await walkFiles(dir)).filter((f) => f.endsWith('.ts'));

test('every startEmulator call of the tests takes the TBDAV_EMULATOR_VARIANT preset (withEnvVariant)', async () => {
  const bare: string[] = [];
  for (const file of await walk(join(root, 'test'))) {
    const lines = (await readFile(file, 'utf8')).split('\n');
    lines.forEach((line, i) => {
      if (/\bstartEmulator\(/.test(line) && !/startEmulator\(\s*withEnvVariant\(/.test(line) && !/^\s*(\/\/|\*)/.test(line)) bare.push(`${relative(root, file)}:${i + 1}`);
    });
  }
  assert.deepEqual(bare, [], 'wrap the options: startEmulator(withEnvVariant({...})) from test/helpers/emulator-variant.js');
});
