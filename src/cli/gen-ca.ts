import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { istioBundleFiles, secretManifest, writeIstioBundle, ISTIO_FILES, type CaBundle } from '../ca/bundle.js';
import { createCsr } from '../pki/csr.js';
import { MeshcaError, errorMessage, invalid } from '../pki/errors.js';
import { generateKeyPair } from '../pki/keys.js';
import { parseGetistioConfig, type GenCaPlan } from '../resources/getistio.js';
import { PRIVATE_MODE, writeFileAtomic } from '../util/fs.js';
import { generatingKey } from '../util/progress.js';
import { openCacertsSecret, type CacertsWriter } from './gen-ca-kube.js';
import { stderrProgress } from './progress.js';
import { renamedFlag } from './renamed.js';

interface GenCaOptions {
  configFile: string;
  out?: string;
  awspcaEndpointUrl?: string;
  awspcaRegion?: string;
  kubeconfig?: string;
  context?: string;
  force?: boolean;
}

const SECRET_NAME = 'cacerts';

function stamp(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

/** Refuses to overwrite a key already written by an earlier run, unless --force. */
function checkOutDir(dir: string, force: boolean | undefined): void {
  if (!existsSync(dir)) return;
  if (!statSync(dir).isDirectory()) throw invalid('bad_flag', `--out ${dir} exists and is not a directory`);
  const present = [...ISTIO_FILES, 'cacerts.yaml'].filter((f) => existsSync(join(dir, f)));
  if (present.length > 0 && !force) {
    throw new MeshcaError(
      'already_exists',
      'out_exists',
      `${dir} already holds ${present.join(', ')}; choose another --out or pass --force`,
    );
  }
}

/** getistio writes to a file path, or into a directory when the path is one (its default is ~/.getistio/secret/). */
function secretCopyPath(p: string, now: Date): string {
  if (p.endsWith('/') || (existsSync(p) && statSync(p).isDirectory())) return join(p, `cacerts-${stamp(now)}.yaml`);
  return resolve(p);
}

async function genCa(plan: GenCaPlan, o: GenCaOptions, out: (line: string) => void): Promise<void> {
  const now = new Date();
  const outDir = resolve(o.out ?? `cacerts-${stamp(now)}`);
  checkOutDir(outDir, o.force);
  const createSecret = !plan.disableSecretCreation && Boolean(o.kubeconfig || o.context);
  // The cluster is checked before PCA is asked: a certificate it issues is paid for.
  const writeSecret = createSecret ? await openSecretBeforePca(plan, o) : undefined;
  const progress = stderrProgress();
  const alg = `rsa-${plan.keyLength}` as const;
  const key = generatingKey(progress, alg, 'the intermediate', () => generateKeyPair(alg)).privateKey;
  const csr = createCsr({ key, subject: plan.subject, sans: plan.sans, isCA: true });
  // Loaded here, not at the top: every meshca command would otherwise pay for importing the AWS SDK.
  const { awsPcaUpstreamSchema, createAwsPcaUpstream } = await import('../upstream/awspca/index.js');
  const upstream = createAwsPcaUpstream(
    awsPcaUpstreamSchema.parse({
      type: 'awspca',
      arn: plan.signingCAArn,
      templateArn: plan.templateArn,
      ...(plan.signingAlgorithm ? { signingAlgorithm: plan.signingAlgorithm } : {}),
      ...(o.awspcaEndpointUrl ? { endpointUrl: o.awspcaEndpointUrl } : {}),
      ...(o.awspcaRegion ? { region: o.awspcaRegion } : {}),
    }),
    { warn: (m) => process.stderr.write(`meshca: warning: ${m}\n`) },
  );
  let bundle: CaBundle;
  try {
    await upstream.check();
    // Said only when AWS Private CA keeps us waiting: issuance usually answers within a second.
    const signed = await progress(
      `waiting for ${plan.signingCAArn} to issue the intermediate`,
      () => upstream.signIntermediate({ csrPem: csr.pem, ttlSeconds: plan.validityDays * 86_400 }),
      { announceAfterMs: 1000 },
    );
    const root = signed.chain[signed.chain.length - 1];
    bundle = { caCert: signed.cert, caKey: key, chain: [signed.cert, ...signed.chain], roots: [root] };
    out(`intermediate "${signed.cert.subject}" signed by ${plan.signingCAArn} (${upstream.lastIssue?.certificateArn ?? ''})`);
    out(`  not after: ${signed.cert.notAfter.toISOString()}`);
  } finally {
    upstream.close();
  }
  const written = writeIstioBundle(outDir, bundle, { name: SECRET_NAME, namespace: plan.namespace, type: 'Opaque' });
  for (const f of written) out(`wrote ${join(outDir, f)}`);
  let secretPath = join(outDir, 'cacerts.yaml');
  if (plan.secretFilePath) {
    secretPath = secretCopyPath(plan.secretFilePath, now);
    writeFileAtomic(
      secretPath,
      secretManifest(istioBundleFiles(bundle), { name: SECRET_NAME, namespace: plan.namespace, type: 'Opaque' }),
      PRIVATE_MODE,
    );
  }
  out(`Kubernetes Secret YAML created successfully in ${secretPath}`);
  if (!writeSecret) {
    out(`apply it with: kubectl apply -f ${secretPath}`);
    return;
  }
  const result = await writeSecret(istioBundleFiles(bundle));
  out(`Kubernetes Secret ${result} successfully with name: ${SECRET_NAME}, in namespace: ${plan.namespace}`);
}

async function openSecretBeforePca(plan: GenCaPlan, o: GenCaOptions): Promise<CacertsWriter> {
  try {
    return await openCacertsSecret({
      kubeconfig: o.kubeconfig,
      context: o.context,
      namespace: plan.namespace,
      name: SECRET_NAME,
      override: plan.overrideExisting,
    });
  } catch (e) {
    if (!(e instanceof MeshcaError)) throw e;
    throw new MeshcaError(e.code, e.reason, `${e.message}; nothing was requested from AWS Private CA and no file was written`, {
      cause: e,
    });
  }
}

/** `meshca gen-ca --config-file FILE`: getistio's gen-ca, with AWS Private CA as the signer. */
export function register(program: Command): void {
  const cmd = program
    .command('gen-ca')
    .description(
      'create an Istio intermediate CA signed by AWS Private CA from a getistio gen-ca YAML config; write the cacerts bundle and Secret',
    )
    .requiredOption('--config-file <file>', 'getistio gen-ca YAML (providerName: aws)')
    .option(
      '--out <dir>',
      'directory for ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem, cacerts.yaml (default ./cacerts-<timestamp>)',
    )
    .option('--force', 'overwrite the files in an existing --out directory')
    .option('--awspca-endpoint-url <url>', 'ACM PCA endpoint URL (default: AWS_ENDPOINT_URL or the regional endpoint)')
    .option('--awspca-region <region>', "AWS region of the CA (default: the ARN's)")
    .option('--kubeconfig <file>', 'create the cacerts Secret in this cluster (otherwise only the YAML is written)')
    .option('--context <name>', 'kubeconfig context to create the cacerts Secret in');
  renamedFlag(cmd, '--awspca-endpoint-url', '--endpoint-url');
  renamedFlag(cmd, '--awspca-region', '--region');
  cmd.action(async (o: GenCaOptions) => {
    let text: string;
    try {
      text = readFileSync(o.configFile, 'utf8');
    } catch (e) {
      throw new MeshcaError('not_found', 'no_config', `cannot read --config-file ${o.configFile}: ${errorMessage(e)}`, { cause: e });
    }
    const plan = parseGetistioConfig(text, o.configFile);
    await genCa(plan, o, (line) => process.stdout.write(`${line}\n`));
  });
}
