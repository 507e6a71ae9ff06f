import type { KeyObject } from 'node:crypto';
import { certsToPem } from '../pki/certificate.js';
import { parseCsr } from '../pki/csr.js';
import { errorMessage } from '../pki/errors.js';
import { parsePrivateKeyPem } from '../pki/keys.js';
import { DEFAULT_DURATION_MS, type CertificateRequest } from '../resources/certmanager.js';
import { parseGoDuration } from '../resources/duration.js';
import { CERTIFICATE_REQUEST } from '../resources/kinds.js';
import { getCondition, isTrue, objectKey, setCondition } from '../resources/meta.js';
import { decideApproval } from './approval.js';
import { ANNOTATIONS } from './certificates/policy.js';
import { issuerDeps, record, type ControllerContext } from './context.js';
import { backendFor, effectiveUsages, lookupIssuer } from './issuers/index.js';

export function requestLabel(cr: CertificateRequest): string {
  return `CertificateRequest ${objectKey(cr.metadata)}`;
}

/** Issued, Failed and Denied requests are final: a new attempt is a new request. */
export function isFinal(cr: CertificateRequest): boolean {
  const ready = getCondition(cr.status?.conditions, 'Ready');
  return !!ready && (ready.status === 'True' || ready.reason === 'Failed' || ready.reason === 'Denied');
}

export function decodeB64Pem(b64: string | undefined): string {
  return b64 ? Buffer.from(b64, 'base64').toString('utf8') : '';
}

async function selfSignedKey(ctx: ControllerContext, cr: CertificateRequest): Promise<KeyObject | undefined> {
  const name = cr.metadata.annotations?.[ANNOTATIONS.privateKeySecret];
  if (!name) return undefined;
  const s = await ctx.secrets.get({ namespace: cr.metadata.namespace!, name });
  return s?.data['tls.key'] ? parsePrivateKeyPem(s.data['tls.key'], `secret ${name} tls.key`) : undefined;
}

/**
 * One CertificateRequest through approval and signing, with cert-manager's conditions:
 * Approved or Denied, then Ready (Pending while the issuer is missing or not Ready; Issued,
 * Failed or Denied when final). Returns the request as stored afterwards.
 */
export async function reconcileRequest(
  ctx: ControllerContext,
  cr: CertificateRequest,
  privateKey?: KeyObject,
): Promise<CertificateRequest> {
  if (isFinal(cr) || ctx.dryRun) return cr;
  const now = ctx.now;
  const gen = cr.metadata.generation;
  let conditions = cr.status?.conditions ?? [];
  const status = { ...(cr.status ?? {}) };
  const finish = async (): Promise<CertificateRequest> => {
    const saved = await ctx.store.updateStatus(CERTIFICATE_REQUEST, { ...cr, status: { ...status, conditions } });
    if (saved.metadata.resourceVersion !== cr.metadata.resourceVersion) ctx.changed = true;
    return saved;
  };
  let csrPem: string;
  let csr;
  try {
    csrPem = decodeB64Pem(cr.spec.request);
    csr = parseCsr(csrPem, 'spec.request');
  } catch (e) {
    conditions = setCondition(
      conditions,
      {
        type: 'Ready',
        status: 'False',
        reason: 'Failed',
        message: `Failed to decode CSR in spec.request: ${errorMessage(e)}`,
        observedGeneration: gen,
      },
      now,
    );
    status.failureTime = now.toISOString();
    record(ctx, { object: requestLabel(cr), action: 'failed', message: errorMessage(e), warning: true });
    return finish();
  }
  if (!getCondition(conditions, 'Approved') && !getCondition(conditions, 'Denied')) {
    const d = await decideApproval(ctx.store, cr, csr);
    conditions = setCondition(
      conditions,
      { type: d.approved ? 'Approved' : 'Denied', status: 'True', reason: d.reason, message: d.message },
      now,
    );
  }
  if (isTrue(conditions, 'Denied')) {
    conditions = setCondition(
      conditions,
      {
        type: 'Ready',
        status: 'False',
        reason: 'Denied',
        message: 'The CertificateRequest was denied by an approval controller',
        observedGeneration: gen,
      },
      now,
    );
    status.failureTime = now.toISOString();
    record(ctx, { object: requestLabel(cr), action: 'denied', message: getCondition(conditions, 'Denied')!.message, warning: true });
    return finish();
  }
  const pending = (message: string) => {
    conditions = setCondition(conditions, { type: 'Ready', status: 'False', reason: 'Pending', message, observedGeneration: gen }, now);
    record(ctx, { object: requestLabel(cr), action: 'pending', message });
    return finish();
  };
  let found;
  try {
    found = await lookupIssuer(ctx.store, cr.spec.issuerRef, cr.metadata.namespace!);
  } catch (e) {
    return pending(errorMessage(e));
  }
  if (!isTrue(found.object.status?.conditions, 'Ready')) return pending('Referenced issuer does not have a Ready status condition');
  try {
    const backend = backendFor(found, issuerDeps(ctx));
    const durationMs = cr.spec.duration !== undefined ? parseGoDuration(cr.spec.duration)! : DEFAULT_DURATION_MS;
    const isCA = cr.spec.isCA ?? false;
    const result = await backend.sign({
      csrPem,
      durationMs,
      isCA,
      usages: effectiveUsages(cr.spec.usages, isCA),
      now,
      privateKey: privateKey ?? (await selfSignedKey(ctx, cr)),
    });
    status.certificate = Buffer.from(certsToPem(result.chain)).toString('base64');
    status.ca = Buffer.from(result.ca.pem).toString('base64');
    conditions = setCondition(
      conditions,
      { type: 'Ready', status: 'True', reason: 'Issued', message: 'Certificate fetched from issuer successfully', observedGeneration: gen },
      now,
    );
    record(ctx, {
      object: requestLabel(cr),
      action: 'issued',
      message: `serial ${result.chain[0].serialHex}, valid until ${result.chain[0].notAfter.toISOString()}`,
    });
  } catch (e) {
    conditions = setCondition(
      conditions,
      {
        type: 'Ready',
        status: 'False',
        reason: 'Failed',
        message: `Failed to sign certificate: ${errorMessage(e)}`,
        observedGeneration: gen,
      },
      now,
    );
    status.failureTime = now.toISOString();
    record(ctx, { object: requestLabel(cr), action: 'failed', message: errorMessage(e), warning: true });
  }
  return finish();
}
