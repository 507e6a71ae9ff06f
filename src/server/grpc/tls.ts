import type * as grpc from '@grpc/grpc-js';

type CaListener = grpc.experimental.CaCertificateUpdateListener;
type IdListener = grpc.experimental.IdentityCertificateUpdateListener;

/**
 * Feeds the gRPC server its serving certificate and the CAs that client certificates must chain to,
 * and pushes renewals to live servers without a restart.
 *
 * Why not `ServerCredentials.createSsl(roots, pairs, false)`: in grpc-js 1.14 its third argument
 * becomes the TLS `requestCert` option, so `false` never asks for a client certificate and mTLS
 * renewal could not work. Certificate-provider credentials set requestCert whenever a CA provider is
 * given, and rejectUnauthorized from `requireClientCertificate` (false here, so token callers
 * without a certificate still connect); `call.getAuthContext()` then reports the peer certificate
 * only when it verified against these CAs.
 */
export class ServingCertificateProvider implements grpc.experimental.CertificateProvider {
  private ca: Buffer | null = null;
  private identity: { certificate: Buffer; privateKey: Buffer } | null = null;
  private readonly caListeners = new Set<CaListener>();
  private readonly idListeners = new Set<IdListener>();

  update(u: { certChainPem: string; keyPem: string; trustedCaPem: string }): void {
    this.identity = { certificate: Buffer.from(u.certChainPem), privateKey: Buffer.from(u.keyPem) };
    this.ca = Buffer.from(u.trustedCaPem);
    for (const l of this.idListeners) l(this.identity);
    for (const l of this.caListeners) l({ caCertificate: this.ca });
  }

  // grpc-js registers its watcher after subscribing to the provider, so an update delivered during
  // the subscribe call would be lost; deliver on the next microtask, as its own file provider does.
  addCaCertificateListener(l: CaListener): void {
    this.caListeners.add(l);
    queueMicrotask(() => this.ca && this.caListeners.has(l) && l({ caCertificate: this.ca }));
  }
  removeCaCertificateListener(l: CaListener): void {
    this.caListeners.delete(l);
  }
  addIdentityCertificateListener(l: IdListener): void {
    this.idListeners.add(l);
    queueMicrotask(() => this.identity && this.idListeners.has(l) && l(this.identity));
  }
  removeIdentityCertificateListener(l: IdListener): void {
    this.idListeners.delete(l);
  }

  /** grpc-js is passed in, loaded only by the grpc-js transport. */
  credentials(g: typeof grpc): grpc.ServerCredentials {
    // Despite the parameter names in grpc-js's typings, the first argument is the identity provider.
    return g.experimental.createCertificateProviderServerCredentials(this, this, false);
  }
}
