import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { loadConfig } from '../../src/config/index.js';
import { loadManifests } from '../../src/resources/load.js';
import { REPO_ROOT } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * deploy/kubernetes must build offline and every object must validate against the Kubernetes
 * schemas. The base is resolved here as kustomize would (resources, labels, images); when kubectl
 * is installed, `kubectl kustomize` must produce the same objects.
 */
const BASE = join(REPO_ROOT, 'deploy', 'kubernetes');
type Obj = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [k: string]: unknown;
};

function readDocs(file: string): Obj[] {
  return parseAllDocuments(readFileSync(file, 'utf8'))
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null);
}

/** The kustomization resolved by hand: its resources, its `labels` and `images` transformers. */
function resolveBase(): Obj[] {
  const k = parseYaml(readFileSync(join(BASE, 'kustomization.yaml'), 'utf8')) as {
    resources: string[];
    labels?: { pairs: Record<string, string> }[];
    images?: { name: string; newName?: string; newTag?: string }[];
  };
  const objs = k.resources.flatMap((r) => readDocs(join(BASE, r)));
  for (const o of objs) {
    for (const l of k.labels ?? []) o.metadata.labels = { ...o.metadata.labels, ...l.pairs };
    const pod = (o.spec as { template?: { spec?: { containers?: { image: string }[] } } } | undefined)?.template?.spec;
    for (const c of pod?.containers ?? []) {
      const img = k.images?.find((i) => i.name === c.image);
      if (img) c.image = `${img.newName ?? img.name}:${img.newTag ?? 'latest'}`;
    }
  }
  return objs;
}

/** kubernetes-models' class for an object: `v1/ConfigMap`, `apps/v1/Deployment`, `rbac.authorization.k8s.io/v1/Role`. */
async function validate(o: Obj): Promise<void> {
  const mod = (await import(`kubernetes-models/${o.apiVersion}/${o.kind}`)) as Record<string, new (d: unknown) => { validate(): void }>;
  const Model = mod[o.kind];
  assert.ok(Model, `kubernetes-models has no ${o.apiVersion} ${o.kind}`);
  new Model(o).validate();
}

const key = (o: Obj) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
const objects = resolveBase();
const find = (kind: string, name: string, namespace?: string) => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name && x.metadata.namespace === namespace);
  assert.ok(o, `${kind} ${namespace ?? ''}/${name} is in the base`);
  return o;
};

