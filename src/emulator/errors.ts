/**
 * The emulator's own errors (it shares no error class with the product: src/shared/errors.ts is
 * the bridge's vocabulary, and a service knows nothing of it).
 */

/** An API answer with a non-zero errno, thrown inside a route and turned into JSON by the router. */
export class EmulatorErrno extends Error {
  override readonly name = 'EmulatorErrno';
  constructor(
    readonly errno: number,
    message: string,
    readonly httpStatus = 200,
  ) {
    super(message);
  }
}

/** A test helper of the handle was misused (createShare of a missing path, an unknown shareid...). */
export class EmulatorUsageError extends Error {
  override readonly name = 'EmulatorUsageError';
}
