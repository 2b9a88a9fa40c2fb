/**
 * Source entry of the CLI (`node --import tsx src/cli/run.ts <command>`), used by tests and during
 * development; bin/terabox-dav.js is the same for the compiled dist/.
 */
import { main } from './main.js';

main(process.argv.slice(2)).then(
  () => process.exit(process.exitCode ?? 0),
  (err: unknown) => {
    // main() prints its own clear messages; this is the last resort and never prints a stack.
    process.stderr.write(`terabox-dav: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