describe('deploy/kubernetes', () => {
  it('every object validates against the Kubernetes schemas (kubernetes-models)', async () => {
    assert.deepEqual(objects.map((o) => o.kind).sort(), [
      'ClusterRole',
      'ClusterRoleBinding',
      'ConfigMap',
      'Deployment',
      'Namespace',
      'Role',
      'Role',
      'RoleBinding',
      'RoleBinding',
      'Service',
      'ServiceAccount',
    ]);
    for (const o of objects) await validate(o);
    // A broken object is caught: the check is not vacuous.
    const broken = structuredClone(find('Deployment', 'meshca', 'meshca-system'));
    (broken.spec as { replicas: unknown }).replicas = 'two';
    await assert.rejects(validate(broken), /replicas/);
  });

  it('builds offline with kubectl kustomize into the same objects', async (t) => {
    const probe = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
    if (probe.error || probe.status !== 0) return t.skip('kubectl is not installed; the hand resolution above stands in for it');
    const r = spawnSync('kubectl', ['kustomize', BASE], { encoding: 'utf8', env: { ...process.env, KUBECONFIG: '/dev/null' } });
    assert.equal(r.status, 0, r.stderr);
    const built = parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj);
    assert.deepEqual(built.map(key).sort(), objects.map(key).sort());
    for (const o of built) await validate(o);
    const dep = built.find((o) => o.kind === 'Deployment')!;
    assert.deepEqual(
      dep,
      objects.find((o) => o.kind === 'Deployment'),
      'labels and image transformers resolved the same way',
    );
  });

  it('least-privilege RBAC: signers by name, no cluster-wide secrets, namespaced Roles by resource name', () => {
    const cr = find('ClusterRole', 'meshca') as Obj & {
      rules: { apiGroups: string[]; resources: string[]; resourceNames?: string[]; verbs: string[] }[];
    };
    const config = parseYaml((find('ConfigMap', 'meshca', 'meshca-system').data as Record<string, string>)['meshca.yaml']) as {
      signerNames: string[];
    };
    const signers = cr.rules.find((r) => r.resources.includes('signers'))!;
    assert.deepEqual(signers.resourceNames, config.signerNames, 'sign/approve only for the configured signer names');
    assert.deepEqual(signers.verbs.sort(), ['approve', 'sign']);
    assert.ok(
      cr.rules.some(
        (r) => r.resources.includes('certificatesigningrequests') && ['get', 'list', 'watch'].every((v) => r.verbs.includes(v)),
      ),
    );
    assert.ok(cr.rules.some((r) => r.resources.includes('certificatesigningrequests/status') && r.verbs.includes('update')));
    assert.ok(cr.rules.some((r) => r.resources.includes('certificatesigningrequests/approval') && r.verbs.includes('update')));
    assert.ok(
      cr.rules.some(
        (r) => r.apiGroups.includes('authentication.k8s.io') && r.resources.includes('tokenreviews') && r.verbs.includes('create'),
      ),
    );
    assert.ok(
      !cr.rules.some((r) => r.resources.some((x) => ['secrets', 'configmaps', 'leases', '*'].includes(x))),
      'no cluster-wide secrets, configmaps or leases',
    );
    assert.ok(!cr.rules.some((r) => r.verbs.includes('*') || r.apiGroups.includes('*')));
    for (const ns of ['meshca-system', 'istio-system']) {
      const role = find('Role', 'meshca', ns) as Obj & { rules: { resources: string[]; resourceNames?: string[]; verbs: string[] }[] };
      for (const r of role.rules) {
        if (!r.verbs.every((v) => v === 'create'))
          assert.ok(r.resourceNames?.length, `${ns}: ${r.verbs.join(',')} on ${r.resources.join(',')} is limited by name`);
      }
      const binding = find('RoleBinding', 'meshca', ns) as Obj & { subjects: { name: string; namespace: string }[] };
      assert.deepEqual(
        binding.subjects.map((s) => `${s.namespace}/${s.name}`),
        ['meshca-system/meshca'],
      );
    }
    const own = find('Role', 'meshca', 'meshca-system') as Obj & { rules: { resources: string[]; resourceNames?: string[] }[] };
    assert.ok(own.rules.some((r) => r.resources.includes('leases') && r.resourceNames?.includes('meshca-leader')));
    assert.ok(own.rules.some((r) => r.resources.includes('secrets') && r.resourceNames?.includes('meshca-state')));
    const istio = find('Role', 'meshca', 'istio-system') as Obj & { rules: { resources: string[]; resourceNames?: string[] }[] };
    assert.ok(istio.rules.some((r) => r.resources.includes('secrets') && r.resourceNames?.includes('cacerts')));
  });

  it('the Deployment: 2 replicas, non-root, read-only root filesystem, resources, probes on 15014; the Service', () => {
    const dep = find('Deployment', 'meshca', 'meshca-system') as Obj & {
      spec: {
        replicas: number;
        template: { spec: Record<string, unknown> & { containers: Record<string, unknown>[]; serviceAccountName: string } };
      };
    };
    assert.equal(dep.spec.replicas, 2);
    const pod = dep.spec.template.spec;
    assert.equal(pod.serviceAccountName, 'meshca');
    assert.equal((pod.securityContext as { runAsNonRoot: boolean }).runAsNonRoot, true);
    const c = pod.containers[0] as {
      image: string;
      securityContext: { readOnlyRootFilesystem: boolean; allowPrivilegeEscalation: boolean };
      resources: { requests: object; limits: object };
      readinessProbe: { httpGet: { path: string; port: string } };
      livenessProbe: { httpGet: { path: string; port: string } };
      ports: { name: string; containerPort: number }[];
      env: { name: string; value?: string }[];
    };
    assert.equal(c.image, 'ghcr.io/meshca/meshca:0.1.0');
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.ok(c.resources.requests && c.resources.limits);
    const port = (name: string) => c.ports.find((p) => p.name === name)?.containerPort;
    assert.equal(port('grpc'), 15012);
    assert.equal(port('http-monitoring'), 15014);
    assert.deepEqual([c.readinessProbe.httpGet.path, c.readinessProbe.httpGet.port], ['/readyz', 'http-monitoring']);
    assert.deepEqual([c.livenessProbe.httpGet.path, c.livenessProbe.httpGet.port], ['/healthz', 'http-monitoring']);
    assert.ok(
      c.env.some((e) => e.name === 'MESHCA_POD_NAME'),
      'the Lease identity is the pod name',
    );
    const svc = find('Service', 'meshca', 'meshca-system') as Obj & { spec: { ports: { name: string; port: number }[] } };
    assert.deepEqual(
      svc.spec.ports.map((p) => `${p.name}:${p.port}`),
      ['grpc:15012', 'http-monitoring:15014'],
    );
  });

  it('the ConfigMap holds a meshca.yaml that `meshca serve` accepts, in step with the manifests', () => {
    const tmp = tempDir('meshca-manifests-');
    try {
      const file = join(tmp.path, 'meshca.yaml');
      writeFileSync(file, (find('ConfigMap', 'meshca', 'meshca-system').data as Record<string, string>)['meshca.yaml']);
      const c = loadConfig({ configFile: file, env: { MESHCA_POD_NAME: 'meshca-0' } });
      assert.equal(c.grpcAddr, '0.0.0.0:15012');
      assert.equal(c.httpAddr, '0.0.0.0:15014');
      assert.equal(c.dir, '/var/lib/meshca');
      assert.equal(c.podName, 'meshca-0');
      assert.ok(c.leaderElection && c.stateBackend === 'secret' && c.kubeconfig === 'in-cluster' && !c.localTokens);
      assert.ok(c.servingSans.includes('meshca.meshca-system.svc'), 'the name proxies dial is in the serving certificate');
      const dep = find('Deployment', 'meshca', 'meshca-system') as Obj & {
        spec: { template: { spec: { containers: { volumeMounts: { mountPath: string }[] }[] } } };
      };
      assert.ok(
        dep.spec.template.spec.containers[0].volumeMounts.some((m) => m.mountPath === c.dir),
        'the state directory is a writable volume',
      );
      const own = find('Role', 'meshca', 'meshca-system') as Obj & { rules: { resourceNames?: string[] }[] };
      assert.ok(own.rules.some((r) => r.resourceNames?.includes(c.leaseName)));
      assert.ok(own.rules.some((r) => r.resourceNames?.includes(c.stateSecret)));
    } finally {
      tmp.cleanup();
    }
  });
});

