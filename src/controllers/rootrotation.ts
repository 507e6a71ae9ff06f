import { parseCertificates, type ParsedCertificate } from '../pki/certificate.js';
import { certLabel } from '../pki/certificate.js';
import { errorMessage, MeshcaError } from '../pki/errors.js';
import { generateKeyPairAsync, privateKeyToPem, type KeyAlgorithm } from '../pki/keys.js';
import { createRootCertificate } from '../pki/profiles.js';
import { istioBundleFiles } from '../ca/bundle.js';
import { parseGoDuration } from '../resources/duration.js';
import type { RootTrustPolicy } from '../resources/gloo.js';
import { CLUSTER, ROOT_ROTATION, ROOT_TRUST_POLICY } from '../resources/kinds.js';
import type { Cluster, RootRotation, RootRotationStatus, RotationPhase } from '../resources/meshca.js';
import { ROTATION_PHASES } from '../resources/meshca.js';
import { objectKey, setCondition } from '../resources/meta.js';
import { MANAGED_BY_LABEL, OWNER_ANNOTATION, type SecretRef } from '../resources/secrets.js';
import { caFromSecret, type SigningCa } from './ca-material.js';
import { guarded, record, wakeAt, type ControllerContext } from './context.js';
import { basePlan, generatedRootOptions, type TrustPlan } from './trust-plan.js';
import { pendingDeliveries } from './delivery.js';
import { CACERTS } from '../resources/file-secrets.js';
import { generatingKey } from '../util/progress.js';

const DEFAULT_WINDOW_MS = 24 * 3_600_000;

function owner(rot: RootRotation): string {
  return `RootRotation/${rot.metadata.name}`;
}

function label(rot: RootRotation): string {
  return `RootRotation ${rot.metadata.name}`;
}

function policyKey(rot: RootRotation): { name: string; namespace: string } {
  return { name: rot.spec.rootTrustPolicyRef.name, namespace: rot.spec.rootTrustPolicyRef.namespace ?? 'gloo-mesh' };
}

/** The new CA: generated into a secret meshca owns, or the user's secret. */
function newRootRef(rot: RootRotation): SecretRef {
  const p = policyKey(rot);
  const ref = rot.spec.newRoot?.secretRef;
  return ref
    ? { namespace: ref.namespace ?? p.namespace, name: ref.name }
    : { namespace: p.namespace, name: `${rot.metadata.name}-new-root` };
}

/** The trust roots in force when the rotation started, kept so that they stay trusted however the policy changes meanwhile. */
function oldRootsRef(rot: RootRotation): SecretRef {
  return { namespace: policyKey(rot).namespace, name: `${rot.metadata.name}-old-root` };
}

function windowMs(rot: RootRotation): number {
  return rot.spec.workloadRenewalWindow !== undefined ? parseGoDuration(rot.spec.workloadRenewalWindow)! : DEFAULT_WINDOW_MS;
}

function phaseOf(rot: RootRotation): RotationPhase {
  return rot.status?.phase ?? 'Pending';
}

function paused(rot: RootRotation): boolean {
  return rot.spec.pauseAfter === phaseOf(rot);
}

function elapsed(since: string | undefined, ms: number, now: Date): boolean {
  return since !== undefined && now.getTime() >= Date.parse(since) + ms;
}

function isActive(rot: RootRotation): boolean {
  return phaseOf(rot) !== 'Complete';
}

async function loadNewCa(ctx: ControllerContext, rot: RootRotation): Promise<SigningCa | undefined> {
  const ref = newRootRef(rot);
  const s = await ctx.secrets.get(ref);
  return s ? caFromSecret(s, `secret ${ref.namespace}/${ref.name}`) : undefined;
}

async function loadOldRoots(ctx: ControllerContext, rot: RootRotation): Promise<ParsedCertificate[] | undefined> {
  const s = await ctx.secrets.get(oldRootsRef(rot));
  const pem = s?.data['root-cert.pem'];
  return pem ? parseCertificates(pem.toString('utf8'), 'old root-cert.pem') : undefined;
}

