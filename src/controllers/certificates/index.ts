import type { Certificate, CertificateRequest, CertificateStatus } from '../../resources/certmanager.js';
import { CERTIFICATE, CERTIFICATE_REQUEST } from '../../resources/kinds.js';
import { getCondition, objectKey, removeCondition, setCondition } from '../../resources/meta.js';
import { OWNER_ANNOTATION, secretLabel } from '../../resources/secrets.js';
import { certManagerBackoff, guarded, record, wakeAt, type ControllerContext } from '../context.js';
import { errorMessage } from '../../pki/errors.js';
import { runIssuance } from './issue.js';
import { checkRenewal, checkSecret, renewalTime, type Verdict } from './policy.js';
import { certificateOwner } from './secret.js';

export { renewalTime } from './policy.js';
export { nextKeySecretName } from './issue.js';

const READY: Verdict = { reason: 'Ready', message: 'Certificate is up to date and has not expired' };

function label(cert: Certificate): string {
  return `Certificate ${objectKey(cert.metadata)}`;
}

/** Why a reissue is due now, or undefined; and the parsed secret when it is usable. */
async function inspect(ctx: ControllerContext, cert: Certificate) {
  const ns = cert.metadata.namespace!;
  const secret = await ctx.secrets.get({ namespace: ns, name: cert.spec.secretName });
  const current = cert.status?.revision
    ? await ctx.store.get<CertificateRequest>(CERTIFICATE_REQUEST, `${cert.metadata.name}-${cert.status.revision}`, ns)
    : undefined;
  const { verdict, view } = checkSecret(cert, secret, current, ctx.now);
  const trigger = verdict ?? (view ? checkRenewal(cert, view.chain[0], ctx.now) : undefined);
  return { secret, verdict, view, trigger };
}

/**
 * One Certificate, cert-manager's way: trigger (secret missing, mismatched, expired or renewal
 * due), back off after failures (1h doubling to 32h, skipped when the spec changed), issue, then
 * Ready with notBefore/notAfter/renewalTime from the secret actually stored.
 */
