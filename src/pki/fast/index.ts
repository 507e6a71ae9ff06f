import type { KeyObject } from 'node:crypto';
import type { ParsedCertificate } from '../certificate.js';
import type { FastCsr } from './csr.js';
import { buildLeafSigner, type LeafSigner } from './leaf.js';

export { DerError, readTlv, expectTlv } from './der.js';
export { parseCsrFast, type FastCsr } from './csr.js';
export {
  buildLeafSigner,
  createLeafFast,
  encodeLeafTbs,
  signLeafTbs,
  type FastLeafOptions,
  type LeafFields,
  type LeafSigner,
} from './leaf.js';

/**
 * Per-CA precomputation, keyed by the certificate object so that callers keep passing the same
 * Signer and never see the cache. A WeakMap lets a rotated-out CA be collected with its entry.
 */
const signers = new WeakMap<ParsedCertificate, LeafSigner>();

export function leafSignerFor(cert: ParsedCertificate, key: KeyObject): LeafSigner {
  const hit = signers.get(cert);
  // The same certificate object with another key object (a reloaded key) gets a fresh entry.
  if (hit && hit.key === key) return hit;
  const s = buildLeafSigner(cert, key);
  signers.set(cert, s);
  return s;
}

/**
 * The SubjectPublicKeyInfo a certificate for this request carries. The library writes Node's
 * export of the key; the request's own bytes are used when they are already exactly that.
 */
export function leafSpki(csr: FastCsr): Buffer {
  return csr.spkiCanonical ? csr.spkiDer : csr.publicKey.export({ format: 'der', type: 'spki' });
}

/**
 * Reasons with which the lean parser refuses an encoding that the BER-tolerant library parser
 * might still accept. Issuance asks the library for the final verdict on those, so that the
 * fast path never changes which requests succeed.
 */
export const LIBRARY_DECIDES: ReadonlySet<string> = new Set(['malformed_csr', 'bad_extension', 'bad_public_key']);
