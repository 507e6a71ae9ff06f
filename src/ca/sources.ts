import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseCertificate, parseCertificates, type ParsedCertificate } from '../pki/certificate.js';
import { parseCsr, type ParsedCsr } from '../pki/csr.js';
import { MeshcaError, errorMessage, invalid } from '../pki/errors.js';
import { decodePemBlocks } from '../pki/pem.js';
import { detectLayout, LAYOUT_FILES, type BundleContents, type BundleLayout } from './bundle-check.js';

/**
 * Reads the places certificates come from (PEM files, bundle directories, Kubernetes Secret
 * manifests, `istioctl proxy-config secret` output) into one shape, for inspect, verify,
 * compare-roots and ca import.
 */

export type SourceKind = 'pem' | 'der' | 'bundle directory' | 'secret manifest' | 'proxy secret';

export interface Source {
  path: string;
  kind: SourceKind;
  layout?: BundleLayout;
  /** The certificates as presented, leaf (or signing CA) first. */
  chain: ParsedCertificate[];
  /** Trust anchors the source carries: root-cert.pem, ca.crt or the ROOTCA secret. */
  roots: ParsedCertificate[];
  /** Where `roots` came from, for messages. */
  rootsFrom?: string;
  csrs: ParsedCsr[];
  /** The first certificate is a signing CA (a plugin-CA bundle), not a workload. */
  caBundle: boolean;
}

const BUNDLE_NAMES = ['ca-cert.pem', 'ca-key.pem', 'cert-chain.pem', 'root-cert.pem', 'tls.crt', 'tls.key', 'ca.crt', 'key.pem'];

/** Prefixes an error with the source it came from, unless the message already names it. */
function inSource<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    const msg = errorMessage(e);
    if (msg.includes(path)) throw e;
    const code = e instanceof MeshcaError ? e.code : 'invalid_argument';
    const reason = e instanceof MeshcaError ? e.reason : 'bad_source';
    throw new MeshcaError(code, reason, `${path}: ${msg}`, { cause: e });
  }
}

/** Reads an input file; a missing or unreadable file is an error naming it (and what it was for). */
export function readInputFile(path: string, what?: string): Buffer {
  const name = what ? `${what} ${path}` : path;
  if (!existsSync(path)) throw new MeshcaError('not_found', 'no_such_file', `${name}: no such file or directory`);
  try {
    return readFileSync(path);
  } catch (e) {
    throw new MeshcaError('invalid_argument', 'unreadable', `${name}: cannot read: ${errorMessage(e)}`, { cause: e });
  }
}

/** The known plugin-CA / workload files present in a directory, by name. */
export function readBundleDir(dir: string): BundleContents {
  const files: BundleContents = {};
  for (const n of BUNDLE_NAMES) {
    const p = join(dir, n);
    if (existsSync(p) && statSync(p).isFile()) files[n] = readFileSync(p, 'utf8');
  }
  return files;
}

/** A plugin-CA bundle's files from a directory or a Kubernetes Secret manifest (cacerts.yaml). */
export function readBundle(path: string): BundleContents {
  if (!existsSync(path)) throw new MeshcaError('not_found', 'no_such_file', `${path}: no such file or directory`);
  if (statSync(path).isDirectory()) return readBundleDir(path);
  return inSource(path, () => {
    const doc = parseDocument(readInputFile(path).toString('utf8'));
    if (!doc || !isSecret(doc)) throw invalid('bad_bundle', 'not a bundle directory or a Kubernetes Secret manifest');
    return secretFiles(doc);
  });
}

function parseDocument(text: string): Record<string, unknown> | undefined {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch {
    return undefined;
  }
  return doc !== null && typeof doc === 'object' && !Array.isArray(doc) ? (doc as Record<string, unknown>) : undefined;
}

function isSecret(doc: Record<string, unknown>): boolean {
  return doc.kind === 'Secret' && (typeof doc.data === 'object' || typeof doc.stringData === 'object');
}

function secretFiles(doc: Record<string, unknown>): BundleContents {
  const files: BundleContents = {};
  for (const [k, v] of Object.entries((doc.data ?? {}) as Record<string, unknown>)) {
    if (typeof v === 'string') files[k] = Buffer.from(v, 'base64').toString('utf8');
  }
  for (const [k, v] of Object.entries((doc.stringData ?? {}) as Record<string, unknown>)) {
    if (typeof v === 'string') files[k] = v;
  }
  return files;
}

/** Reads any supported source; every error names the path. */
export function readSource(path: string): Source {
  if (!existsSync(path)) throw new MeshcaError('not_found', 'no_such_file', `${path}: no such file or directory`);
  if (statSync(path).isDirectory()) return inSource(path, () => fromBundle(path, 'bundle directory', readBundleDir(path)));
  const raw = readInputFile(path);
  const text = raw.toString('utf8');
  return inSource(path, () => {
    if (text.includes('-----BEGIN ')) return fromPem(path, text);
    const doc = parseDocument(text);
    if (doc && findSecretList(doc)) return fromProxySecret(path, doc);
    if (doc && isSecret(doc)) return fromBundle(path, 'secret manifest', secretFiles(doc));
    if (doc) {
      throw invalid(
        'bad_source',
        'unrecognised document: expected PEM, `istioctl proxy-config secret` output (-o json or -o yaml) or a Kubernetes Secret',
      );
    }
    return fromDer(path, raw);
  });
}

