import type { KeyObject } from 'node:crypto';
import { parseCertificates, type ParsedCertificate } from '../pki/certificate.js';
import { verifyChain } from '../pki/chain.js';
import { MeshcaError } from '../pki/errors.js';
import type { IstioCertificateResponse } from './proto.js';

/** What a CreateCertificate answer certifies, checked before anything reaches the disk. */
export interface AcceptedCertificate {
  leaf: ParsedCertificate;
  /** Leaf then intermediates; roots are left out (a peer must already hold them). */
  chain: ParsedCertificate[];
  /** Every root the mesh trusts: more than one while a root rotation is under way. */
  roots: ParsedCertificate[];
}

function bad(reason: string, message: string): MeshcaError {
  return new MeshcaError('internal', reason, `the CA's response is unusable: ${message}`);
}

/**
 * Splits the response into chain and roots (root_cert when the server sets it, else the last
 * cert_chain entry, which may hold several concatenated roots) and refuses it unless the leaf
 * holds our key and our identity and the chain verifies to those roots now. Writing a
 * certificate that peers would reject would take the workload off the mesh silently.
 */
export function acceptResponse(
  res: IstioCertificateResponse,
  o: { publicKey: KeyObject; spiffeId: string; now: Date },
): AcceptedCertificate {
  if (res.certChain.length === 0) throw bad('ca_empty_chain', 'cert_chain is empty');
  const entries = res.certChain.map((pem, i) => parseCertificates(pem, `cert_chain[${i}]`));
  let roots: ParsedCertificate[];
  let chain: ParsedCertificate[];
  if (res.rootCerts.length > 0) {
    roots = res.rootCerts.flatMap((pem, i) => parseCertificates(pem, `root_cert.ca_cert[${i}]`));
    // Servers keep the root as the last cert_chain entry for old clients; drop it from the chain.
    chain = entries.flat().filter((c) => !roots.some((r) => r.der.equals(c.der)));
  } else {
    if (entries.length < 2) throw bad('ca_no_root', 'cert_chain holds only the leaf and root_cert is absent, so there is no root');
    roots = entries[entries.length - 1];
    chain = entries.slice(0, -1).flat();
  }
  if (chain.length === 0) throw bad('ca_no_leaf', 'cert_chain holds no certificate besides the roots');
  const leaf = chain[0];
  if (!leaf.publicKey.equals(o.publicKey))
    throw bad('ca_wrong_key', `leaf serial ${leaf.serialHex} does not certify the key this agent sent`);
  const uris = leaf.ext.san?.uris ?? [];
  if (!uris.includes(o.spiffeId)) {
    throw bad('ca_wrong_identity', `leaf certifies ${uris.join(', ') || 'no URI'} instead of ${o.spiffeId}`);
  }
  // A workload whose clock lags the CA's would otherwise refuse a fresh certificate; expiry is still checked.
  const at = new Date(Math.max(o.now.getTime(), leaf.notBefore.getTime()));
  const check = verifyChain(chain, { roots, now: at, leafIsEndEntity: true });
  if (!check.ok) throw bad('ca_bad_chain', `chain does not verify to the returned roots: ${check.problems.join('; ')}`);
  return { leaf, chain, roots };
}
