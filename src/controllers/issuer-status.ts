import { errorMessage } from '../pki/errors.js';
import { objectKey, setCondition } from '../resources/meta.js';
import { guarded, issuerDeps, record, type ControllerContext } from './context.js';
import { backendFor, ISSUER_KIND_INFOS, type FoundIssuer } from './issuers/index.js';

/**
 * Issuer readiness, per type with cert-manager's wording: selfSigned is always Ready; ca once
 * its key pair is verified ("Signing CA verified"); AWSPCAIssuer once DescribeCertificateAuthority
 * shows an ACTIVE CA ("Issuer verified"); meshca once the root (or cluster intermediate) loads.
 */
export async function reconcileIssuer(ctx: ControllerContext, found: FoundIssuer): Promise<void> {
  if (ctx.dryRun) return;
  const { kind, object } = found;
  const backend = backendFor(found, issuerDeps(ctx));
  let cond: { status: 'True' | 'False'; reason: string; message: string };
  try {
    cond = { status: 'True', ...(await backend.verify()) };
  } catch (e) {
    cond = { status: 'False', reason: backend.notReadyReason, message: errorMessage(e) };
  }
  const conditions = setCondition(
    object.status?.conditions,
    { type: 'Ready', ...cond, observedGeneration: object.metadata.generation },
    ctx.now,
  );
  const saved = await ctx.store.updateStatus(kind, { ...object, status: { ...object.status, conditions } });
  if (saved.metadata.resourceVersion !== object.metadata.resourceVersion) {
    ctx.changed = true;
    record(ctx, {
      object: `${kind.kind} ${objectKey(object.metadata)}`,
      action: cond.status === 'True' ? 'ready' : 'not-ready',
      message: cond.message || cond.reason,
      warning: cond.status !== 'True',
    });
  }
}

export async function reconcileIssuers(ctx: ControllerContext): Promise<void> {
  for (const kind of ISSUER_KIND_INFOS) {
    for (const object of await ctx.store.list<FoundIssuer['object']>(kind)) {
      await guarded(ctx, `${kind.kind} ${objectKey(object.metadata)}`, () => reconcileIssuer(ctx, { kind, object }));
    }
  }
}