export async function reconcileCertificate(ctx: ControllerContext, cert: Certificate): Promise<void> {
  const now = ctx.now;
  const gen = cert.metadata.generation;
  const status: CertificateStatus = { ...(cert.status ?? {}) };
  let conditions = status.conditions ?? [];
  let seen = await inspect(ctx, cert);

  // The override rule: a secret someone else owns is never replaced, and nothing is issued for it.
  const owner = seen.secret?.annotations?.[OWNER_ANNOTATION];
  if (seen.secret && owner !== certificateOwner(cert)) {
    const message = `${secretLabel({ namespace: cert.metadata.namespace!, name: cert.spec.secretName })} exists and is ${owner ? `managed by ${owner}` : 'not managed by meshca'}; refusing to replace it`;
    conditions = setCondition(
      conditions,
      { type: 'Ready', status: 'False', reason: 'SecretNotOwned', message, observedGeneration: gen },
      now,
    );
    if (!ctx.dryRun) await save(ctx, cert, { ...status, conditions: removeCondition(conditions, 'Issuing') });
    record(ctx, { object: label(cert), action: 'blocked', message, warning: true });
    return;
  }

  let issuing = getCondition(conditions, 'Issuing');
  if (seen.trigger && issuing?.status !== 'True') {
    const retryAt = backoffUntil(ctx, cert);
    if (retryAt) {
      wakeAt(ctx, retryAt);
      record(ctx, {
        object: label(cert),
        action: 'backoff',
        message: `${seen.trigger.message}; retrying after ${retryAt.toISOString()} (attempt ${(status.failedIssuanceAttempts ?? 0) + 1})`,
      });
    } else if (ctx.dryRun) {
      record(ctx, { object: label(cert), action: seen.view ? 'would-renew' : 'would-issue', message: seen.trigger.message });
    } else {
      conditions = setCondition(
        conditions,
        { type: 'Issuing', status: 'True', reason: seen.trigger.reason, message: seen.trigger.message, observedGeneration: gen },
        now,
      );
      issuing = getCondition(conditions, 'Issuing');
    }
  }

  if (issuing?.status === 'True' && !ctx.dryRun) {
    const renewal = !!seen.view;
    let outcome: Awaited<ReturnType<typeof runIssuance>>;
    try {
      outcome = await runIssuance(ctx, cert);
    } catch (e) {
      // Anything unexpected (a key secret someone else owns, a store error) is a failed attempt, with backoff.
      outcome = { state: 'failed', message: errorMessage(e) };
    }
    if (outcome.state === 'issued') {
      status.revision = (status.revision ?? 0) + 1;
      delete status.lastFailureTime;
      delete status.failedIssuanceAttempts;
      conditions = removeCondition(conditions, 'Issuing');
      seen = await inspect(ctx, { ...cert, status: { ...status, conditions } });
      record(ctx, {
        object: label(cert),
        action: renewal ? 'renewed' : 'issued',
        message: `revision ${status.revision}, serial ${seen.view?.chain[0].serialHex ?? '?'}`,
      });
    } else if (outcome.state === 'failed') {
      status.lastFailureTime = iso(now);
      status.failedIssuanceAttempts = (status.failedIssuanceAttempts ?? 0) + 1;
      const message = `The certificate request has failed to complete and will be retried: ${outcome.message}`;
      conditions = setCondition(conditions, { type: 'Issuing', status: 'False', reason: 'Failed', message, observedGeneration: gen }, now);
      wakeAt(ctx, new Date(now.getTime() + (ctx.backoffMs ?? certManagerBackoff)(status.failedIssuanceAttempts)));
      record(ctx, { object: label(cert), action: 'failed', message, warning: true });
    } else {
      record(ctx, { object: label(cert), action: 'pending', message: outcome.message });
    }
  }

  const notReady = seen.verdict;
  conditions = setCondition(
    conditions,
    { type: 'Ready', status: notReady ? 'False' : 'True', ...(notReady ?? READY), observedGeneration: gen },
    now,
  );
  const leaf = seen.view?.chain[0];
  if (leaf) {
    status.notBefore = iso(leaf.notBefore);
    status.notAfter = iso(leaf.notAfter);
    const at = renewalTime(leaf.notBefore, leaf.notAfter, cert.spec);
    status.renewalTime = iso(at);
    status.serialNumber = leaf.serialHex;
    wakeAt(ctx, at);
  }
  if (!ctx.dryRun) await save(ctx, cert, { ...status, conditions });
}

function iso(d: Date): string {
  return d.toISOString().replace('.000Z', 'Z');
}

/** When the last failure's backoff ends, if it has not yet; undefined when issuing may go ahead. */
function backoffUntil(ctx: ControllerContext, cert: Certificate): Date | undefined {
  const s = cert.status ?? {};
  if (!s.lastFailureTime) return undefined;
  const failed = getCondition(s.conditions, 'Issuing');
  // A spec change since the failure deserves an immediate attempt, as in cert-manager.
  if (failed?.observedGeneration !== undefined && failed.observedGeneration < cert.metadata.generation) return undefined;
  const until = new Date(Date.parse(s.lastFailureTime) + (ctx.backoffMs ?? certManagerBackoff)(s.failedIssuanceAttempts ?? 1));
  return until.getTime() > ctx.now.getTime() ? until : undefined;
}

async function save(ctx: ControllerContext, cert: Certificate, status: CertificateStatus): Promise<void> {
  const saved = await ctx.store.updateStatus(CERTIFICATE, { ...cert, status });
  if (saved.metadata.resourceVersion !== cert.metadata.resourceVersion) ctx.changed = true;
}

export async function reconcileCertificates(ctx: ControllerContext): Promise<void> {
  for (const cert of await ctx.store.list<Certificate>(CERTIFICATE)) {
    await guarded(ctx, label(cert), () => reconcileCertificate(ctx, cert));
  }
}
