/**
 * Helpers for the live reload and rotation tests: `meshca serve` and `meshca agent` as long-lived
 * children, and a pair of Node mTLS endpoints that read the agents' files afresh for every
 * handshake, as a sidecar watching its certificate directory would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, realpathSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { MESHCA_BIN, REPO_ROOT } from '../helpers/run.js';

export interface Child {
  child: ChildProcess;
  /** The first stdout line parsed as JSON (`meshca serve`'s "listening" record). */
  ready: Promise<Record<string, unknown>>;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number>;
  stop(): Promise<number>;
}

/** `node bin/meshca.js ...args`, killed after `killAfterMs` at the latest so that a hang fails the test. */
export function spawnMeshca(args: string[], o: { killAfterMs?: number; env?: Record<string, string> } = {}): Child {
  const env: NodeJS.ProcessEnv = { ...process.env, ...o.env };
  delete env.MESHCA_HOME;
  delete env.MESHCA_KEY_PASSPHRASE;
  const child = spawn(process.execPath, [MESHCA_BIN, ...args], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number>((resolve) => child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1))));
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)) as Record<string, unknown>);
    });
    void exited.then((code) => reject(new Error(`meshca ${args[0]} exited with ${code}: ${err}`)));
  });
  ready.catch(() => {});
  const timer = setTimeout(() => child.kill('SIGKILL'), o.killAfterMs ?? 120_000);
  void exited.then(() => clearTimeout(timer));
  return {
    child,
    ready,
    stdout: () => out,
    stderr: () => err,
    exited,
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

export interface WorkloadFiles {
  chain: string;
  key: string;
  root: string;
}

/**
 * The agent's three files from one published version: resolving `..data` once and reading inside
 * that version directory never mixes a new certificate with an old key. A version retired while
 * reading (ENOENT) is retried with the next one.
 */
export function readWorkload(dir: string): WorkloadFiles {
  for (let i = 0; ; i++) {
    try {
      const v = realpathSync(join(dir, '..data'));
      return {
        chain: readFileSync(join(v, 'cert-chain.pem'), 'utf8'),
        key: readFileSync(join(v, 'key.pem'), 'utf8'),
        root: readFileSync(join(v, 'root-cert.pem'), 'utf8'),
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || i >= 20) throw e;
    }
  }
}

/** The SPIFFE ID a TLS peer presented. */
export function peerId(s: tls.TLSSocket): string | undefined {
  return /URI:(spiffe:\/\/[^,]+)/.exec(s.getPeerCertificate().subjectaltname ?? '')?.[1];
}

export interface Backend {
  port: number;
  /** Handshakes the server side refused (tlsClientError) and peers it hung up on. */
  serverErrors: string[];
  close(): Promise<void>;
}

/**
 * The server workload: requestCert + rejectUnauthorized, its certificate, key and CA (root-cert.pem)
 * re-read for every handshake through SNICallback (Node then verifies the client against that
 * context's CAs), and only `allowed` may talk to it. Echoes each line as "pong <line>".
 */
export async function startBackend(dir: string, allowed: string): Promise<Backend> {
  const ctx = () => {
    const f = readWorkload(dir);
    return tls.createSecureContext({ key: f.key, cert: f.chain, ca: f.root });
  };
  const first = readWorkload(dir);
  const serverErrors: string[] = [];
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer(
    {
      key: first.key,
      cert: first.chain,
      ca: first.root,
      requestCert: true,
      rejectUnauthorized: true,
      SNICallback: (_name, cb) => {
        try {
          cb(null, ctx());
        } catch (e) {
          cb(e as Error);
        }
      },
    },
    (s) => {
      if (peerId(s) !== allowed) {
        serverErrors.push(`peer ${peerId(s)} is not ${allowed}`);
        s.destroy();
        return;
      }
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
      s.on('error', () => {});
      let buf = '';
      s.on('data', (d: Buffer) => {
        buf += d.toString();
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          s.write(`pong ${buf.slice(0, nl)}\n`);
          buf = buf.slice(nl + 1);
        }
      });
    },
  );
  server.on('tlsClientError', (e) => serverErrors.push(e.message));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    serverErrors,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A client connection with the frontend's files as they are now, checking that the server is `expect`. */
export function connectClient(port: number, dir: string, expect: string): tls.TLSSocket {
  const f = readWorkload(dir);
  return tls.connect({
    host: '127.0.0.1',
    port,
    // Sent so that the backend's SNICallback runs; workload certificates name no host, the
    // SPIFFE ID is checked instead, as Envoy's SAN matcher does.
    servername: 'backend.mesh.internal',
    ca: f.root,
    cert: f.chain,
    key: f.key,
    checkServerIdentity: (_h, cert) =>
      cert.subjectaltname === `URI:${expect}` ? undefined : new Error(`server is ${cert.subjectaltname}, not ${expect}`),
  });
}

/** One short mTLS exchange: handshake, "ping", "pong". Resolves with an error message or undefined. */
export function handshakeOnce(port: number, dir: string, expect: string, timeoutMs = 3000): Promise<string | undefined> {
  return new Promise((resolve) => {
    let s: tls.TLSSocket | undefined;
    let done = false;
    const finish = (err?: string) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      s?.destroy();
      resolve(err);
    };
    const t = setTimeout(() => finish('timed out'), timeoutMs);
    try {
      s = connectClient(port, dir, expect);
    } catch (e) {
      return finish(`reading the workload files: ${(e as Error).message}`);
    }
    let got = '';
    const sock = s;
    sock.on('secureConnect', () => sock.write('hello\n'));
    sock.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.includes('pong hello\n')) finish();
    });
    sock.on('error', (e) => finish(e.message));
    sock.on('close', () => finish(`closed before the answer (got "${got}")`));
  });
}

