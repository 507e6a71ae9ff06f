import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CaState } from '../../ca/state.js';
import { MeshcaError, invalid } from '../../pki/errors.js';
import { createLimitedServer } from '../http/limits.js';
import type { PcaCa } from './cas.js';
import type { AccessKey } from './access-keys.js';
import { pcaRequestListener, type PcaCallRecord } from './http.js';
import { PcaService, type UsageMode } from './service.js';

export { PcaService, type UsageMode } from './service.js';
export type { PcaCallRecord } from './http.js';
export type { PcaCa } from './cas.js';
export { caIdFromDer, DEFAULT_ACCOUNT } from './arn.js';
export { accessKeysFrom, parseAccessKey, pcaRegionOf, readAccessKeysFile, usageModeOf, type AccessKey } from './access-keys.js';

export interface PcaApiOptions {
  state: CaState;
  /** host:port, [v6]:port; port 0 picks a free one (see the returned url). */
  addr: string;
  region?: string;
  account?: string;
  accessKeys?: AccessKey[];
  /** Allows running without access keys, and only on a loopback address. */
  insecure?: boolean;
  injectThrottle?: number;
  issueDelayMs?: number;
  usageMode?: UsageMode;
  now?: () => Date;
  onCall?: (record: PcaCallRecord) => void;
  warn?: (message: string) => void;
}

export interface PcaApiHandle {
  url: string;
  host: string;
  port: number;
  service: PcaService;
  cas(): PcaCa[];
  close(): Promise<void>;
}

export function parseHostPort(addr: string, what = '--pca-api-addr'): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(addr.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw invalid('bad_address', `${what} "${addr}" must be HOST:PORT, for example 127.0.0.1:8443`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** No keys means anyone who can connect may issue certificates: only on loopback, only when asked for. */
export function checkPcaApiSecurity(host: string, keys: AccessKey[], insecure: boolean): void {
  if (keys.length > 0) return;
  if (!insecure) {
    throw new MeshcaError(
      'failed_precondition',
      'pca_no_keys',
      'the PCA-compatible API needs access keys (--pca-access-key ID:SECRET); to run it unauthenticated on a loopback address pass --pca-insecure',
    );
  }
  if (!isLoopback(host)) {
    throw new MeshcaError(
      'failed_precondition',
      'pca_insecure_not_loopback',
      `--pca-insecure is only allowed on a loopback address, not ${host}`,
    );
  }
}

/** Starts the PCA-compatible API: used by `meshca pca-api` and by `meshca serve --pca-api-addr ADDR`. */
export async function startPcaApi(o: PcaApiOptions): Promise<PcaApiHandle> {
  const { host, port } = parseHostPort(o.addr);
  const keys = o.accessKeys ?? [];
  checkPcaApiSecurity(host, keys, o.insecure === true);
  const service = new PcaService({
    state: o.state,
    region: o.region ?? 'us-east-1',
    account: o.account,
    now: o.now,
    injectThrottle: o.injectThrottle,
    issueDelayMs: o.issueDelayMs,
    usageMode: o.usageMode,
    warn: o.warn,
  });
  const secrets = new Map(keys.map((k) => [k.id, k.secret]));
  const server: Server = createLimitedServer(pcaRequestListener({ service, secrets, now: o.now, onCall: o.onCall }));
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) =>
      reject(new MeshcaError('unavailable', 'listen_failed', `cannot listen on ${o.addr}: ${(e as Error).message}`, { cause: e })),
    );
    server.listen(port, host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  const urlHost = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return {
    url: `http://${urlHost}:${a.port}`,
    host: a.address,
    port: a.port,
    service,
    cas: () => service.list(),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
