/**
 * The shared Remote contract suite (test/contract/remote-contract.ts) run on TeraboxRemote over
 * the emulator on port 0: one emulator for the file, a fresh remote root per test.
 */
import { after } from 'node:test';
import { TeraboxRemote } from '../../src/terabox/remote.js';
import { remoteContract } from '../contract/remote-contract.js';
import { startRig, type Rig } from './setup.js';

let rig: Promise<Rig> | undefined;
let n = 0;

remoteContract('terabox', async () => {
  rig ??= startRig();
  const r = await rig;
  const root = `${r.emu.appRoot}/contract-${++n}`;
  await r.client.createDir(root);
  return { remote: new TeraboxRemote(r.client, { root, logger: r.logger }), cleanup: async () => {} };
});

after(async () => {
  if (rig) await (await rig).close();
});
