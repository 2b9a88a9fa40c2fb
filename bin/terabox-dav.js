#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/ (built by `npm ci` through the prepare script).
import { main } from '../dist/cli/main.js';

main(process.argv.slice(2)).then(
  // Exit explicitly: keep-alive sockets of the HTTP client must not hold a finished command open.
  () => process.exit(process.exitCode ?? 0),
  (err) => {
    // main() prints its own clear messages; this is the last resort and never prints a stack.
    process.stderr.write(`terabox-dav: ${err && err.message ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