describe('deploy/istio', () => {
  const svc = find('Service', 'meshca', 'meshca-system');
  const caAddress = `${svc.metadata.name}.${svc.metadata.namespace}.svc:15012`;

  it("values.yaml points proxies at meshca and turns istiod's CA off", () => {
    const v = parseYaml(readFileSync(join(REPO_ROOT, 'deploy', 'istio', 'values.yaml'), 'utf8')) as {
      global: { caAddress: string; pilotCertProvider: string };
      pilot: { env: Record<string, string> };
    };
    assert.equal(v.global.caAddress, caAddress);
    assert.equal(v.pilot.env.ENABLE_CA_SERVER, 'false');
    assert.equal(v.global.pilotCertProvider, 'istiod');
  });

  it('the IstioOperator variants say the same, and the k8s-csr one names a signer meshca signs for', () => {
    const op = parseYaml(readFileSync(join(REPO_ROOT, 'deploy', 'istio', 'istiooperator.yaml'), 'utf8')) as {
      kind: string;
      spec: { values: { global: { caAddress: string } }; components: { pilot: { k8s: { env: { name: string; value: string }[] } } } };
    };
    assert.equal(op.kind, 'IstioOperator');
    assert.equal(op.spec.values.global.caAddress, caAddress);
    assert.deepEqual(op.spec.components.pilot.k8s.env, [{ name: 'ENABLE_CA_SERVER', value: 'false' }]);
    const ra = parseYaml(readFileSync(join(REPO_ROOT, 'deploy', 'istio', 'istiooperator-k8s-csr.yaml'), 'utf8')) as typeof op;
    const env = Object.fromEntries(ra.spec.components.pilot.k8s.env.map((e) => [e.name, e.value]));
    assert.equal(env.EXTERNAL_CA, 'ISTIOD_RA_KUBERNETES_API');
    const config = parseYaml((find('ConfigMap', 'meshca', 'meshca-system').data as Record<string, string>)['meshca.yaml']) as {
      signerNames: string[];
    };
    assert.ok(config.signerNames.includes(env.K8S_SIGNER));
  });

  it('deploy/smoke.sh is valid bash', () => {
    const r = spawnSync('bash', ['-n', join(REPO_ROOT, 'deploy', 'smoke.sh')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  });
});

/**
 * deploy/production, the overlay of docs/production.md: rendered by kubectl itself (kustomize's
 * patches and generators are not resolved by hand), then checked object by object.
 */
describe('deploy/production overlay (two replicas, AWS PCA, manifests, kubeconfigs, alerts)', () => {
  const r = spawnSync('kubectl', ['kustomize', join(REPO_ROOT, 'deploy', 'production')], {
    encoding: 'utf8',
    env: { ...process.env, KUBECONFIG: '/dev/null' },
  });
  const prod = r.status === 0 ? parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj) : [];
  const get = (kind: string, name: string) => prod.find((o) => o.kind === kind && o.metadata.name === name);
  type Pod = {
    containers: { env: { name: string; value?: string }[]; volumeMounts: { name: string; mountPath: string }[] }[];
    volumes: { name: string; projected?: { sources: Record<string, { name: string }>[] }; secret?: { secretName: string } }[];
  };

  it('renders with kubectl kustomize, and every core object validates', async () => {
    assert.equal(r.status, 0, r.stderr);
    for (const o of prod.filter((x) => x.kind !== 'PrometheusRule')) await validate(o);
    assert.ok(get('PrometheusRule', 'meshca'), 'the alerting rules are part of it');
  });

  it('its meshca.yaml is accepted by the config loader: awspca, state Secret, Lease, manifests', () => {
    const tmp = tempDir('meshca-production-');
    try {
      const file = join(tmp.path, 'meshca.yaml');
      writeFileSync(file, (get('ConfigMap', 'meshca')!.data as Record<string, string>)['meshca.yaml']);
      const c = loadConfig({ configFile: file, env: { MESHCA_POD_NAME: 'meshca-0' } });
      assert.equal(c.upstream, 'awspca');
      assert.match(c.awspcaArn ?? '', /^arn:aws:acm-pca:eu-west-1:\d{12}:certificate-authority\//);
      assert.equal(c.awspcaRegion, 'eu-west-1');
      assert.ok(c.stateBackend === 'secret' && c.leaderElection);
      assert.equal(c.manifests, '/etc/meshca/manifests');
      const pod = (get('Deployment', 'meshca')!.spec as { replicas: number; template: { spec: Pod } }).template.spec;
      assert.equal((get('Deployment', 'meshca')!.spec as { replicas: number }).replicas, 2);
      const mounts = Object.fromEntries(pod.containers[0].volumeMounts.map((m) => [m.mountPath, m.name]));
      assert.equal(mounts['/etc/meshca'], undefined, 'nothing mounted over the directories below');
      assert.equal(mounts['/etc/meshca/manifests'], 'manifests');
      assert.equal(mounts['/etc/meshca/kubeconfigs'], 'kubeconfigs');
      const env = Object.fromEntries(pod.containers[0].env.map((e) => [e.name, e.value]));
      assert.equal(mounts['/etc/meshca/config'], 'config');
      assert.equal(env.MESHCA_CONFIG, '/etc/meshca/config/meshca.yaml');
      const manifestsVolume = pod.volumes.find((v) => v.name === 'manifests')!;
      assert.deepEqual(
        manifestsVolume.projected!.sources.map((s) => Object.keys(s)[0] + ':' + Object.values(s)[0].name),
        ['configMap:meshca-manifests', 'secret:meshca-manifest-secrets'],
      );
      assert.equal(pod.volumes.find((v) => v.name === 'kubeconfigs')!.secret!.secretName, 'meshca-cluster-kubeconfigs');
      const sa = get('ServiceAccount', 'meshca')!.metadata as { annotations?: Record<string, string> };
      assert.match(sa.annotations?.['eks.amazonaws.com/role-arn'] ?? '', /^arn:aws:iam::\d{12}:role\//);
    } finally {
      tmp.cleanup();
    }
  });

  it('the manifests ConfigMap holds a RootTrustPolicy and three Clusters whose kubeconfigs are in the Secret volume', () => {
    const data = get('ConfigMap', 'meshca-manifests')!.data as Record<string, string>;
    const docs = Object.entries(data).flatMap(([k, text]) => loadManifests(text, k));
    const names = docs.map((d) => `${d.object.kind.kind}/${d.object.resource!.metadata.name}`).sort();
    assert.deepEqual(names, ['Cluster/central', 'Cluster/east', 'Cluster/west', 'RootTrustPolicy/root-trust-policy']);
    for (const d of docs.filter((x) => x.object.kind.kind === 'Cluster')) {
      const spec = d.object.resource!.spec as { kubeconfig: { file: string } };
      assert.equal(spec.kubeconfig.file, `/etc/meshca/kubeconfigs/${d.object.resource!.metadata.name}`);
    }
  });
});