function union(a: ParsedCertificate[], b: ParsedCertificate[]): ParsedCertificate[] {
  return [...a, ...b.filter((x) => !a.some((y) => y.der.equals(x.der)))];
}

/**
 * The plan a policy's clusters follow while a rotation of it is under way; undefined when none is.
 * Signer and trust bundle per phase, as described on ROTATION_PHASES; a paused rotation holds
 * the plan of the milestone it reached.
 */
export async function rotationPlan(ctx: ControllerContext, rtp: RootTrustPolicy, base: TrustPlan): Promise<TrustPlan | undefined> {
  const rot = (await rotationsOf(ctx, rtp)).find(
    (r) => isActive(r) || (r.spec.newRoot?.secretRef && base.signerRoot.fingerprint256 === r.status?.oldRootFingerprint),
  );
  if (!rot) return undefined;
  const phase = phaseOf(rot);
  if (phase === 'Pending') return undefined;
  const next = await loadNewCa(ctx, rot);
  const old = (await loadOldRoots(ctx, rot)) ?? base.trustRoots;
  if (!next)
    throw new MeshcaError(
      'failed_precondition',
      'rotation_material',
      `${label(rot)}: the new root's secret ${objectKey(newRootRef(rot))} is missing`,
    );
  const newRoot = next.roots[0];
  const oldSigner: TrustPlan = { ...base };
  const both = union(old, next.roots);
  const hold = paused(rot);
  switch (phase) {
    case 'NewRootCreated':
      return hold ? undefined : { ...oldSigner, trustRoots: both };
    case 'TrustBundleExpanded':
      if (!hold && elapsed(rot.status?.trustExpandedAt, windowMs(rot), ctx.now))
        return { signer: next, signerRoot: newRoot, trustRoots: both };
      return { ...oldSigner, trustRoots: both };
    case 'IntermediatesReissued':
      return { signer: next, signerRoot: newRoot, trustRoots: both };
    case 'WorkloadsRenewed':
      return { signer: next, signerRoot: newRoot, trustRoots: hold ? both : next.roots };
    default:
      return { signer: next, signerRoot: newRoot, trustRoots: next.roots };
  }
}

async function rotationsOf(ctx: ControllerContext, rtp: RootTrustPolicy): Promise<RootRotation[]> {
  return (await ctx.store.list<RootRotation>(ROOT_ROTATION)).filter((r) => {
    const p = policyKey(r);
    return p.name === rtp.metadata.name && p.namespace === rtp.metadata.namespace;
  });
}

/** Every registered cluster's cacerts, as (root fingerprints, issuing-CA certificate). */
async function clusterBundles(ctx: ControllerContext): Promise<{ cluster: string; roots: string[]; ca?: ParsedCertificate }[]> {
  const out = [];
  for (const c of await ctx.store.list<Cluster>(CLUSTER)) {
    const s = await ctx.secrets.get({ cluster: c.metadata.name, ...CACERTS });
    let roots: string[];
    let ca: ParsedCertificate | undefined;
    try {
      roots = s?.data['root-cert.pem'] ? parseCertificates(s.data['root-cert.pem'].toString('utf8')).map((r) => r.fingerprint256) : [];
      ca = s?.data['ca-cert.pem'] ? parseCertificates(s.data['ca-cert.pem'].toString('utf8'))[0] : undefined;
    } catch {
      roots = [];
    }
    out.push({ cluster: c.metadata.name, roots, ca });
  }
  return out;
}

function sameSet(a: string[], b: string[]): boolean {
  return a.length === b.length && [...a].sort().join() === [...b].sort().join();
}

