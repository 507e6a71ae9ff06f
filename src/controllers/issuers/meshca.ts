import type { CaState } from '../../ca/state.js';
import { certLabel } from '../../pki/certificate.js';
import { parseCsr } from '../../pki/csr.js';
import { MeshcaError } from '../../pki/errors.js';
import { splitChain } from './chain.js';
import { signFromTemplate } from './template.js';
import type { IssuerBackend, SignRequest, SignResult } from './types.js';

/**
 * meshca's own hierarchy as a cert-manager issuer: the state directory's root, or (with
 * `cluster`) that cluster's intermediate, so cert-manager-style Certificates can hang off the
 * same root that `meshca init` made and `meshca serve` trusts.
 */
export function meshcaBackend(state: CaState, cluster: string | undefined): IssuerBackend {
  const signer = () => {
    if (cluster) {
      const b = state.loadCluster(cluster);
      return { cert: b.caCert, key: b.caKey, above: b.chain.filter((c) => !c.der.equals(b.caCert.der)), root: b.roots[0] };
    }
    const r = state.loadRoot();
    if (!r.key) {
      throw new MeshcaError(
        'failed_precondition',
        'no_root_key',
        `the root ${certLabel(r.cert)} in ${state.dir} was imported without its key; it cannot sign`,
      );
    }
    return { cert: r.cert, key: r.key, above: [], root: r.cert };
  };
  return {
    notReadyReason: 'ErrGetKeyPair',
    async verify() {
      const s = signer();
      return {
        reason: 'KeyPairVerified',
        message: `Signing CA verified (${cluster ? `cluster ${cluster} intermediate` : 'meshca root'} ${certLabel(s.cert)})`,
      };
    },
    async sign(req: SignRequest): Promise<SignResult> {
      const s = signer();
      const cert = signFromTemplate({
        csr: parseCsr(req.csrPem),
        issuerCert: s.cert,
        issuerKey: s.key,
        durationMs: req.durationMs,
        isCA: req.isCA,
        usages: req.usages,
        now: req.now,
      });
      return splitChain([cert, s.cert, ...s.above.filter((c) => !c.der.equals(s.cert.der))], s.root);
    },
  };
}
