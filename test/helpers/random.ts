/**
 * The tests' seeded PRNG, so that a failing fuzz or simulation run can be replayed: the emulator's
 * own mulberry32 (src/emulator/util.ts), one copy for both.
 */
export { createPrng as prng } from '../../src/emulator/util.js';