function signedBy(cert: ParsedCertificate | undefined, issuer: ParsedCertificate): boolean {
  if (!cert || !cert.issuerDer.equals(issuer.subjectDer)) return false;
  try {
    return cert.node.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/** Makes (or, after a crash, finds) the new root; writes it before the phase that names it is recorded. */
async function ensureNewRoot(ctx: ControllerContext, rot: RootRotation, rtp: RootTrustPolicy): Promise<SigningCa> {
  const existing = await loadNewCa(ctx, rot);
  if (existing) return existing;
  if (rot.spec.newRoot?.secretRef) {
    const r = newRootRef(rot);
    throw new MeshcaError('not_found', 'new_root_missing', `newRoot.secretRef: secret ${r.namespace}/${r.name} not found`);
  }
  const g = rot.spec.newRoot?.generated ?? {};
  const fallback = generatedRootOptions(rtp.spec.config?.mgmtServerCa?.generated);
  const alg = (g.rsaKeySizeBytes ? `rsa-${g.rsaKeySizeBytes}` : fallback.alg) as KeyAlgorithm;
  // Off the event loop, like the intermediates (roottrustpolicy.ts): the server keeps answering meanwhile.
  const kp = await generatingKey(ctx.progress, alg, `the new root of RootRotation ${rot.metadata.name}`, () => generateKeyPairAsync(alg));
  const cert = createRootCertificate({
    key: kp.privateKey,
    subject: {
      organization: [g.orgName ?? fallback.orgName],
      commonName: `meshca root ${ctx.now.toISOString().slice(0, 10)} (${rot.metadata.name})`,
    },
    days: g.ttlDays ?? fallback.days,
    now: ctx.now,
  });
  const data: Record<string, Buffer> = {};
  for (const f of istioBundleFiles({ caCert: cert, caKey: kp.privateKey, chain: [cert], roots: [cert] }))
    data[f.name] = Buffer.from(f.data);
  await ctx.secrets.put(
    newRootRef(rot),
    { data, labels: { [MANAGED_BY_LABEL]: 'meshca' }, annotations: { [OWNER_ANNOTATION]: owner(rot) } },
    { owner: owner(rot) },
  );
  return { cert, key: kp.privateKey, above: [], roots: [cert] };
}

/**
 * Root rotation with no downtime (SPIRE's prepare/activate/retire, Gloo's staged rotation):
 * widen every cluster's trust bundle to old + new, wait for workloads to learn it, re-issue
 * intermediates under the new root, wait for workloads to renew onto it, withdraw the old root,
 * then make the new root the policy's. One phase per call; `reconcileAll` repeats passes, so a
 * pass goes as far as the clusters and the clock allow. The work itself is done by the
 * RootTrustPolicy controller following `rotationPlan`.
 */
export async function reconcileRootRotation(ctx: ControllerContext, rot: RootRotation): Promise<void> {
  const status: RootRotationStatus = { ...(rot.status ?? {}) };
  const phase = phaseOf(rot);
  if (phase === 'Complete') return;
  const p = policyKey(rot);
  const rtp = await ctx.store.get<RootTrustPolicy>(ROOT_TRUST_POLICY, p.name, p.namespace);
  const wait = async (message: string, warning = false) => {
    if (status.message !== message) record(ctx, { object: label(rot), action: 'waiting', message, warning });
    status.message = message;
    if (!ctx.dryRun) await save(ctx, rot, status);
  };
  const advance = async (to: RotationPhase, message: string, extra: Partial<RootRotationStatus> = {}) => {
    if (ctx.dryRun) {
      record(ctx, { object: label(rot), action: 'would-advance', message: `${phase} -> ${to}: ${message}` });
      return;
    }
    Object.assign(status, extra);
    status.phase = to;
    status.message = message;
    status.history = [...(status.history ?? []), { phase: to, time: ctx.now.toISOString(), message }];
    status.conditions = setCondition(
      status.conditions,
      { type: 'Complete', status: to === 'Complete' ? 'True' : 'False', reason: to, message },
      ctx.now,
    );
    record(ctx, { object: label(rot), action: 'advanced', message: `${to}: ${message}` });
    await save(ctx, rot, status);
  };
  // A phase that changed cluster bundles is over only once every cluster's API server holds its bundle.
  const undelivered = async (): Promise<boolean> => {
    const pending = await pendingDeliveries(ctx);
    if (pending.length === 0) return false;
    const failing = pending.filter((d) => d.error);
    await wait(
      failing.length > 0
        ? `waiting for delivery to ${failing.map((d) => `cluster ${d.cluster} (${d.error})`).join('; ')}`
        : `waiting for delivery of the bundle to ${pending.map((d) => `cluster ${d.cluster}`).join(', ')}`,
      failing.length > 0,
    );
    return true;
  };
  if (!rtp) return wait(`RootTrustPolicy ${p.namespace}/${p.name} not found`, true);
  if (paused(rot)) return wait(`paused after ${phase} (spec.pauseAfter); remove or raise it to continue`);
  const window = windowMs(rot);
  try {
    switch (phase) {
      case 'Pending': {
        const others = (await rotationsOf(ctx, rtp)).filter(
          (r) => r.metadata.name !== rot.metadata.name && isActive(r) && phaseOf(r) !== 'Pending',
        );
        if (others.length > 0) return wait(`RootRotation ${others[0].metadata.name} is already rotating this policy`);
        if (rtp.spec.config?.mgmtServerCa?.secretRef && !rot.spec.newRoot?.secretRef) {
          return wait('this policy takes its CA from mgmtServerCa.secretRef: give the new CA as newRoot.secretRef', true);
        }
        const base = await basePlan(ctx, rtp);
        if (ctx.dryRun) return advance('NewRootCreated', 'would create the new root');
        await ctx.secrets.put(
          oldRootsRef(rot),
          {
            data: { 'root-cert.pem': Buffer.from(base.trustRoots.map((r) => r.pem).join('')) },
            labels: { [MANAGED_BY_LABEL]: 'meshca' },
            annotations: { [OWNER_ANNOTATION]: owner(rot) },
          },
          { owner: owner(rot) },
        );
        const next = await ensureNewRoot(ctx, rot, rtp);
        if (next.roots[0].fingerprint256 === base.signerRoot.fingerprint256)
          return wait('the new root is the current root; nothing to rotate', true);
        return advance('NewRootCreated', `new root ${certLabel(next.roots[0])} created; adding it to every cluster's trust bundle`, {
          oldRootFingerprint: base.signerRoot.fingerprint256,
          newRootFingerprint: next.roots[0].fingerprint256,
        });
      }
      case 'NewRootCreated': {
        const want = [...new Set([...((await loadOldRoots(ctx, rot)) ?? []).map((r) => r.fingerprint256), status.newRootFingerprint!])];
        const lagging = (await clusterBundles(ctx)).filter((b) => !sameSet(b.roots, want)).map((b) => b.cluster);
        if (lagging.length > 0) return wait(`waiting for ${lagging.join(', ')} to carry both roots in root-cert.pem`);
        if (await undelivered()) return;
        return advance(
          'TrustBundleExpanded',
          `every cluster trusts both roots; intermediates move to the new root after ${rot.spec.workloadRenewalWindow ?? '24h'}`,
          {
            trustExpandedAt: ctx.now.toISOString(),
          },
        );
      }
      case 'TrustBundleExpanded': {
        if (!elapsed(status.trustExpandedAt, window, ctx.now)) {
          const at = new Date(Date.parse(status.trustExpandedAt!) + window);
          wakeAt(ctx, at);
          return wait(`waiting until ${at.toISOString()} for every workload to learn the new root`);
        }
        const next = (await loadNewCa(ctx, rot))!;
        const lagging = (await clusterBundles(ctx)).filter((b) => !signedBy(b.ca, next.cert)).map((b) => b.cluster);
        if (lagging.length > 0) return wait(`re-issuing the intermediates of ${lagging.join(', ')} under the new root`);
        if (await undelivered()) return;
        return advance(
          'IntermediatesReissued',
          `every intermediate chains to the new root; the old root is withdrawn after ${rot.spec.workloadRenewalWindow ?? '24h'}`,
          {
            intermediatesReissuedAt: ctx.now.toISOString(),
          },
        );
      }
      case 'IntermediatesReissued': {
        if (!elapsed(status.intermediatesReissuedAt, window, ctx.now)) {
          const at = new Date(Date.parse(status.intermediatesReissuedAt!) + window);
          wakeAt(ctx, at);
          return wait(`waiting until ${at.toISOString()} for every workload to renew onto the new root`);
        }
        return advance('WorkloadsRenewed', 'workloads have renewed; withdrawing the old root from every trust bundle');
      }
      case 'WorkloadsRenewed': {
        const lagging = (await clusterBundles(ctx)).filter((b) => !sameSet(b.roots, [status.newRootFingerprint!])).map((b) => b.cluster);
        if (lagging.length > 0) return wait(`withdrawing the old root from ${lagging.join(', ')}`);
        if (await undelivered()) return;
        return advance('OldRootWithdrawn', 'no cluster trusts the old root any more');
      }
      case 'OldRootWithdrawn':
        return advance('Complete', await finalize(ctx, rot, rtp));
    }
  } catch (e) {
    return wait(errorMessage(e), true);
  }
}

/**
 * The new root becomes the policy's own. Generated policies: the state directory's root is
 * replaced (the old one stays in the `-old-root` secret). secretRef policies: the operator points
 * the policy at the new secret; until then the finished rotation keeps the new CA in force.
 */
async function finalize(ctx: ControllerContext, rot: RootRotation, rtp: RootTrustPolicy): Promise<string> {
  const next = (await loadNewCa(ctx, rot))!;
  if (rtp.spec.config?.mgmtServerCa?.secretRef) {
    const r = newRootRef(rot);
    return `rotation done; point RootTrustPolicy ${objectKey(rtp.metadata)} mgmtServerCa.secretRef at ${r.namespace}/${r.name}`;
  }
  const current = ctx.state.hasRoot() ? ctx.state.loadRoot() : undefined;
  if (current?.cert.fingerprint256 !== next.cert.fingerprint256) {
    if (current) {
      const old = oldRootsRef(rot);
      const prev = await ctx.secrets.get(old);
      const data = {
        ...(prev?.data ?? {}),
        'ca-cert.pem': Buffer.from(current.cert.pem),
        ...(current.key ? { 'ca-key.pem': Buffer.from(privateKeyToPem(current.key)) } : {}),
      };
      await ctx.secrets.put(old, { data, labels: prev?.labels, annotations: { [OWNER_ANNOTATION]: owner(rot) } }, { owner: owner(rot) });
    }
    ctx.state.importRoot(next.cert.pem, privateKeyToPem(next.key), { force: true });
  }
  return `rotation done; ${certLabel(next.cert)} is now the meshca root (${ctx.state.rootCertPath}); the old root is kept in secret ${objectKey(oldRootsRef(rot))}`;
}

async function save(ctx: ControllerContext, rot: RootRotation, status: RootRotationStatus): Promise<void> {
  const saved = await ctx.store.updateStatus(ROOT_ROTATION, { ...rot, status });
  if (saved.metadata.resourceVersion !== rot.metadata.resourceVersion) ctx.changed = true;
}

export async function reconcileRootRotations(ctx: ControllerContext): Promise<void> {
  for (const rot of await ctx.store.list<RootRotation>(ROOT_ROTATION))
    await guarded(ctx, label(rot), () => reconcileRootRotation(ctx, rot));
}

export { ROTATION_PHASES };
