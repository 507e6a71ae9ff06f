import { parseCsr } from '../../pki/csr.js';
import { invalid } from '../../pki/errors.js';
import { signFromTemplate } from './template.js';
import type { IssuerBackend, SignRequest, SignResult } from './types.js';

/** cert-manager's selfSigned issuer: each certificate is signed with its own key; ca.crt is the certificate itself. */
export function selfSignedBackend(): IssuerBackend {
  return {
    notReadyReason: 'Error',
    async verify() {
      return { reason: 'IsReady', message: '' };
    },
    async sign(req: SignRequest): Promise<SignResult> {
      if (!req.privateKey) {
        throw invalid(
          'no_private_key',
          'a selfSigned issuer needs the private key of the request (annotation cert-manager.io/private-key-secret-name)',
        );
      }
      const csr = parseCsr(req.csrPem);
      const cert = signFromTemplate({
        csr,
        issuerKey: req.privateKey,
        durationMs: req.durationMs,
        isCA: req.isCA,
        usages: req.usages,
        now: req.now,
      });
      return { chain: [cert], ca: cert };
    },
  };
}
