import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { signerFromBundle } from '../ca/state.js';
import { readInputFile } from '../ca/sources.js';
import { certsToPem } from '../pki/certificate.js';
import { createCsr } from '../pki/csr.js';
import { MeshcaError, errorMessage, invalid } from '../pki/errors.js';
import { issueWorkloadCertificate, type IssuedCertificate } from '../pki/issue.js';
import { DEFAULT_KEY_ALGORITHM, generateKeyPair, parseKeyAlgorithm, privateKeyToPem, type KeyAlgorithm } from '../pki/keys.js';
import { parseSpiffeId } from '../pki/spiffe.js';
import { PRIVATE_MODE, writeFilesAtomic, type FileToWrite } from '../util/fs.js';
import { generatingKey } from '../util/progress.js';
import { openState, parseDuration, withDir } from './options.js';
import { stderrProgress } from './progress.js';
import { renamedFlag } from './renamed.js';

interface IssueOptions {
  dir?: string;
  cluster: string;
  spiffeId: string;
  csr?: string;
  ttl: number;
  out: string;
  keyAlgorithm?: KeyAlgorithm;
}

/** istiod refuses longer workload certificates (MAX_WORKLOAD_CERT_TTL); so do we. */
const MAX_TTL_SECONDS = 90 * 86_400;
const WORKLOAD_KEYS: KeyAlgorithm[] = ['ec-p256', 'rsa-2048'];

function parseTtl(v: string): number {
  const s = parseDuration(v, '--ttl');
  if (s > MAX_TTL_SECONDS)
    throw invalid('bad_ttl', `--ttl ${v} exceeds the 90-day maximum for workload certificates (Istio's MAX_WORKLOAD_CERT_TTL)`);
  return Math.round(s);
}

function parseWorkloadKey(v: string): KeyAlgorithm {
  const alg = parseKeyAlgorithm(v);
  if (!WORKLOAD_KEYS.includes(alg))
    throw invalid('bad_key_algorithm', `--key-algorithm ${v}: workload keys are ${WORKLOAD_KEYS.join(' or ')}`);
  return alg;
}

/** `meshca issue`: a workload certificate from a cluster's intermediate, as istiod would sign it. */
export function register(program: Command): void {
  const cmd = program
    .command('issue')
    .description("sign a workload certificate with a cluster's intermediate (from a CSR, or with a generated key)")
    .requiredOption('--cluster <name>', 'cluster whose intermediate signs')
    .requiredOption('--spiffe-id <uri>', 'workload identity, e.g. spiffe://cluster.local/ns/default/sa/web')
    .option('--csr <file>', 'PKCS#10 request (PEM); its URI SAN, if any, must equal --spiffe-id')
    .option('--ttl <duration>', 'lifetime, e.g. 24h, 90m, 7d (at most 90d)', parseTtl, 86_400)
    .requiredOption('--out <dir>', 'where to write cert-chain.pem, root-cert.pem and (without --csr) key.pem')
    .addOption(
      new Option(
        '--key-algorithm <alg>',
        'key to generate when no --csr is given: ec-p256 or rsa-2048 (default rsa-2048, as istio-agent)',
      ).argParser(parseWorkloadKey),
    );
  renamedFlag(cmd, '--key-algorithm', '--key');
  withDir(cmd).action((o: IssueOptions) => {
    try {
      parseSpiffeId(o.spiffeId);
    } catch (e) {
      throw invalid('bad_spiffe_id', `--spiffe-id: ${errorMessage(e)}`);
    }
    if (o.csr && o.keyAlgorithm)
      throw invalid('bad_flag', '--key-algorithm applies only when no --csr is given (the CSR carries its own key)');
    const out = resolve(o.out);
    if (existsSync(out) && !statSync(out).isDirectory()) throw invalid('bad_out', `--out ${o.out} exists and is not a directory`);
    const bundle = openState(o).loadCluster(o.cluster);
    const files: FileToWrite[] = [];
    let csr: string | Buffer;
    if (o.csr) {
      const raw = readInputFile(o.csr, 'CSR file');
      // DER starts with a SEQUENCE tag; anything else is read as PEM text, so that a wrong file
      // gets "no PEM block" rather than a DER parse error.
      csr = raw[0] === 0x30 ? raw : raw.toString('utf8');
    } else {
      const alg = o.keyAlgorithm ?? DEFAULT_KEY_ALGORITHM;
      const kp = generatingKey(stderrProgress(), alg, `workload ${o.spiffeId}`, () => generateKeyPair(alg));
      csr = createCsr({ key: kp.privateKey, sans: { uris: [o.spiffeId] } }).pem;
      files.push({ name: 'key.pem', data: privateKeyToPem(kp.privateKey), mode: PRIVATE_MODE });
    }
    const now = new Date();
    let issued: IssuedCertificate;
    try {
      issued = issueWorkloadCertificate(signerFromBundle(bundle), { csr, identities: [o.spiffeId], ttlSeconds: o.ttl, now });
    } catch (e) {
      // Invalid-argument errors here come from the request (parse, signature, key policy); name the file.
      if (o.csr && e instanceof MeshcaError && e.code === 'invalid_argument') {
        throw new MeshcaError(e.code, e.reason, `${o.csr}: ${e.message}`, { cause: e });
      }
      throw e;
    }
    files.push({ name: 'cert-chain.pem', data: issued.chain.join('') }, { name: 'root-cert.pem', data: certsToPem(bundle.roots) });
    writeFilesAtomic(out, files);
    if (issued.notAfter.getTime() < now.getTime() + (o.ttl - 1) * 1000) {
      process.stderr.write(`meshca: warning: NotAfter was clamped to the intermediate's (${issued.notAfter.toISOString()})\n`);
    }
    process.stdout.write(
      [
        `issued ${o.spiffeId} (${issued.keyInfo.label}) signed by "${bundle.caCert.subject}"`,
        `  serial:    ${issued.serialHex}`,
        `  not after: ${issued.notAfter.toISOString()}`,
        `  wrote ${files.map((f) => f.name).join(', ')} to ${out}`,
        '',
      ].join('\n'),
    );
  });
}
