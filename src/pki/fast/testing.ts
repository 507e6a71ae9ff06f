/**
 * Test support for the fast-path tests (not used by the program): small CA hierarchies,
 * TBS extraction, and the openssl CLI in a temporary directory.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPrivateKey, type KeyObject } from 'node:crypto';
import type { Signer } from '../issue.js';
import { generateKeyPair, type KeyAlgorithm } from '../keys.js';
import { createIntermediateCertificate, createRootCertificate } from '../profiles.js';
import { expectTlv } from './der.js';

/** A root and an intermediate of the given algorithm, the intermediate being the signer. */
export function makeSigner(alg: KeyAlgorithm, now: Date, days = { root: 3650, intermediate: 365 }, rootKey?: KeyObject): Signer {
  const rk = rootKey ?? generateKeyPair('ec-p256').privateKey;
  const root = createRootCertificate({ key: rk, now, days: days.root, subject: { organization: ['meshca test'], commonName: 'root' } });
  const ik = generateKeyPair(alg);
  const inter = createIntermediateCertificate({
    issuerCert: root,
    issuerKey: rk,
    publicKey: ik.publicKey,
    subject: { organization: ['meshca test'], commonName: `intermediate ${alg}` },
    days: days.intermediate,
    now,
  }).cert;
  return { cert: inter, key: ik.privateKey, chain: [root] };
}

/** The TBSCertificate bytes of a certificate (its first element). */
export function tbsOf(certDer: Buffer): Buffer {
  const outer = expectTlv(certDer, 0, certDer.length, 0x30, 'Certificate');
  const tbs = expectTlv(certDer, outer.body, outer.end, 0x30, 'TBSCertificate');
  return certDer.subarray(tbs.start, tbs.end);
}

/** A temporary directory for openssl, removed by the returned cleanup. */
export function tempDir(): { dir: string; file: (name: string, content?: string | Buffer) => string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'meshca-fast-'));
  return {
    dir,
    file: (name, content) => {
      const p = join(dir, name);
      if (content !== undefined) writeFileSync(p, content);
      return p;
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function openssl(args: string[], cwd?: string): Run {
  const r = spawnSync('openssl', args, { encoding: 'utf8', cwd });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** A CSR made by the openssl CLI (keys of any size or curve, even ones meshca refuses), as DER, with its key. */
export function opensslCsrWithKey(newkey: string[], extra: string[] = []): { der: Buffer; key: KeyObject } {
  const t = tempDir();
  try {
    const out = t.file('req.der');
    const keyFile = t.file('key.pem');
    const r = openssl([
      'req',
      '-new',
      ...newkey,
      '-nodes',
      '-keyout',
      keyFile,
      '-subj',
      '/O=test',
      ...extra,
      '-outform',
      'DER',
      '-out',
      out,
    ]);
    if (r.status !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
    return { der: readFileSync(out), key: createPrivateKey(readFileSync(keyFile)) };
  } finally {
    t.cleanup();
  }
}

export function opensslCsr(newkey: string[], extra: string[] = []): Buffer {
  return opensslCsrWithKey(newkey, extra).der;
}
