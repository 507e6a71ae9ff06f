import { readFileSync } from 'node:fs';
import { certLabel, parseCertificate, parseCertificates, type ParsedCertificate } from '../../pki/certificate.js';
import { MeshcaError, invalid } from '../../pki/errors.js';
import { keyMatches, parsePrivateKeyPem } from '../../pki/keys.js';
import { verifyChain } from '../../pki/chain.js';
import type { Upstream, UpstreamContext } from '../contract.js';
import { KeyUpstream, type KeyMaterial } from '../key-upstream.js';
import type { FilesUpstreamConfig } from './config.js';

function read(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new MeshcaError('not_found', 'upstream_file', `${what} ${path} cannot be read: ${(e as Error).message}`, { cause: e });
  }
}

/** Loads and cross-checks the files: key matches certificate, certificate is a CA, chain reaches a self-signed root. */
export function loadFilesMaterial(config: FilesUpstreamConfig, now: Date, env: NodeJS.ProcessEnv = process.env): KeyMaterial {
  const cert = parseCertificate(read(config.certFile, 'upstream.certFile'), config.certFile);
  const passphrase = config.keyPassphraseEnv ? env[config.keyPassphraseEnv] : undefined;
  const key = parsePrivateKeyPem(read(config.keyFile, 'upstream.keyFile'), config.keyFile, passphrase);
  if (!keyMatches(key, cert.publicKey))
    throw invalid('key_mismatch', `upstream.keyFile ${config.keyFile} does not match ${certLabel(cert)} in ${config.certFile}`);
  if (!cert.isCA) throw invalid('not_ca', `upstream.certFile ${certLabel(cert)} is not a CA certificate`);
  const chain: ParsedCertificate[] = config.chainFile
    ? parseCertificates(read(config.chainFile, 'upstream.chainFile'), config.chainFile).filter((c) => !c.der.equals(cert.der))
    : [];
  const top = chain.length > 0 ? chain[chain.length - 1] : cert;
  if (!top.selfIssued) {
    throw invalid('incomplete_chain', `upstream: ${certLabel(top)} is not a root; give the issuers up to the root in upstream.chainFile`);
  }
  const result = verifyChain([cert, ...chain], { now, roots: [top] });
  if (!result.ok) throw invalid('bad_chain', `upstream chain does not verify: ${result.problems.join('; ')}`);
  return { cert, key, chain };
}

export function createFilesUpstream(config: FilesUpstreamConfig, ctx: UpstreamContext = {}): Upstream {
  const now = ctx.now ?? (() => new Date());
  return new KeyUpstream('files', config.certFile, () => loadFilesMaterial(config, now()), now);
}
