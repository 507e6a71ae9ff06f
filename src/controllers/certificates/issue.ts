import type { KeyObject } from 'node:crypto';
import { createCsr, parseCsr } from '../../pki/csr.js';
import { keyMatches, parsePrivateKeyPem } from '../../pki/keys.js';
import type { SubjectSpec } from '../../pki/name.js';
import {
  certificateDurationMs,
  type Certificate,
  type CertificateRequest,
  type CertificateRequestSpec,
} from '../../resources/certmanager.js';
import { formatGoDuration } from '../../resources/duration.js';
import { apiVersionOf, CERTIFICATE_REQUEST } from '../../resources/kinds.js';
import { getCondition } from '../../resources/meta.js';
import { MANAGED_BY_LABEL, OWNER_ANNOTATION } from '../../resources/secrets.js';
import { decodeB64Pem, reconcileRequest } from '../certificaterequests.js';
import type { ControllerContext } from '../context.js';
import { encodeKey, generateKeyFor } from './keys.js';
import { ANNOTATIONS, keyMismatches, requestMismatches } from './policy.js';
import { certificateOwner, certificateSecret } from './secret.js';

export type IssueOutcome =
  { state: 'issued'; request: CertificateRequest } | { state: 'failed'; message: string } | { state: 'pending'; message: string };

/** The next private key waits in its own secret until issuance completes, so a retry or a crash reuses it (cert-manager's nextPrivateKeySecretName). */
export function nextKeySecretName(certName: string): string {
  return `${certName}-next-private-key`;
}

export function subjectOf(cert: Certificate): SubjectSpec {
  const s = cert.spec.subject ?? {};
  return {
    commonName: cert.spec.commonName,
    organization: s.organizations,
    organizationalUnit: s.organizationalUnits,
    country: s.countries,
    province: s.provinces,
    locality: s.localities,
    streetAddress: s.streetAddresses,
    postalCode: s.postalCodes,
    serialNumber: s.serialNumber,
  };
}

async function nextPrivateKey(ctx: ControllerContext, cert: Certificate): Promise<KeyObject> {
  const ns = cert.metadata.namespace!;
  const owner = certificateOwner(cert);
  const ref = { namespace: ns, name: nextKeySecretName(cert.metadata.name) };
  const stored = await ctx.secrets.get(ref);
  // Only a key this Certificate stored itself is reused; anything else is refused by put() below.
  if (stored?.data['tls.key'] && stored.annotations?.[OWNER_ANNOTATION] === owner) {
    try {
      const k = parsePrivateKeyPem(stored.data['tls.key'], `secret ${ns}/${ref.name}`);
      if (keyMismatches(cert.spec, k).length === 0) return k;
    } catch {
      // Unreadable: replaced below.
    }
  }
  let key: KeyObject | undefined;
  if (cert.spec.privateKey?.rotationPolicy === 'Never') {
    // Keep the key already in use when it still fits the spec.
    const current = await ctx.secrets.get({ namespace: ns, name: cert.spec.secretName });
    if (current?.data['tls.key']) {
      try {
        const k = parsePrivateKeyPem(current.data['tls.key'], 'tls.key');
        if (keyMismatches(cert.spec, k).length === 0) key = k;
      } catch {
        key = undefined;
      }
    }
  }
  key ??= generateKeyFor(cert.spec, ctx.progress, `Certificate ${ns}/${cert.metadata.name}`);
  await ctx.secrets.put(
    ref,
    {
      type: 'Opaque',
      data: { 'tls.key': Buffer.from(encodeKey(key, 'PKCS8')) },
      labels: { [MANAGED_BY_LABEL]: 'meshca' },
      annotations: { [OWNER_ANNOTATION]: owner, [ANNOTATIONS.certificateName]: cert.metadata.name },
    },
    { owner },
  );
  return key;
}

function requestSpec(cert: Certificate, key: KeyObject): CertificateRequestSpec {
  const s = cert.spec;
  const csr = createCsr({
    key,
    subject: subjectOf(cert),
    sans: { dnsNames: s.dnsNames, uris: s.uris, ipAddresses: s.ipAddresses, emailAddresses: s.emailAddresses },
    isCA: s.isCA,
  });
  return {
    request: Buffer.from(csr.pem).toString('base64'),
    issuerRef: s.issuerRef,
    duration: formatGoDuration(certificateDurationMs(s)),
    ...(s.isCA ? { isCA: true } : {}),
    ...(s.usages ? { usages: s.usages } : {}),
  };
}

