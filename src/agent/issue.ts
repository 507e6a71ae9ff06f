import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { certsToPem, parseCertificates, type ParsedCertificate } from '../pki/certificate.js';
import { createCsr } from '../pki/csr.js';
import { MeshcaError, isMeshcaError } from '../pki/errors.js';
import { generateKeyPair, keyMatches, parsePrivateKeyPem, privateKeyToPem, type KeyAlgorithm } from '../pki/keys.js';
import { PRIVATE_MODE } from '../util/fs.js';
import type { CallAuth, CaClient } from './client.js';
import { identityFromCertificate, identityFromSpiffeId, identityFromToken, type AgentIdentity } from './identity.js';
import { publishFiles } from './publish.js';
import { acceptResponse } from './response.js';

export const CERT_CHAIN_FILE = 'cert-chain.pem';
export const KEY_FILE = 'key.pem';
export const ROOT_CERT_FILE = 'root-cert.pem';

export interface AgentConfig {
  outDir: string;
  keyAlgorithm: KeyAlgorithm;
  trustDomain: string;
  /** Fraction of the lifetime after which to renew. */
  renewAt: number;
  /** Requested validity (validity_duration); the server's default when absent. */
  ttlSeconds?: number;
  /** A projected service-account token, re-read on every request because the kubelet rotates it. */
  tokenFile?: string;
  /** A directory with cert-chain.pem and key.pem from a previous run, to renew with mTLS. */
  certDir?: string;
  clusterId?: string;
  workloadName?: string;
  /**
   * The SPIFFE ID to ask for instead of the one the credentials imply, as istio-agent takes its
   * identity from the pod's configuration; the CA decides whether the credentials allow it.
   */
  identity?: string;
}

/** The certificate the agent currently holds and serves from its output directory. */
export interface HeldCertificate {
  identity: AgentIdentity;
  leaf: ParsedCertificate;
  certChainPem: string;
  keyPem: string;
  /** When the agent received it (ms since epoch); the start of its renewal clock. */
  receivedAt: number;
}

export interface IssueDeps {
  client: CaClient;
  now: () => number;
  readFile?: (path: string) => string;
  signal?: AbortSignal;
}

/** Loads cert-chain.pem + key.pem from a previous run; the identity is the certificate's SPIFFE ID. */
export function loadCertDir(dir: string, readFile: (p: string) => string = (p) => readFileSync(p, 'utf8')): HeldCertificate {
  const chainPath = join(dir, CERT_CHAIN_FILE);
  const keyPath = join(dir, KEY_FILE);
  let certChainPem: string;
  let keyPem: string;
  try {
    certChainPem = readFile(chainPath);
    keyPem = readFile(keyPath);
  } catch (e) {
    throw new MeshcaError(
      'not_found',
      'no_cert_dir',
      `--cert-dir ${dir} must hold ${CERT_CHAIN_FILE} and ${KEY_FILE}: ${(e as Error).message}`,
    );
  }
  const leaf = parseCertificates(certChainPem, chainPath)[0];
  if (!keyMatches(parsePrivateKeyPem(keyPem, keyPath), leaf.publicKey)) {
    throw new MeshcaError('invalid_argument', 'key_mismatch', `${keyPath} is not the key of the certificate in ${chainPath}`);
  }
  return { identity: identityFromCertificate(leaf, chainPath), leaf, certChainPem, keyPem, receivedAt: leaf.notBefore.getTime() };
}

type Attempt = { auth: 'mtls' | 'token'; credentials: () => { call: CallAuth; identity: AgentIdentity } };

/**
 * The ways to authenticate, best first: the current certificate while it is valid (what a
 * renewal should use), then the token. A token fallback recovers from a certificate the CA no
 * longer accepts, e.g. after the mesh root changed.
 */
function attempts(cfg: AgentConfig, deps: IssueDeps, current: HeldCertificate | undefined): Attempt[] {
  const list: Attempt[] = [];
  const now = deps.now();
  if (current && now < current.leaf.notAfter.getTime()) {
    list.push({
      auth: 'mtls',
      credentials: () => ({
        call: { kind: 'mtls', certChainPem: current.certChainPem, keyPem: current.keyPem },
        identity: current.identity,
      }),
    });
  }
  const tokenFile = cfg.tokenFile;
  if (tokenFile) {
    const read = deps.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
    list.push({
      auth: 'token',
      credentials: () => {
        let token: string;
        try {
          token = read(tokenFile).trim();
        } catch (e) {
          throw new MeshcaError('unauthenticated', 'no_token', `cannot read token file ${tokenFile}: ${(e as Error).message}`);
        }
        return { call: { kind: 'token', token }, identity: identityFromToken(token, cfg.trustDomain) };
      },
    });
  }
  if (list.length === 0) {
    const why = current ? `the certificate expired at ${current.leaf.notAfter.toISOString()}` : 'there is no certificate';
    throw new MeshcaError('unauthenticated', 'no_credentials', `cannot authenticate to the CA: ${why} and no --token-file was given`);
  }
  return list;
}

export interface IssueResult {
  held: HeldCertificate;
  auth: 'mtls' | 'token';
}

/** One issuance: fresh key, CSR for the identity, CreateCertificate, checks, atomic publication. */
export async function issueOnce(cfg: AgentConfig, deps: IssueDeps, current?: HeldCertificate): Promise<IssueResult> {
  const list = attempts(cfg, deps, current);
  for (let i = 0; ; i++) {
    try {
      const held = await attempt(cfg, deps, list[i]);
      return { held, auth: list[i].auth };
    } catch (e) {
      const retryable = isMeshcaError(e) && (e.code === 'unauthenticated' || e.code === 'permission_denied');
      if (i === list.length - 1 || !retryable) throw e;
    }
  }
}

async function attempt(cfg: AgentConfig, deps: IssueDeps, a: Attempt): Promise<HeldCertificate> {
  const creds = a.credentials();
  const { call } = creds;
  const identity = cfg.identity ? identityFromSpiffeId(cfg.identity) : creds.identity;
  // A new key on every issuance, as istio-agent does: a renewal also rotates the key.
  const keys = generateKeyPair(cfg.keyAlgorithm);
  const csr = createCsr({ key: keys.privateKey, sans: { uris: [identity.spiffeId] } });
  const metadata: Record<string, string> = {};
  if (cfg.clusterId) metadata.ClusterID = cfg.clusterId;
  if (cfg.workloadName) metadata.WorkloadName = cfg.workloadName;
  const res = await deps.client.createCertificate({ csr: csr.pem, validityDuration: cfg.ttlSeconds, metadata }, call, deps.signal);
  const receivedAt = deps.now();
  const ok = acceptResponse(res, { publicKey: keys.publicKey, spiffeId: identity.spiffeId, now: new Date(receivedAt) });
  const certChainPem = certsToPem(ok.chain);
  const keyPem = privateKeyToPem(keys.privateKey);
  publishFiles(
    cfg.outDir,
    [
      { name: CERT_CHAIN_FILE, data: certChainPem },
      { name: KEY_FILE, data: keyPem, mode: PRIVATE_MODE },
      { name: ROOT_CERT_FILE, data: certsToPem(ok.roots) },
    ],
    new Date(receivedAt),
  );
  return { identity, leaf: ok.leaf, certChainPem, keyPem, receivedAt };
}