/** A connection opened once and kept busy: a line every `everyMs`, each answer checked. */
export function longLived(
  port: number,
  dir: string,
  expect: string,
  everyMs = 100,
): { sent: () => number; answered: () => number; errors: string[]; stop(): void } {
  const errors: string[] = [];
  let sent = 0;
  let answered = 0;
  let stopped = false;
  const s = connectClient(port, dir, expect);
  let buf = '';
  s.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      if (buf.slice(0, nl) === `pong ${answered}`) answered++;
      else errors.push(`unexpected answer "${buf.slice(0, nl)}"`);
      buf = buf.slice(nl + 1);
    }
  });
  s.on('error', (e) => errors.push(e.message));
  s.on('close', () => {
    if (!stopped) errors.push('the long-lived connection closed');
  });
  const timer = setInterval(() => {
    if (s.writable && sent - answered < 50) s.write(`${sent++}\n`);
  }, everyMs);
  return {
    sent: () => sent,
    answered: () => answered,
    errors,
    stop: () => {
      stopped = true;
      clearInterval(timer);
      s.destroy();
    },
  };
}

/** A long-running `meshca agent` for one workload. */
export function startAgent(o: {
  caAddr: string;
  caRoot: string;
  tokenFile: string;
  out: string;
  renewAt?: number;
  extra?: string[];
}): Child {
  return spawnMeshca(
    [
      'agent',
      '--ca-addr',
      o.caAddr,
      '--ca-root',
      o.caRoot,
      '--token-file',
      o.tokenFile,
      '--out',
      o.out,
      '--key-algorithm',
      'ec-p256',
      '--renew-at',
      String(o.renewAt ?? 0.5),
      ...(o.extra ?? []),
    ],
    { killAfterMs: 180_000 },
  );
}

/** Agent log lines by kind: "issued ... auth=mtls|token" and "issuance failed". */
export function agentStats(stderr: string): { issued: number; mtls: number; token: number; failed: string[] } {
  const lines = stderr.split('\n');
  return {
    issued: lines.filter((l) => l.includes('meshca agent: issued ')).length,
    mtls: lines.filter((l) => l.includes('meshca agent: issued ') && l.includes('auth=mtls')).length,
    token: lines.filter((l) => l.includes('meshca agent: issued ') && l.includes('auth=token')).length,
    failed: lines.filter((l) => l.includes('issuance failed')),
  };
}

export async function waitFor<T>(
  what: string,
  f: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 30_000,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The Gloo RootTrustPolicy the rotation and renewal tests apply: RSA-2048 root and intermediates, plus intermediate options. */
export function rootTrustPolicyYaml(intermediate: Record<string, number> = {}): string {
  const extra = Object.entries(intermediate)
    .map(([k, v]) => `      ${k}: ${v}\n`)
    .join('');
  return `apiVersion: admin.gloo.solo.io/v2
kind: RootTrustPolicy
metadata:
  name: root-trust-policy
  namespace: gloo-mesh
spec:
  config:
    mgmtServerCa:
      generated:
        rsaKeySizeBytes: 2048
    intermediateCertOptions:
      rsaKeySizeBytes: 2048
${extra}`;
}