function requestKeyMatches(cr: CertificateRequest, key: KeyObject): boolean {
  try {
    return keyMatches(key, parseCsr(decodeB64Pem(cr.spec.request)).publicKey);
  } catch {
    return false;
  }
}

/**
 * One issuance, cert-manager's key-manager, request-manager and issuing controllers in a row:
 * the next key, the CertificateRequest for revision+1 (replaced if it failed or no longer fits),
 * approval and signing, then the secret, written atomically.
 */
export async function runIssuance(ctx: ControllerContext, cert: Certificate): Promise<IssueOutcome> {
  const ns = cert.metadata.namespace!;
  const name = cert.metadata.name;
  const owner = certificateOwner(cert);
  const revision = (cert.status?.revision ?? 0) + 1;
  const key = await nextPrivateKey(ctx, cert);
  const crName = `${name}-${revision}`;
  let cr = await ctx.store.get<CertificateRequest>(CERTIFICATE_REQUEST, crName, ns);
  const ready = getCondition(cr?.status?.conditions, 'Ready');
  const stale =
    cr &&
    (ready?.reason === 'Failed' ||
      ready?.reason === 'Denied' ||
      !requestKeyMatches(cr, key) ||
      requestMismatches(cert.spec, cr).length > 0);
  if (cr && stale) {
    await ctx.store.delete(CERTIFICATE_REQUEST, crName, ns);
    cr = undefined;
  }
  if (!cr) {
    const created = await ctx.store.apply<CertificateRequest>(
      CERTIFICATE_REQUEST,
      {
        apiVersion: apiVersionOf(CERTIFICATE_REQUEST),
        kind: CERTIFICATE_REQUEST.kind,
        metadata: {
          name: crName,
          namespace: ns,
          annotations: {
            [ANNOTATIONS.certificateName]: name,
            [ANNOTATIONS.revision]: String(revision),
            [ANNOTATIONS.privateKeySecret]: nextKeySecretName(name),
          },
        },
        spec: requestSpec(cert, key),
      },
      ctx.now,
      [cert],
    );
    cr = created.object;
    ctx.changed = true;
  }
  cr = await reconcileRequest(ctx, cr, key);
  const done = getCondition(cr.status?.conditions, 'Ready');
  if (done?.status === 'True') {
    const content = certificateSecret(
      cert,
      decodeB64Pem(cr.status!.certificate),
      encodeKey(key, cert.spec.privateKey?.encoding),
      decodeB64Pem(cr.status!.ca),
    );
    await ctx.secrets.put({ namespace: ns, name: cert.spec.secretName }, content, { owner });
    await ctx.secrets.delete({ namespace: ns, name: nextKeySecretName(name) }, { owner });
    await pruneRequests(ctx, cert, revision);
    ctx.changed = true;
    return { state: 'issued', request: cr };
  }
  if (done && (done.reason === 'Failed' || done.reason === 'Denied')) return { state: 'failed', message: done.message };
  return { state: 'pending', message: done?.message ?? 'waiting for the CertificateRequest' };
}

/** Keeps the last revisionHistoryLimit requests (default 1, as cert-manager since 1.18). */
async function pruneRequests(ctx: ControllerContext, cert: Certificate, revision: number): Promise<void> {
  const limit = cert.spec.revisionHistoryLimit ?? 1;
  for (const cr of await ctx.store.list<CertificateRequest>(CERTIFICATE_REQUEST, cert.metadata.namespace)) {
    const a = cr.metadata.annotations ?? {};
    if (a[ANNOTATIONS.certificateName] !== cert.metadata.name) continue;
    const r = Number(a[ANNOTATIONS.revision]);
    if (Number.isFinite(r) && r <= revision - limit) await ctx.store.delete(CERTIFICATE_REQUEST, cr.metadata.name, cr.metadata.namespace);
  }
}
