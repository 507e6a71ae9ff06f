import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { istioBundleFiles, secretManifest, writeIstioBundle, ISTIO_FILES, type CaBundle } from '../ca/bundle.js';
import { createCsr } from '../pki/csr.js';
import { MeshcaError, errorMessage, invalid } from '../pki/errors.js';
import { generateKeyPair } from '../pki/keys.js';
import { parseGetistioConfig, type GenCaPlan } from '../resources/getistio.js';
import { awsPcaUpstreamSchema, createAwsPcaUpstream } from '../upstream/awspca/index.js';
import { PRIVATE_MODE, writeFileAtomic } from '../util/fs.js';

interface GenCaOptions {
  configFile: string;
  out?: string;
  endpointUrl?: string;
  region?: string;
  kubeconfig?: string;
  context?: string;
  force?: boolean;
}

const SECRET_NAME = 'cacerts';

function stamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/**
 * Creates or replaces the cacerts Secret through the Kubernetes API, like getistio. Only called when
 * --kubeconfig or --context is given. Untested against a real API server in this repository's CI.
 */
export async function applyCacertsSecret(o: {
  kubeconfig?: string;
  context?: string;
  namespace: string;
  files: { name: string; data: string | Uint8Array }[];
  override: boolean;
}): Promise<'created' | 'replaced'> {
  const k8s = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  if (o.kubeconfig) kc.loadFromFile(o.kubeconfig);
  else kc.loadFromDefault();
  if (o.context) kc.setCurrentContext(o.context);
  const api = kc.makeApiClient(k8s.CoreV1Api);
  const data: Record<string, string> = {};
  for (const f of o.files) data[f.name] = Buffer.from(f.data).toString('base64');
  const body = { apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata: { name: SECRET_NAME, namespace: o.namespace }, data };
  let exists = true;
  try {
    await api.readNamespacedSecret({ name: SECRET_NAME, namespace: o.namespace });
  } catch (e) {
    if ((e as { code?: number }).code !== 404) {
      throw new MeshcaError('unavailable', 'kube_api', `cannot read secret ${o.namespace}/${SECRET_NAME}: ${errorMessage(e)}`, { cause: e });
    }
    exists = false;
  }
  if (exists && !o.override) {
    throw new MeshcaError(
      'already_exists',
      'secret_exists',
      `secret ${o.namespace}/${SECRET_NAME} already exists; set certificateParameters.secretOptions.overrideExistingCACertsSecret: true to replace it`,
    );
  }
  try {
    if (exists) await api.replaceNamespacedSecret({ name: SECRET_NAME, namespace: o.namespace, body });
    else await api.createNamespacedSecret({ namespace: o.namespace, body });
  } catch (e) {
    throw new MeshcaError('unavailable', 'kube_api', `cannot ${exists ? 'replace' : 'create'} secret ${o.namespace}/${SECRET_NAME}: ${errorMessage(e)}`, { cause: e });
  }
  return exists ? 'replaced' : 'created';
}

/** Refuses to overwrite a key already written by an earlier run, unless --force. */
function checkOutDir(dir: string, force: boolean | undefined): void {
  if (!existsSync(dir)) return;
  if (!statSync(dir).isDirectory()) throw invalid('bad_flag', `--out ${dir} exists and is not a directory`);
  const present = [...ISTIO_FILES, 'cacerts.yaml'].filter((f) => existsSync(join(dir, f)));
  if (present.length > 0 && !force) {
    throw new MeshcaError('already_exists', 'out_exists', `${dir} already holds ${present.join(', ')}; choose another --out or pass --force`);
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
  const key = generateKeyPair(`rsa-${plan.keyLength}`).privateKey;
  const csr = createCsr({ key, subject: plan.subject, sans: plan.sans, isCA: true });
  const upstream = createAwsPcaUpstream(
    awsPcaUpstreamSchema.parse({
      type: 'awspca',
      arn: plan.signingCAArn,
      templateArn: plan.templateArn,
      ...(plan.signingAlgorithm ? { signingAlgorithm: plan.signingAlgorithm } : {}),
      ...(o.endpointUrl ? { endpointUrl: o.endpointUrl } : {}),
      ...(o.region ? { region: o.region } : {}),
    }),
    { warn: (m) => process.stderr.write(`meshca: warning: ${m}\n`) },
  );
  let bundle: CaBundle;
  try {
    await upstream.check();
    const signed = await upstream.signIntermediate({ csrPem: csr.pem, ttlSeconds: plan.validityDays * 86_400 });
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
    writeFileAtomic(secretPath, secretManifest(istioBundleFiles(bundle), { name: SECRET_NAME, namespace: plan.namespace, type: 'Opaque' }), PRIVATE_MODE);
  }
  out(`Kubernetes Secret YAML created successfully in ${secretPath}`);
  if (plan.disableSecretCreation || (!o.kubeconfig && !o.context)) {
    out(`apply it with: kubectl apply -f ${secretPath}`);
    return;
  }
  const result = await applyCacertsSecret({
    kubeconfig: o.kubeconfig,
    context: o.context,
    namespace: plan.namespace,
    files: istioBundleFiles(bundle),
    override: plan.overrideExisting,
  });
  out(`Kubernetes Secret ${result} successfully with name: ${SECRET_NAME}, in namespace: ${plan.namespace}`);
}

/** `meshca gen-ca --config-file FILE`: getistio's gen-ca, with AWS Private CA as the signer. */
export function register(program: Command): void {
  program
    .command('gen-ca')
    .description('create an Istio intermediate CA signed by AWS Private CA from a getistio gen-ca YAML config; write the cacerts bundle and Secret')
    .requiredOption('--config-file <file>', 'getistio gen-ca YAML (providerName: aws)')
    .option('--out <dir>', 'directory for ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem, cacerts.yaml (default ./cacerts-<timestamp>)')
    .option('--force', 'overwrite the files in an existing --out directory')
    .option('--endpoint-url <url>', 'ACM PCA endpoint (default: AWS_ENDPOINT_URL or the regional AWS endpoint)')
    .option('--region <region>', 'AWS region (default: the CA ARN\'s region)')
    .option('--kubeconfig <file>', 'create the cacerts Secret in this cluster (otherwise only the YAML is written)')
    .option('--context <name>', 'kubeconfig context to create the cacerts Secret in')
    .action(async (o: GenCaOptions) => {
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
