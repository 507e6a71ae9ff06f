import { MeshcaError, errorMessage } from '../pki/errors.js';
import { apiStatus, kubeError, type KubeClient } from './client.js';
import { CSR_PATH, condition, conditionOf, csrPhase, decodeBytes, encodeBytes, type KubeCsr } from './csr.js';
import { runReflector } from './reflector.js';
import { MIN_EXPIRATION_SECONDS } from './sign.js';

export interface CsrSubmission {
  csrPem: string;
  signerName: string;
  usages: string[];
  ttlSeconds: number;
  /** Approve through /approval (the RA's own approval); otherwise someone else must. */
  approve: boolean;
  /** Who the approval speaks for, in its message. */
  approvalNote?: string;
  timeoutMs: number;
  signal?: AbortSignal;
  log?: { warn(obj: object, msg: string): void; debug(obj: object, msg: string): void };
}

/**
 * One certificate through the Kubernetes CSR API, as istiod's RA does it: create the CSR
 * (generateName), approve it if allowed, wait for the signer's answer with a watch on that one
 * name (never a polling loop), and delete the CSR whatever happened. Returns status.certificate
 * as PEM. Denied is permission_denied, Failed is unavailable (both with the signer's reason), no
 * answer in time is deadline_exceeded.
 */
export async function submitCsr(client: KubeClient, s: CsrSubmission): Promise<{ name: string; certificatePem: string }> {
  const api = client.certificates;
  let created: KubeCsr;
  try {
    created = await api.createCertificateSigningRequest({
      body: {
        apiVersion: 'certificates.k8s.io/v1',
        kind: 'CertificateSigningRequest',
        metadata: { generateName: 'meshca-', labels: { 'app.kubernetes.io/managed-by': 'meshca' } },
        spec: {
          request: encodeBytes(s.csrPem),
          signerName: s.signerName,
          usages: s.usages,
          // The API's floor is 600 s: a shorter TTL cannot be asked for, only granted shorter by the signer.
          expirationSeconds: Math.max(MIN_EXPIRATION_SECONDS, Math.ceil(s.ttlSeconds)),
        },
      },
    });
  } catch (e) {
    throw kubeError(`creating a CertificateSigningRequest for ${s.signerName}`, e);
  }
  const name = created.metadata!.name!;
  try {
    if (s.approve) await approve(client, created, s);
    const done = await waitForDecision(client, name, s);
    const phase = csrPhase(done);
    if (phase === 'denied') {
      const c = conditionOf(done, 'Denied');
      throw new MeshcaError(
        'permission_denied',
        'csr_denied',
        `CSR ${name} for ${s.signerName} was denied${c?.reason ? ` (${c.reason})` : ''}${c?.message ? `: ${c.message}` : ''}`,
      );
    }
    if (phase === 'failed') {
      const c = conditionOf(done, 'Failed');
      throw new MeshcaError(
        'unavailable',
        'csr_failed',
        `signer ${s.signerName} failed CSR ${name}${c?.reason ? ` (${c.reason})` : ''}${c?.message ? `: ${c.message}` : ''}`,
      );
    }
    return { name, certificatePem: decodeBytes(done.status?.certificate) };
  } finally {
    try {
      await api.deleteCertificateSigningRequest({ name });
    } catch (e) {
      if (apiStatus(e) !== 404)
        s.log?.warn(
          { csr: name, err: errorMessage(e) },
          'could not delete the CertificateSigningRequest; the API server garbage-collects it later',
        );
    }
  }
}

async function approve(client: KubeClient, csr: KubeCsr, s: CsrSubmission): Promise<void> {
  let current = csr;
  for (let attempt = 0; ; attempt++) {
    const conditions = [
      ...(current.status?.conditions ?? []),
      condition(
        'Approved',
        'MeshcaRegistrationAuthority',
        `approved by meshca${s.approvalNote ? ` for ${s.approvalNote}` : ''}`,
        new Date(),
      ),
    ];
    try {
      await client.certificates.replaceCertificateSigningRequestApproval({
        name: current.metadata!.name!,
        body: { ...current, status: { ...current.status, conditions } },
      });
      return;
    } catch (e) {
      // The signer (or anything) wrote first: read again and approve that version.
      if (apiStatus(e) !== 409 || attempt >= 3) throw kubeError(`approving CSR ${current.metadata?.name}`, e);
      current = await client.certificates.readCertificateSigningRequest({ name: current.metadata!.name! });
      if (csrPhase(current) !== 'pending') return;
    }
  }
}

/** Watches the one CSR until it is issued, denied or failed; the watch resumes across stream ends and 410s. */
async function waitForDecision(client: KubeClient, name: string, s: CsrSubmission): Promise<KubeCsr> {
  // One controller with explicit timers: Node 20's AbortSignal.any/timeout can be collected before they fire.
  const stop = new AbortController();
  const signal = stop.signal;
  const timer = setTimeout(() => stop.abort(), s.timeoutMs);
  const cancel = () => stop.abort();
  s.signal?.addEventListener('abort', cancel, { once: true });
  let decided: KubeCsr | undefined;
  let gone = false;
  let last: KubeCsr | undefined;
  const see = (c: KubeCsr) => {
    last = c;
    if (csrPhase(c) !== 'pending' && csrPhase(c) !== 'approved') {
      decided = c;
      stop.abort();
    }
  };
  const fieldSelector = `metadata.name=${name}`;
  await runReflector<KubeCsr>(
    client,
    {
      path: CSR_PATH,
      params: { fieldSelector },
      list: async () => {
        const l = await client.certificates.listCertificateSigningRequest({ fieldSelector });
        return { items: l.items, resourceVersion: l.metadata?.resourceVersion ?? '' };
      },
    },
    {
      sync: (items) => {
        if (items.length === 0) {
          gone = true;
          stop.abort();
        }
        for (const c of items) see(c);
      },
      event: (type, c) => {
        if (type === 'DELETED') {
          gone = true;
          stop.abort();
        } else see(c);
      },
    },
    { signal, log: s.log, backoffMs: 200, maxBackoffMs: 2000 },
  ).finally(() => {
    clearTimeout(timer);
    s.signal?.removeEventListener('abort', cancel);
  });
  if (decided) return decided;
  if (gone) throw new MeshcaError('unavailable', 'csr_deleted', `CSR ${name} was deleted before it was signed`);
  if (s.signal?.aborted) throw new MeshcaError('unavailable', 'cancelled', `waiting for CSR ${name} was cancelled`);
  const approved = last ? csrPhase(last) === 'approved' : s.approve;
  throw new MeshcaError(
    'deadline_exceeded',
    'csr_timeout',
    `no certificate for CSR ${name} from signer ${s.signerName} within ${s.timeoutMs / 1000}s (${approved ? 'approved, but not signed: is a signer for it running?' : 'not approved: approve it or enable k8sApprove'})`,
  );
}
