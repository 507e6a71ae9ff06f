import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { connect, type PeerCertificate, type DetailedPeerCertificate } from 'node:tls';
import { grpcCaClient } from '../agent/client.js';
import { identityFromToken } from '../agent/identity.js';
import { parseCertificate, parseCertificates, type ParsedCertificate } from '../pki/certificate.js';
import { createCsr } from '../pki/csr.js';
import { errorMessage, invalid } from '../pki/errors.js';
import { generateKeyPair } from '../pki/keys.js';

/** What a served CA showed when probed: its TLS chain, its HTTP endpoints and clock, a test certificate. */
export interface ServedObservation {
  caAddr: string;
  serverName: string;
  caRootFile: string;
  caRoots: ParsedCertificate[];
  tls?: { chain: ParsedCertificate[]; alpn: string | false };
  tlsError?: string;
  http?: HttpObservation;
  token?: { file: string; identity?: string; chain?: ParsedCertificate[]; error?: string };
}

export interface HttpObservation {
  addr: string;
  readyz?: { status: number; body: Record<string, unknown> };
  /** The server's Date header, and the local time halfway through that request. */
  serverDate?: Date;
  localDate?: Date;
  trustBundle?: ParsedCertificate[];
  errors: string[];
}

export interface ProbeOptions {
  caAddr: string;
  caRootFile: string;
  caRoots: ParsedCertificate[];
  serverName: string;
  httpAddr?: string;
  tokenFile?: string;
  trustDomain: string;
  timeoutMs: number;
}

export function splitHostPort(addr: string, flag: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(addr);
  if (!m || Number(m[3]) > 65535) throw invalid('bad_flag', `${flag} "${addr}" is not HOST:PORT`);
  return { host: m[1] ?? m[2], port: Number(m[3]) };
}

/** The certificates the server sent, leaf first, without its self-signed root unless it sent one. */
function peerChain(top: DetailedPeerCertificate): ParsedCertificate[] {
  const out: ParsedCertificate[] = [];
  const seen = new Set<PeerCertificate>();
  for (let c: DetailedPeerCertificate | undefined = top; c && c.raw && !seen.has(c); c = c.issuerCertificate) {
    seen.add(c);
    out.push(parseCertificate(c.raw, `served certificate #${out.length + 1}`));
  }
  return out;
}

/** Handshakes without judging the chain here: every problem with it becomes a finding instead of one TLS error. */
function tlsChain(o: ProbeOptions): Promise<{ chain: ParsedCertificate[]; alpn: string | false }> {
  const { host, port } = splitHostPort(o.caAddr, '--ca-addr');
  return new Promise((resolve, reject) => {
    const socket = connect({
      host,
      port,
      servername: isIP(o.serverName) === 0 ? o.serverName : undefined,
      ALPNProtocols: ['h2'],
      rejectUnauthorized: false,
      timeout: o.timeoutMs,
    });
    socket.once('secureConnect', () => {
      try {
        resolve({ chain: peerChain(socket.getPeerCertificate(true)), alpn: socket.alpnProtocol ?? false });
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
      } finally {
        socket.destroy();
      }
    });
    socket.once('timeout', () => {
      socket.destroy();
      reject(new Error(`no TLS handshake within ${o.timeoutMs / 1000}s`));
    });
    socket.once('error', reject);
  });
}

async function probeHttp(addr: string, timeoutMs: number): Promise<HttpObservation> {
  splitHostPort(addr, '--http-addr');
  const h: HttpObservation = { addr, errors: [] };
  const get = (path: string) => fetch(`http://${addr}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
  try {
    const sent = Date.now();
    const res = await get('/readyz');
    const received = Date.now();
    h.readyz = { status: res.status, body: (await res.json().catch(() => ({}))) as Record<string, unknown> };
    const date = res.headers.get('date');
    if (date) {
      h.serverDate = new Date(date);
      h.localDate = new Date((sent + received) / 2);
    }
  } catch (e) {
    h.errors.push(`GET http://${addr}/readyz: ${errorMessage(e)}`);
    return h;
  }
  try {
    const res = await get('/v1/trust-bundle?format=pem');
    const text = await res.text();
    if (res.ok) h.trustBundle = parseCertificates(text, `http://${addr}/v1/trust-bundle`);
    else h.errors.push(`GET http://${addr}/v1/trust-bundle: HTTP ${res.status}: ${text.trim().slice(0, 200)}`);
  } catch (e) {
    h.errors.push(`GET http://${addr}/v1/trust-bundle: ${errorMessage(e)}`);
  }
  return h;
}

/** A CreateCertificate call with the token, as istio-agent makes it, for a fresh key; nothing is written. */
async function testCertificate(o: ProbeOptions, file: string): Promise<NonNullable<ServedObservation['token']>> {
  try {
    const token = readFileSync(file, 'utf8').trim();
    const identity = identityFromToken(token, o.trustDomain).spiffeId;
    const kp = generateKeyPair('ec-p256');
    const csr = createCsr({ key: kp.privateKey, sans: { uris: [identity] } });
    const client = grpcCaClient({
      address: o.caAddr,
      rootPem: o.caRoots.map((r) => r.pem).join(''),
      serverName: o.serverName,
      rootSource: o.caRootFile,
      timeoutMs: o.timeoutMs,
    });
    const res = await client.createCertificate({ csr: csr.pem, metadata: {} }, { kind: 'token', token });
    return { file, identity, chain: res.certChain.map((p, i) => parseCertificate(p, `issued certificate #${i + 1}`)) };
  } catch (e) {
    return { file, error: errorMessage(e) };
  }
}

export async function probeServed(o: ProbeOptions): Promise<ServedObservation> {
  const obs: ServedObservation = { caAddr: o.caAddr, serverName: o.serverName, caRootFile: o.caRootFile, caRoots: o.caRoots };
  try {
    obs.tls = await tlsChain(o);
  } catch (e) {
    obs.tlsError = errorMessage(e);
  }
  if (o.httpAddr) obs.http = await probeHttp(o.httpAddr, o.timeoutMs);
  if (o.tokenFile) obs.token = await testCertificate(o, o.tokenFile);
  return obs;
}
