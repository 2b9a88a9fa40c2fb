import { startHarness } from '/work/main/test/dav/harness.js';
const h = await startHarness();
console.log(h.url);
process.on('SIGTERM', async () => { await h.close(); process.exit(0); });
setInterval(() => {}, 1000);
