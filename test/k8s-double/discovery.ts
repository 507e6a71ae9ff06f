/**
 * The legacy discovery documents of the double (`/api`, `/apis`, `/api/v1`, `/apis/G/V`), which
 * kubectl reads before any request to map `csr` or `secret` to a REST path. They list only what
 * the double serves, with the verbs it implements, so kubectl refuses the rest client-side.
 */

const RW = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'];

interface Resource {
  name: string;
  singularName: string;
  namespaced: boolean;
  kind: string;
  verbs: string[];
  shortNames?: string[];
}

const sub = (parent: string, name: string, kind: string): Resource => ({
  name: `${parent}/${name}`,
  singularName: '',
  namespaced: false,
  kind,
  verbs: ['get', 'update'],
});

/** groupVersion -> resources; "v1" is the core group served under /api. */
const RESOURCES: Record<string, Resource[]> = {
  v1: [
    { name: 'configmaps', singularName: 'configmap', namespaced: true, kind: 'ConfigMap', verbs: RW, shortNames: ['cm'] },
    { name: 'secrets', singularName: 'secret', namespaced: true, kind: 'Secret', verbs: RW },
  ],
  'certificates.k8s.io/v1': [
    {
      name: 'certificatesigningrequests',
      singularName: 'certificatesigningrequest',
      namespaced: false,
      kind: 'CertificateSigningRequest',
      verbs: RW,
      shortNames: ['csr'],
    },
    sub('certificatesigningrequests', 'approval', 'CertificateSigningRequest'),
    sub('certificatesigningrequests', 'status', 'CertificateSigningRequest'),
  ],
  'coordination.k8s.io/v1': [
    { name: 'leases', singularName: 'lease', namespaced: true, kind: 'Lease', verbs: ['create', 'delete', 'get', 'update'] },
  ],
  'authentication.k8s.io/v1': [
    { name: 'tokenreviews', singularName: 'tokenreview', namespaced: false, kind: 'TokenReview', verbs: ['create'] },
  ],
};

/** The discovery document at `path`, or undefined when `path` is not a discovery path. */
export function discovery(path: string, host: string): Record<string, unknown> | undefined {
  if (path === '/api')
    return {
      kind: 'APIVersions',
      versions: ['v1'],
      serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: host }],
    };
  if (path === '/apis') {
    const groups = Object.keys(RESOURCES)
      .filter((gv) => gv.includes('/'))
      .map((gv) => {
        const [name, version] = gv.split('/');
        const v = { groupVersion: gv, version };
        return { name, versions: [v], preferredVersion: v };
      });
    return { kind: 'APIGroupList', apiVersion: 'v1', groups };
  }
  const gv = path === '/api/v1' ? 'v1' : /^\/apis\/([^/]+\/[^/]+)$/.exec(path)?.[1];
  const resources = gv ? RESOURCES[gv] : undefined;
  if (!resources) return undefined;
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: gv, resources };
}

/** GET /api/v1/namespaces/NAME: every namespace exists and is active (the double has no Namespace objects). */
export function namespaceObject(path: string): Record<string, unknown> | undefined {
  const name = /^\/api\/v1\/namespaces\/([^/]+)$/.exec(path)?.[1];
  if (!name) return undefined;
  return { kind: 'Namespace', apiVersion: 'v1', metadata: { name }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } };
}

const gvPath = (gv: string) => (gv === 'v1' ? 'api/v1' : `apis/${gv}`);

/**
 * The OpenAPI v3 index and one document per group-version. kubectl reads them only to learn that
 * the server validates fields (the `fieldValidation` query parameter), so the documents hold the
 * write operations of each kind and no schemas.
 */
export function openapi(path: string): Record<string, unknown> | undefined {
  if (path === '/openapi/v3')
    return {
      paths: Object.fromEntries(Object.keys(RESOURCES).map((gv) => [gvPath(gv), { serverRelativeURL: `/openapi/v3/${gvPath(gv)}` }])),
    };
  const gv = Object.keys(RESOURCES).find((g) => path === `/openapi/v3/${gvPath(g)}`);
  if (!gv) return undefined;
  const [group, version] = gv.includes('/') ? gv.split('/') : ['', gv];
  const paths: Record<string, unknown> = {};
  for (const r of RESOURCES[gv].filter((x) => !x.name.includes('/'))) {
    const op = (action: string) => ({
      'x-kubernetes-action': action,
      'x-kubernetes-group-version-kind': { group, version, kind: r.kind },
      parameters: [{ name: 'fieldValidation', in: 'query', schema: { type: 'string', uniqueItems: true } }],
    });
    const base = `/${gvPath(gv)}/${r.namespaced ? 'namespaces/{namespace}/' : ''}${r.name}`;
    if (r.verbs.includes('create')) paths[base] = { post: op('post') };
    // kubectl looks for fieldValidation on the PATCH operation of the kind.
    if (r.verbs.includes('update'))
      paths[`${base}/{name}`] = { put: op('put'), ...(r.verbs.includes('patch') ? { patch: op('patch') } : {}) };
  }
  return { openapi: '3.0.0', info: { title: 'Kubernetes', version: 'v1' }, paths };
}