function fromPem(path: string, text: string): Source {
  const blocks = decodePemBlocks(text);
  const certBlocks = blocks.filter((b) => b.label === 'CERTIFICATE');
  const chain = certBlocks.map((b, i) => parseCertificate(b.der, certBlocks.length > 1 ? `certificate #${i + 1}` : 'certificate'));
  const csrs = blocks.filter((b) => b.label.endsWith('CERTIFICATE REQUEST')).map((b) => parseCsr(b.der));
  if (chain.length === 0 && csrs.length === 0) throw invalid('bad_pem', 'no PEM "CERTIFICATE" or "CERTIFICATE REQUEST" block found');
  return { path, kind: 'pem', chain, roots: [], csrs, caBundle: false };
}

function fromDer(path: string, der: Buffer): Source {
  try {
    return { path, kind: 'der', chain: [parseCertificate(der)], roots: [], csrs: [], caBundle: false };
  } catch {
    try {
      return { path, kind: 'der', chain: [], roots: [], csrs: [parseCsr(der)], caBundle: false };
    } catch {
      throw invalid('bad_source', 'not a certificate source: expected PEM, DER, JSON or YAML');
    }
  }
}

function fromBundle(path: string, kind: SourceKind, files: BundleContents): Source {
  const layout = detectLayout(files) ?? ('cert-chain.pem' in files || 'root-cert.pem' in files ? 'istio' : undefined);
  if (!layout) {
    throw invalid('bad_bundle', 'no certificate files found: expected ca-cert.pem, cert-chain.pem, root-cert.pem (or tls.crt, ca.crt)');
  }
  const names = LAYOUT_FILES[layout];
  const pick = (n: string): ParsedCertificate[] => (n in files ? parseCertificates(files[n], n) : []);
  // cert-chain.pem is the fuller picture; ca-cert.pem alone is accepted for partial bundles.
  const chainFile = pick(names.chain);
  const chain = chainFile.length > 0 ? chainFile : pick(names.cert);
  const roots = pick(names.root);
  const caBundle = layout === 'istio' ? names.cert in files : chain[0]?.isCA === true;
  return { path, kind, layout, chain, roots, rootsFrom: roots.length ? `${path}/${names.root}` : undefined, csrs: [], caBundle };
}

type Json = Record<string, unknown>;

/** istioctl prints camelCase; Envoy's admin config_dump is snake_case. Accept both. */
function field(o: unknown, camel: string): unknown {
  if (o === null || typeof o !== 'object') return undefined;
  const snake = camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  return (o as Json)[camel] ?? (o as Json)[snake];
}

function findSecretList(doc: Json): unknown[] | undefined {
  const direct = field(doc, 'dynamicActiveSecrets');
  if (Array.isArray(direct)) return direct;
  const configs = field(doc, 'configs');
  if (Array.isArray(configs)) {
    for (const c of configs) {
      const list = field(c, 'dynamicActiveSecrets');
      if (Array.isArray(list)) return list;
    }
  }
  return undefined;
}

function inlineText(ds: unknown): string | undefined {
  const bytes = field(ds, 'inlineBytes');
  if (typeof bytes === 'string') return Buffer.from(bytes, 'base64').toString('utf8');
  const str = field(ds, 'inlineString');
  return typeof str === 'string' ? str : undefined;
}

/** The workload chain ("default") and trust bundle ("ROOTCA") from proxy-config secret output. */
export function proxySecretPems(doc: Json): { chain?: string; roots?: string } {
  const list = findSecretList(doc);
  if (!list) throw invalid('bad_proxy_secret', 'not `istioctl proxy-config secret` output: no dynamicActiveSecrets list');
  const byName = (name: string): unknown => list.find((e) => field(e, 'name') === name || field(field(e, 'secret'), 'name') === name);
  const chain = inlineText(field(field(field(byName('default'), 'secret'), 'tlsCertificate'), 'certificateChain'));
  const roots = inlineText(field(field(field(byName('ROOTCA'), 'secret'), 'validationContext'), 'trustedCa'));
  if (chain === undefined && roots === undefined) {
    const names = list.map((e) => String(field(e, 'name') ?? '?')).join(', ') || 'none';
    throw invalid(
      'bad_proxy_secret',
      `proxy secret output has neither a "default" secret with tlsCertificate.certificateChain.inlineBytes nor a "ROOTCA" secret with validationContext.trustedCa.inlineBytes (secrets present: ${names})`,
    );
  }
  return { chain, roots };
}

function fromProxySecret(path: string, doc: Json): Source {
  const { chain, roots } = proxySecretPems(doc);
  return {
    path,
    kind: 'proxy secret',
    chain: chain === undefined ? [] : parseCertificates(chain, 'default secret certificate chain'),
    roots: roots === undefined ? [] : parseCertificates(roots, 'ROOTCA secret'),
    rootsFrom: roots === undefined ? undefined : `${path} ROOTCA secret`,
    csrs: [],
    caBundle: false,
  };
}

/** Reads a PEM file that must hold at least one certificate (a --root argument). */
export function readCertificateFile(path: string, what = 'certificate file'): ParsedCertificate[] {
  const text = readInputFile(path).toString('utf8');
  return inSource(path, () => parseCertificates(text, what));
}

/**
 * The roots a source trusts: the ones it carries, or else a self-signed certificate at the end of
 * its chain. Empty when it has neither (a chain without its root).
 */
export function sourceRoots(s: Source): ParsedCertificate[] {
  if (s.roots.length > 0) return s.roots;
  const last = s.chain[s.chain.length - 1];
  return last && last.selfIssued && last.isCA ? [last] : [];
}
