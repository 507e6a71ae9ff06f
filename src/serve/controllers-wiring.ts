import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { embeddedControllers, startReconcileLoop } from '../controllers/index.js';
import { restoreSharedCacerts, sharedCacertsSink, type SharedCacerts } from '../k8s/shared-cacerts.js';
import type { LeaderTask } from '../leader/index.js';
import { errorMessage } from '../pki/errors.js';
import { CACERTS } from '../resources/file-secrets.js';

/**
 * The declarative controllers (Certificates, issuers, RootTrustPolicies, RootRotations) inside
 * `meshca serve`, so that renewals happen at their renewalTime and rotation phases advance on
 * their own instead of waiting for someone to run `meshca reconcile`. They run on the leader only:
 * the single process, the primary of --workers, or the holder of the Lease / advisory lock, and
 * stop scheduling the moment the leadership signal aborts (a pass already running finishes; it
 * holds the state directory's reconcile lock, so nothing else writes meanwhile).
 */

export interface ControllersWiringDeps {
  dir: string;
  /** The server's leadership: onLeader(cb) runs cb(signal) at each term, as runWhileLeading does for an elector. */
  leader: { onLeader(cb: (signal: AbortSignal) => void): void };
  log: Logger;
  now: () => Date;
  passphrase?: string;
  /** A controller in this process finished writing a cluster's cacerts (the served bundle reloads at once). */
  onCacertsWrite?: (cluster: string) => void;
  /** How often to look for resources changed by another process (`meshca apply`); default 1 s. */
  resourcePollMs?: number;
  /** Longest sleep between passes when nothing is due; default 60 s. */
  maxIntervalMs?: number;
  /** Replicas sharing a state Secret: per-cluster bundles are saved there and restored by each new leader. */
  shared?: SharedCacerts;
}

/**
 * Names, sizes and mtimes of every stored object: a change means another process applied,
 * deleted or updated something. Dot-files (the reconcile lock, temporaries) are left out.
 */
export function resourcesSignature(root: string): string {
  const parts: string[] = [];
  const walk = (d: string): void => {
    let names: string[];
    try {
      names = readdirSync(d).sort();
    } catch {
      return;
    }
    for (const n of names) {
      if (n.startsWith('.')) continue;
      const p = join(d, n);
      try {
        const s = statSync(p);
        if (s.isDirectory()) walk(p);
        else parts.push(`${p}:${s.size}:${s.mtimeMs}`);
      } catch {
        // Removed while walking: the next look sees the result.
      }
    }
  };
  walk(root);
  return parts.join('\n');
}

/** One leadership term of the controllers: a reconcile loop until `signal` aborts. */
export function controllersTask(d: ControllersWiringDeps): LeaderTask {
  const log = d.log.child({ component: 'controllers' });
  return async (signal) => {
    if (signal.aborted) return;
    const embedded = embeddedControllers(d.dir, { passphrase: d.passphrase });
    if (d.shared && !(await restoreShared(embedded.secrets, d.shared, log, signal))) return;
    const c = d.shared ? { ...embedded, secrets: sharedCacertsSink(embedded.secrets, d.shared, signal) } : embedded;
    const off = c.secrets.onChange((ch) => {
      if (ch.ref.cluster && ch.ref.namespace === CACERTS.namespace && ch.ref.name === CACERTS.name) d.onCacertsWrite?.(ch.ref.cluster);
    });
    const loop = startReconcileLoop(c, {
      clock: d.now,
      maxIntervalMs: d.maxIntervalMs ?? 60_000,
      onReport: (r) => {
        for (const e of r.events) (e.warning ? log.warn.bind(log) : log.info.bind(log))({ object: e.object, action: e.action }, e.message);
      },
      onError: (e) => log.error({ err: errorMessage(e) }, 'reconcile pass failed; retrying at the next wakeup'),
    });
    // Our own writes change the signature too; that costs one pass that finds nothing to do.
    let seen = resourcesSignature(c.store.root);
    const poll = setInterval(() => {
      const s = resourcesSignature(c.store.root);
      if (s === seen) return;
      seen = s;
      loop.trigger();
    }, d.resourcePollMs ?? 1000);
    poll.unref();
    log.info({ dir: d.dir }, 'controllers started (leader)');
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    clearInterval(poll);
    off();
    await loop.stop();
    log.info({ reason: errorMessage(signal.reason) }, 'controllers stopped');
  };
}

/** A new leader's first step: the bundles its predecessors saved, retried until they load or the term ends. */
async function restoreShared(
  local: ReturnType<typeof embeddedControllers>['secrets'],
  shared: SharedCacerts,
  log: Logger,
  signal: AbortSignal,
): Promise<boolean> {
  for (;;) {
    try {
      const restored = await restoreSharedCacerts(local, shared);
      log.info({ secret: shared.description, restored }, 'cluster bundles loaded from the state secret');
      return true;
    } catch (e) {
      log.error({ err: errorMessage(e) }, 'cannot read the cluster bundles from the state secret; retrying');
    }
    await new Promise((r) => setTimeout(r, 2000));
    if (signal.aborted) return false;
  }
}

/** Registers the controllers on the server's leadership; returns a close() that waits for a running pass. */
export function wireControllers(d: ControllersWiringDeps): { close(): Promise<void> } {
  const running = new Set<Promise<void>>();
  const task = controllersTask(d);
  // The server may close before its leadership ends (cleanup order); closing ends the term's task too.
  const closing = new AbortController();
  d.leader.onLeader((term) => {
    const signal = AbortSignal.any([term, closing.signal]);
    const p = task(signal).catch((e: unknown) =>
      d.log.error({ err: errorMessage(e) }, 'controllers failed; they restart at the next leadership term'),
    );
    running.add(p);
    void p.finally(() => running.delete(p));
  });
  return {
    close: async () => {
      closing.abort(new Error('server closing'));
      await Promise.all(running);
    },
  };
}
