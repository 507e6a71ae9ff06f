#!/usr/bin/env node
// Starts the Kubernetes API double of the tests (test/k8s-double/) so that `kubectl` and
// `meshca k8s-signer`/`meshca serve --upstream k8s-csr` can be tried without a cluster.
// Not a Kubernetes API server: every caller is allowed, nothing survives a restart.
import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const USAGE = `Usage: node scripts/kube-api-double.mjs --kubeconfig FILE [--port N] [--namespace NS]

Serves the Kubernetes API double of meshca's tests on 127.0.0.1 (plain HTTP): CertificateSigningRequests
(with /approval and /status), Secrets, ConfigMaps, Leases, TokenReview, and the discovery documents
kubectl reads. Writes a kubeconfig for it, prints one line with its URL, and runs until Ctrl-C.
Every request is allowed; the objects live in memory only.

  --kubeconfig FILE  kubeconfig to write (server URL, a token, the default namespace; replaced if it exists)
  --port N           port on 127.0.0.1 (default: 0, any free port)
  --namespace NS     default namespace of the kubeconfig's context (default: meshca-system)`;

const fail = (message) => {
  process.stderr.write(`kube-api-double: ${message}\n`);
  process.exit(2);
};

let values;
try {
  ({ values } = parseArgs({
    options: {
      kubeconfig: { type: 'string' },
      port: { type: 'string', default: '0' },
      namespace: { type: 'string', default: 'meshca-system' },
      help: { type: 'boolean', short: 'h' },
    },
  }));
} catch (e) {
  fail(`${e.message}\n${USAGE}`);
}
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (!values.kubeconfig) fail(`--kubeconfig FILE is required\n${USAGE}`);
const port = Number(values.port);
if (!/^\d+$/.test(values.port) || port > 65535) fail(`--port must be a port number (0-65535), got "${values.port}"`);

const built = fileURLToPath(new URL('../dist/test/k8s-double/index.js', import.meta.url));
if (!existsSync(built)) fail(`${built} is missing: run \`npm run build\` in the clone first`);
const { K8sDouble } = await import(pathToFileURL(built).href);

let double;
try {
  double = await K8sDouble.start(port);
} catch (e) {
  fail(`cannot listen on 127.0.0.1:${port}: ${e.message}`);
}
// kubectl sends no bearer token over plain HTTP, so the CSRs it creates record system:anonymous.
const file = resolve(values.kubeconfig);
double.writeKubeconfig(file, 'double-token', values.namespace);
process.stdout.write(`Kubernetes API double listening on ${double.url} (kubeconfig: ${file}); Ctrl-C stops it\n`);

const stop = () => void double.close().then(() => process.exit(0));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
