import { isIP } from 'node:net';
import { certsToPem, type ParsedCertificate } from '../pki/certificate.js';
import { createCsr } from '../pki/csr.js';
import { generateKeyPair, privateKeyToPem } from '../pki/keys.js';
import type { Signer } from '../pki/issue.js';
import { encodePem } from '../pki/pem.js';
import { createLeafCertificate } from '../pki/profiles.js';
import { SHORT_LIVED_MAX_SECONDS } from '../upstream/awspca/templates.js';
import type { Upstream, UpstreamChain } from '../upstream/index.js';

export interface ServingCertificate {
  /** Leaf then the issuing CA chain, without the self-signed root (clients hold it). */
  certChainPem: string;
  keyPem: string;
  notBefore: Date;
  notAfter: Date;
  sans: string[];
}

/**
 * The gRPC serving certificate: a fresh P-256 key, signed by the cluster intermediate like any
 * workload, but for DNS names and IPs (istiod.istio-system.svc, localhost, 127.0.0.1) so that
 * istio-agent's default server-name check passes.
 */
export function issueServingCertificate(signer: Signer, sans: string[], ttlSeconds: number, now: Date): ServingCertificate {
  const kp = generateKeyPair('ec-p256');
  const leaf = createLeafCertificate({
    issuerCert: signer.cert,
    issuerKey: signer.key,
    publicKey: kp.publicKey,
    sans: { dnsNames: sans.filter((s) => isIP(s) === 0), ipAddresses: sans.filter((s) => isIP(s) !== 0) },
    ttlSeconds,
    now,
  });
  const above = [signer.cert, ...signer.chain].filter((c) => !c.selfIssued);
  return {
    certChainPem: encodePem('CERTIFICATE', leaf.der) + above.map((c) => c.pem).join(''),
    keyPem: privateKeyToPem(kp.privateKey),
    notBefore: leaf.notBefore,
    notAfter: leaf.notAfter,
    sans,
  };
}

/** A serving certificate and the CAs that client certificates (mTLS renewals) must chain to. */
export interface ServingIssue {
  certificate: ServingCertificate;
  trustedCaPem: string;
}

/** How a material source obtains the gRPC serving certificate; ServingTls renews through it. */
export interface ServingIssuer {
  issue(sans: string[], ttlSeconds: number, now: Date): ServingIssue | Promise<ServingIssue>;
  /** Wait before retrying a failed renewal: soon, but not in a tight loop. */
  readonly retryMs: number;
  /** Issue again whenever the signing material changes (the certificate hangs below it). */
  readonly followsMaterial: boolean;
  /** Who issues, for the log lines. */
  readonly issuedBy?: string;
}

/** Signed here with the authority's current signer; client certificates chain through it to a trusted root. */
export function localServingIssuer(authority: { readonly signer: Signer; readonly roots: ParsedCertificate[] }): ServingIssuer {
  return {
    retryMs: 60_000,
    followsMaterial: true,
    issue: (sans, ttlSeconds, now) => {
      const s = authority.signer;
      const certificate = issueServingCertificate(s, sans, ttlSeconds, now);
      const trustedCaPem = [...new Set([s.cert, ...s.chain, ...authority.roots].map((c) => c.pem))].join('');
      return { certificate, trustedCaPem };
    },
  };
}

/**
 * Where no CA key exists here (RA mode): a fresh P-256 key and a CSR for the serving names,
 * signed by the upstream like a workload certificate, at most for the short-lived limit of PCA.
 */
export function upstreamServingIssuer(
  upstream: Pick<Upstream, 'signWorkload'>,
  hooks: { onIssued?(got: UpstreamChain): void; onError?(e: unknown): void } = {},
): ServingIssuer {
  return {
    retryMs: 30_000,
    followsMaterial: false,
    issuedBy: 'the upstream',
    issue: async (sans, ttlSeconds) => {
      const kp = generateKeyPair('ec-p256');
      const dnsNames = sans.filter((s) => isIP(s) === 0);
      const ipAddresses = sans.filter((s) => isIP(s) !== 0);
      // A subject as well as SANs: CAs' end-entity templates (PCA's among them) may want one.
      const csr = createCsr({
        key: kp.privateKey,
        subject: { commonName: dnsNames[0] ?? ipAddresses[0] },
        sans: { dnsNames, ipAddresses },
      });
      let got: UpstreamChain;
      try {
        got = await upstream.signWorkload!({ csrPem: csr.pem, ttlSeconds: Math.min(ttlSeconds, SHORT_LIVED_MAX_SECONDS) });
      } catch (e) {
        hooks.onError?.(e);
        throw e;
      }
      hooks.onIssued?.(got);
      const above = got.chain.filter((c) => !c.selfIssued);
      const certificate: ServingCertificate = {
        certChainPem: certsToPem([got.cert, ...above]),
        keyPem: privateKeyToPem(kp.privateKey),
        notBefore: got.cert.notBefore,
        notAfter: got.cert.notAfter,
        sans,
      };
      return { certificate, trustedCaPem: certsToPem(got.chain) };
    },
  };
}
