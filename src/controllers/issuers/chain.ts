import type { ParsedCertificate } from '../../pki/certificate.js';
import type { SignResult } from './types.js';

/**
 * cert-manager's PEM bundle rule: a self-signed top goes to ca.crt and leaves the chain;
 * otherwise ca.crt is the known root when there is one, else the top-most certificate.
 */
export function splitChain(chain: ParsedCertificate[], knownRoot?: ParsedCertificate): SignResult {
  const top = chain[chain.length - 1];
  if (chain.length > 1 && top.selfIssued) return { chain: chain.slice(0, -1), ca: top };
  return { chain, ca: knownRoot ?? top };
}
