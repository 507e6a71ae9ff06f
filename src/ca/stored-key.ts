import type { KeyObject } from 'node:crypto';
import { MeshcaError, isMeshcaError } from '../pki/errors.js';
import { parsePrivateKeyPem } from '../pki/keys.js';

/**
 * Reads a CA key meshca stored itself (state directory or database). Such keys are encrypted with
 * MESHCA_KEY_PASSPHRASE when it was set at the time, so an encrypted key names that variable.
 */
export function decryptKey(pem: string | Buffer, what: string, passphrase?: string): KeyObject {
  try {
    return parsePrivateKeyPem(pem, what, passphrase);
  } catch (e) {
    const hint =
      isMeshcaError(e) && e.reason === 'encrypted_key'
        ? passphrase
          ? ' (MESHCA_KEY_PASSPHRASE does not decrypt it: set it to the passphrase the CA keys were stored with)'
          : ' (set MESHCA_KEY_PASSPHRASE to the passphrase the CA keys were stored with)'
        : '';
    throw new MeshcaError('failed_precondition', 'corrupt_state', `${(e as Error).message}${hint}`, { cause: e });
  }
}
