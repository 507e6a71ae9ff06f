import type { KeyObject } from 'node:crypto';
import type { CaState } from '../../ca/state.js';
import type { ParsedCertificate } from '../../pki/certificate.js';
import { errorMessage } from '../../pki/errors.js';
import { caArn, caIdFromDer, type ArnScope } from './arn.js';

/** One of meshca's CAs as the PCA-compatible API presents it. */
export interface PcaCa {
  arn: string;
  id: string;
  /** "root" or "cluster/<name>". */
  name: string;
  type: 'ROOT' | 'SUBORDINATE';
  cert: ParsedCertificate;
  key: KeyObject;
  /** Issuers above `cert`, nearest first, root last (empty for the root). */
  chain: ParsedCertificate[];
}

/** Every CA in the state directory that has its key: the root, then each cluster intermediate. */
export function loadCas(state: CaState, scope: ArnScope, warn: (m: string) => void = () => undefined): PcaCa[] {
  const out: PcaCa[] = [];
  const add = (name: string, cert: ParsedCertificate, key: KeyObject, chain: ParsedCertificate[]): void => {
    const id = caIdFromDer(cert.der);
    out.push({ arn: caArn(scope, id), id, name, type: cert.selfIssued ? 'ROOT' : 'SUBORDINATE', cert, key, chain });
  };
  if (state.hasRoot()) {
    try {
      const root = state.loadRoot();
      if (root.key) add('root', root.cert, root.key, []);
      else warn(`the root in ${state.dir} has no key; it is not offered as a CA`);
    } catch (e) {
      warn(`the root in ${state.dir} is not offered: ${errorMessage(e)}`);
    }
  }
  for (const cluster of state.listClusters()) {
    try {
      const b = state.loadCluster(cluster);
      add(
        `cluster/${cluster}`,
        b.caCert,
        b.caKey,
        b.chain.filter((c) => !c.der.equals(b.caCert.der)),
      );
    } catch (e) {
      warn(`cluster ${cluster} is not offered: ${errorMessage(e)}`);
    }
  }
  return out;
}
