import { X509Certificate } from 'node:crypto';
import type { IstioCaClient } from './serve/ca-client.js';

/** Polls f until it returns something other than undefined or false, or throws after `ms`. */
export async function until<T>(what: string, f: () => Promise<T | undefined> | T | undefined, ms: number, every = 50): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/** A certificate serial as the audit and ca_material store it: lowercase hex without leading zeros. */
export const serialOf = (pem: string) => new X509Certificate(pem).serialNumber.toLowerCase().replace(/^0+/, '');

export interface Received {
  serial: string;
  intermediate: string;
  replica: number;
  attempts: number;
  chain: string[];
}

/**
 * Clients that keep asking replicas for certificates, one loop per CSR, each request retried on the
 * next replica (up to 40 attempts) the way a proxy retries behind a Service: what the HA tests count.
 */
export function replicaLoad(clients: IstioCaClient[], csrs: string[], tokens: string[], pauseMs = 0) {
  const received: Received[] = [];
  /** Failed attempts by replica and gRPC status: which replica failed, and how. */
  const errors = new Map<string, number>();
  const out = { received, errors, failed: 0, retried: 0 };
  let stopped = false;
  const loop = async (k: number) => {
    let turn = k;
    while (!stopped) {
      let ok = false;
      for (let attempt = 1; attempt <= 40 && !ok; attempt++) {
        const ix = turn++ % clients.length;
        try {
          const res = await clients[ix].createCertificate({ csr: csrs[k] }, { token: tokens[k] });
          received.push({
            serial: serialOf(res.certChain[0]),
            intermediate: serialOf(res.certChain[1]),
            replica: ix,
            attempts: attempt,
            chain: res.certChain,
          });
          if (attempt > 1) out.retried++;
          ok = true;
        } catch (e) {
          const key = `replica ${ix} ${(e as { code?: number }).code ?? '?'}`;
          errors.set(key, (errors.get(key) ?? 0) + 1);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      if (!ok) out.failed++;
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
  };
  const loops = csrs.map((_, k) => loop(k));
  return {
    ...out,
    get failed() {
      return out.failed;
    },
    get retried() {
      return out.retried;
    },
    /** Ends every loop after its current request. */
    async stop(): Promise<void> {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

/**
 * The replica whose log says the upstream answered a renewal request (generation 2 or later), held
 * there by the renewal failpoint: where a kill lands after IssueCertificate and before the commit.
 */
export function renewalIssuedBy(procs: { stderr(): string }[]): { ix: number; generation: number; arn: string } | undefined {
  for (const [ix, p] of procs.entries()) {
    const lines = p
      .stderr()
      .matchAll(/"generation":(\d+),"certificateArn":"([^"]+)","msg":"the upstream issued the intermediate; recording it"/g);
    const m = [...lines].find((x) => Number(x[1]) >= 2);
    if (m) return { ix, generation: Number(m[1]), arn: m[2] };
  }
  return undefined;
}
