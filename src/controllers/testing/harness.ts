import { createPublicKey } from 'node:crypto';
import type { CaState } from '../../ca/state.js';
import { parseCsr } from '../../pki/csr.js';
import { generateKeyPair } from '../../pki/keys.js';
import { createRootCertificate } from '../../pki/profiles.js';
import { kindByName, kindFor, type KindInfo } from '../../resources/kinds.js';
import type { Resource, ResourceInput } from '../../resources/meta.js';
import type { Upstream } from '../../upstream/index.js';
import { embeddedControllers } from '../embedded.js';
import { signFromTemplate } from '../issuers/template.js';
import type { UpstreamFactory } from '../issuers/types.js';
import { reconcileAll, type Controllers, type ReconcileReport } from '../reconcile.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** An in-memory stand-in for AWS Private CA: a root that signs whatever it is asked. */
export function fakePca(now: () => Date, o: { failCheck?: string; failSign?: string } = {}) {
  const kp = generateKeyPair('ec-p256');
  const root = createRootCertificate({
    key: kp.privateKey,
    subject: { organization: ['Fake PCA'], commonName: 'fake pca root' },
    days: 3650,
    now: new Date(now().getTime() - 86_400_000),
  });
  const calls = { check: 0, sign: 0 };
  const upstream: Upstream = {
    type: 'awspca',
    source: 'fake',
    async check() {
      calls.check++;
      if (o.failCheck) throw new Error(o.failCheck);
    },
    async signIntermediate(req) {
      calls.sign++;
      if (o.failSign) throw new Error(o.failSign);
      const cert = signFromTemplate({
        csr: parseCsr(req.csrPem),
        issuerCert: root,
        issuerKey: kp.privateKey,
        durationMs: req.ttlSeconds * 1000,
        isCA: true,
        usages: ['cert sign', 'digital signature'],
        now: now(),
      });
      return { cert, chain: [root] };
    },
    async signWorkload(req) {
      calls.sign++;
      const cert = signFromTemplate({
        csr: parseCsr(req.csrPem),
        issuerCert: root,
        issuerKey: kp.privateKey,
        durationMs: req.ttlSeconds * 1000,
        isCA: false,
        usages: ['digital signature'],
        now: now(),
      });
      return { cert, chain: [root] };
    },
    async roots() {
      return [root];
    },
  };
  const factory: UpstreamFactory = async () => upstream;
  return { root, upstream, factory, calls, publicKey: createPublicKey(kp.privateKey) };
}

export interface Harness extends Controllers {
  dir: string;
  state: CaState;
  apply(...inputs: ResourceInput<Record<string, unknown>>[]): Promise<void>;
  get<T extends Resource>(kind: string, name: string, namespace?: string): Promise<T>;
  reconcile(now: Date, dryRun?: boolean): Promise<ReconcileReport>;
  cleanup(): void;
}

function kindOf(input: { apiVersion: string; kind: string }): KindInfo {
  const k = kindFor(input.apiVersion, input.kind).info;
  if (!k) throw new Error(`unknown kind ${input.kind}`);
  return k;
}

/** Embedded controllers in a temporary state directory, with a fake AWS PCA by default. */
export function harness(now: () => Date, upstreams?: UpstreamFactory): Harness {
  const dir = mkdtempSync(join(tmpdir(), 'meshca-ctrl-'));
  const c = embeddedControllers(dir);
  c.upstreams = upstreams ?? fakePca(now).factory;
  return {
    ...c,
    dir,
    async apply(...inputs) {
      for (const i of inputs) await c.store.apply(kindOf(i), i, now());
    },
    async get<T extends Resource>(kind: string, name: string, namespace?: string): Promise<T> {
      const k = kindByName(kind);
      const o = await c.store.get<T>(k, name, k.namespaced ? (namespace ?? 'default') : undefined);
      if (!o) throw new Error(`${kind} ${name} not found`);
      return o;
    },
    reconcile: (at, dryRun) => reconcileAll(c, { now: at, dryRun }),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
