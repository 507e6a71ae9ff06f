/**
 * Test fixtures for the agent's unit tests: an in-memory CA that keeps the Istio CA contract
 * (token or mTLS authentication, identity checks, both response shapes) without a network.
 */
import { generateKeyPair } from '../pki/keys.js';
import { parseCertificates, type ParsedCertificate } from '../pki/certificate.js';
import { verifyChain } from '../pki/chain.js';
import { MeshcaError } from '../pki/errors.js';
import { issueWorkloadCertificate, type Signer } from '../pki/issue.js';
import { createIntermediateCertificate, createLeafCertificate, createRootCertificate } from '../pki/profiles.js';
import { parseCsr } from '../pki/csr.js';
import { encodePem } from '../pki/pem.js';
import type { CallAuth, CaClient } from './client.js';
import { identityFromCertificate, identityFromToken } from './identity.js';
import type { IstioCertificateRequest, IstioCertificateResponse } from './proto.js';

/** An unsigned JWT with Kubernetes service-account claims (the agent does not verify tokens). */
export function fakeToken(namespace: string, serviceAccount: string, extra: Record<string, unknown> = {}): string {
  const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const payload = {
    iss: 'kubernetes/serviceaccount',
    sub: `system:serviceaccount:${namespace}:${serviceAccount}`,
    aud: ['istio-ca'],
    'kubernetes.io': { namespace, serviceaccount: { name: serviceAccount, uid: 'u-1' } },
    ...extra,
  };
  return `${enc({ alg: 'RS256', kid: 'k' })}.${enc(payload)}.c2ln`;
}

export interface FakeCall {
  req: IstioCertificateRequest;
  auth: CallAuth;
}

export class FakeCa implements CaClient {
  readonly root: ParsedCertificate;
  readonly signer: Signer;
  readonly calls: FakeCall[] = [];
  /** Errors to throw on the next calls, in order. */
  readonly failures: Error[] = [];
  ttlSeconds = 3600;
  /** 'roots': root_cert field set (and root kept last in cert_chain); 'legacy': root only as last entry. */
  shape: 'roots' | 'legacy' = 'roots';
  rejectMtls = false;
  /** Certify this identity instead of the caller's (a misbehaving CA). */
  overrideIdentity?: string;

  constructor(readonly now: () => number) {
    const t = new Date(now());
    const rootKey = generateKeyPair('ec-p256');
    this.root = createRootCertificate({ key: rootKey.privateKey, now: t, subject: { organization: ['fake'], commonName: 'Fake Root' } });
    const caKey = generateKeyPair('ec-p256');
    const ca = createIntermediateCertificate({
      issuerCert: this.root,
      issuerKey: rootKey.privateKey,
      publicKey: caKey.publicKey,
      subject: { organization: ['fake'], commonName: 'Fake Mesh CA' },
      days: 30,
      now: t,
    }).cert;
    this.signer = { cert: ca, key: caKey.privateKey, chain: [this.root] };
  }

  private identityOf(auth: CallAuth): string {
    if (auth.kind === 'token') return identityFromToken(auth.token, 'cluster.local').spiffeId;
    if (this.rejectMtls) throw new MeshcaError('unauthenticated', 'ca_unauthenticated', 'UNAUTHENTICATED: client certificate not accepted');
    const chain = parseCertificates(auth.certChainPem);
    const v = verifyChain(chain, { roots: [this.root], now: new Date(this.now()) });
    if (!v.ok) throw new MeshcaError('unauthenticated', 'ca_unauthenticated', `UNAUTHENTICATED: ${v.problems.join('; ')}`);
    return identityFromCertificate(chain[0]).spiffeId;
  }

  async createCertificate(req: IstioCertificateRequest, auth: CallAuth): Promise<IstioCertificateResponse> {
    this.calls.push({ req, auth });
    const f = this.failures.shift();
    if (f) throw f;
    const id = this.identityOf(auth);
    const now = new Date(this.now());
    const ttlSeconds = req.validityDuration || this.ttlSeconds;
    let chain: string[];
    if (this.overrideIdentity) {
      // A misbehaving CA: certifies another identity than the CSR asked for.
      const leaf = createLeafCertificate({
        issuerCert: this.signer.cert,
        issuerKey: this.signer.key,
        publicKey: parseCsr(req.csr).publicKey,
        sans: { uris: [this.overrideIdentity] },
        ttlSeconds,
        now,
      });
      chain = [encodePem('CERTIFICATE', leaf.der), this.signer.cert.pem, this.root.pem];
    } else {
      chain = issueWorkloadCertificate(this.signer, { csr: req.csr, identities: [id], ttlSeconds, now }).chain;
    }
    const issued = { chain };
    return this.shape === 'roots' ? { certChain: issued.chain, rootCerts: [this.root.pem] } : { certChain: issued.chain, rootCerts: [] };
  }
}
