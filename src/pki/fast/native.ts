import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * meshca's native signature checks (native/meshca_native.c, built by scripts/build-native.mjs).
 * Optional: without them the fast path checks signatures with node:crypto and gives the same
 * answers, only slower (node:crypto in Node 20 / OpenSSL 3.0 spends most of its time loading each
 * request's fresh key).
 * MESHCA_NATIVE=0 turns them off, for comparison and diagnosis.
 */
export interface NativeCrypto {
  /** curve: 0 P-256, 1 P-384; point: uncompressed (04 || X || Y). */
  ecPointValid(curve: number, point: Uint8Array): boolean;
  /** 1 verified, 0 not (a non-DER signature included), -1 the point is not on the curve. hash: 0 SHA-256, 1 SHA-384, 2 SHA-512. */
  ecVerify(curve: number, point: Uint8Array, hash: number, data: Uint8Array, signature: Uint8Array): number;
  /** PKCS#1 v1.5: 1 verified, 0 not, -1 the key cannot be used. */
  rsaVerify(modulus: Uint8Array, exponent: Uint8Array, hash: number, data: Uint8Array, signature: Uint8Array): number;
  /** A handle on an EC private key (scalar d, big-endian, the curve's size); throws when d is not a valid key. */
  ecSignerNew(curve: number, d: Uint8Array): NativeSigner;
  /** The DER ECDSA signature of data's digest. */
  ecSign(signer: NativeSigner, hash: number, data: Uint8Array): Buffer;
}

/** Opaque: the key stays inside the native module and is cleared when the handle is collected. */
export type NativeSigner = { readonly __nativeSigner: unique symbol };

export const NATIVE_PATH = fileURLToPath(new URL('../../../../build/native/meshca_native.node', import.meta.url));

function load(): { native?: NativeCrypto; status: string } {
  const flag = process.env.MESHCA_NATIVE;
  if (flag === '0' || flag === 'off' || flag === 'false') return { status: 'off (MESHCA_NATIVE=0)' };
  try {
    return { native: createRequire(import.meta.url)(NATIVE_PATH) as NativeCrypto, status: 'loaded' };
  } catch (e) {
    return { status: `not available (${(e as Error).message.split('\n')[0]})` };
  }
}

const loaded = load();
export const native: NativeCrypto | undefined = loaded.native;
/** "loaded", "off (...)" or "not available (...)", for `/v1/ca`, logs and the benchmark. */
export const nativeStatus: string = loaded.status;

export const HASH_ID: Readonly<Record<string, number>> = { sha256: 0, sha384: 1, sha512: 2 };
