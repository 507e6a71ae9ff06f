import type { KeyObject } from 'node:crypto';
import { certLabel, parseCertificates, type ParsedCertificate } from '../pki/certificate.js';
import { MeshcaError } from '../pki/errors.js';
import { keyMatches, parsePrivateKeyPem } from '../pki/keys.js';
import type { StoredSecret } from '../resources/secrets.js';

/** A CA that can sign intermediates: its certificate and key, the certificates above it, and the roots to trust. */
export interface SigningCa {
  cert: ParsedCertificate;
  key: KeyObject;
  /** Issuers above `cert`, nearest first, ending with the root; empty when `cert` is the root. */
  above: ParsedCertificate[];
  roots: ParsedCertificate[];
}

function bad(what: string, why: string): MeshcaError {
  return new MeshcaError('failed_precondition', 'bad_ca_secret', `${what}: ${why}`);
}

/**
 * Reads a CA from a secret in either layout istiod accepts: Istio's (ca-cert.pem, ca-key.pem,
 * cert-chain.pem, root-cert.pem, as in Gloo's `kubectl create secret generic ... --from-file`)
 * or cert-manager's (tls.crt, tls.key, ca.crt).
 */
export function caFromSecret(s: StoredSecret, what: string): SigningCa {
  const d = s.data;
  const certPem = d['ca-cert.pem'] ?? d['tls.crt'];
  const keyPem = d['ca-key.pem'] ?? d['tls.key'];
  if (!certPem) throw bad(what, 'holds neither ca-cert.pem nor tls.crt');
  if (!keyPem) throw bad(what, 'holds neither ca-key.pem nor tls.key (a CA secret needs the signing key)');
  let certs: ParsedCertificate[];
  let key: KeyObject;
  let chain: ParsedCertificate[] = [];
  let roots: ParsedCertificate[] = [];
  try {
    // Labelled by file only: bad() puts the secret's name in front.
    certs = parseCertificates(certPem.toString('utf8'), d['ca-cert.pem'] ? 'ca-cert.pem' : 'tls.crt');
    key = parsePrivateKeyPem(keyPem, d['ca-key.pem'] ? 'ca-key.pem' : 'tls.key');
    const chainPem = d['cert-chain.pem'];
    if (chainPem) chain = parseCertificates(chainPem.toString('utf8'), 'cert-chain.pem');
    const rootPem = d['root-cert.pem'] ?? d['ca.crt'];
    if (rootPem) roots = parseCertificates(rootPem.toString('utf8'), d['root-cert.pem'] ? 'root-cert.pem' : 'ca.crt');
  } catch (e) {
    throw bad(what, (e as Error).message);
  }
  const cert = certs[0];
  if (!cert.isCA) {
    // `openssl x509 -req` (the Gloo guide's self-signing step) drops the request's extensions.
    throw bad(
      what,
      `${certLabel(cert)} is not a CA certificate (basicConstraints CA:TRUE missing; \`openssl x509 -req\` keeps a request's extensions only with -copy_extensions copyall or -extfile)`,
    );
  }
  if (!keyMatches(key, cert.publicKey)) throw bad(what, `the key does not match ${certLabel(cert)}`);
  const above = [...certs.slice(1), ...chain].filter(
    (c, i, all) => !c.der.equals(cert.der) && all.findIndex((x) => x.der.equals(c.der)) === i,
  );
  if (roots.length === 0) {
    const top = above.length > 0 ? above[above.length - 1] : cert;
    if (!top.selfIssued) throw bad(what, 'has no root-cert.pem (or ca.crt) and its chain does not end at a root');
    roots = [top];
  }
  if (above.length === 0 && !cert.selfIssued) {
    // An intermediate without its chain: the root file completes it.
    const r = roots.find((x) => x.subjectDer.equals(cert.issuerDer));
    if (r) above.push(r);
  }
  return { cert, key, above, roots };
}
