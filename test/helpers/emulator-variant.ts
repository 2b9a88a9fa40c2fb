/**
 * The emulator service variant the tests run under: env TBDAV_EMULATOR_VARIANT names a preset of
 * src/emulator/variants.ts (VARIANT_PRESETS: default, spec-examples, content-md5, obfuscated,
 * session-errno-2, dlink-direct, dlink-two-hops, revoke-family, short-pages). Every test helper
 * that starts an emulator passes its options through withEnvVariant; `npm run test:variants`
 * (test/variants/run.ts) runs the suites once per preset. Read here only, never by src/.
 *
 * Fields a test sets explicitly in `variant` win over the preset (a test of one knob stays that test).
 */
import { type EmulatorOptions, type ServiceVariant, type VariantPresetName, VARIANT_PRESETS, isVariantPresetName } from '../../src/emulator/index.js';

export const VARIANT_ENV = 'TBDAV_EMULATOR_VARIANT';

/** The preset named by TBDAV_EMULATOR_VARIANT ('default' when unset or empty); throws on an unknown name. */
export function envVariantName(env: NodeJS.ProcessEnv = process.env): VariantPresetName {
  const name = (env[VARIANT_ENV] ?? '').trim();
  if (name === '') return 'default';
  if (!isVariantPresetName(name)) {
    throw new Error(`${VARIANT_ENV}=${name}: no such emulator variant preset (one of ${Object.keys(VARIANT_PRESETS).join(', ')})`);
  }
  return name;
}

/** The variant of the environment's preset. */
export function envVariant(env: NodeJS.ProcessEnv = process.env): ServiceVariant {
  return { ...VARIANT_PRESETS[envVariantName(env)] };
}

/** `opts` with the environment's preset under its own `variant` fields. */
export function withEnvVariant<T extends Partial<EmulatorOptions>>(opts: T, env: NodeJS.ProcessEnv = process.env): T & { variant: Partial<ServiceVariant> } {
  return { ...opts, variant: { ...envVariant(env), ...(opts.variant ?? {}) } };
}
