export { K8sDouble, type Fault, type RequestRecord, type TokenEntry } from './server.js';
export { ObjectStore, type KubeObject } from './store.js';
import type { K8sDouble } from './server.js';
import type { KubeObject } from './store.js';

/** `kubectl create -f csr.yaml` as a test writes it: a CSR object for the double. */
export function csrObject(
  name: string,
  csrPem: string,
  o: { signerName?: string; usages?: string[]; expirationSeconds?: number } = {},
): KubeObject {
  return {
    apiVersion: 'certificates.k8s.io/v1',
    kind: 'CertificateSigningRequest',
    metadata: { name },
    spec: {
      request: Buffer.from(csrPem).toString('base64'),
      signerName: o.signerName ?? 'example.com/foo',
      usages: o.usages ?? ['digital signature', 'key encipherment', 'server auth', 'client auth'],
      ...(o.expirationSeconds !== undefined ? { expirationSeconds: o.expirationSeconds } : {}),
    },
  };
}

export function createCsrObject(d: K8sDouble, obj: KubeObject): KubeObject {
  return d.store.create({ resource: 'certificatesigningrequests' }, obj);
}

/** Polls (tests only; the product waits with watches) until `f` returns a value. */
export async function eventually<T>(f: () => T | undefined | false, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The PEM certificate chain a signer wrote, or undefined. */
export function issuedChain(d: K8sDouble, name: string): string | undefined {
  const c = (d.csr(name)?.status as { certificate?: string } | undefined)?.certificate;
  return c ? Buffer.from(c, 'base64').toString('utf8') : undefined;
}

export function failedCondition(d: K8sDouble, name: string): { reason?: string; message?: string } | undefined {
  return (
    (d.csr(name)?.status as { conditions?: { type: string; reason?: string; message?: string }[] } | undefined)?.conditions ?? []
  ).find((c) => c.type === 'Failed');
}
