import type { Logger } from 'pino';
import type { CaState } from '../ca/state.js';
import type { ServeConfig } from '../config/index.js';
import {
  accessKeysFrom,
  checkPcaApiSecurity,
  parseHostPort,
  pcaRegionOf,
  startPcaApi,
  usageModeOf,
  type AccessKey,
  type PcaApiHandle,
} from './pca/index.js';

/** `meshca serve --pca-api-addr ADDR`: the PCA-compatible API, resolved and checked before anything listens. */
export interface ServePcaApi {
  addr: string;
  keys: AccessKey[];
  start(state: CaState, log: Logger): Promise<PcaApiHandle>;
}

/**
 * Reads the access keys and applies `meshca pca-api`'s rule (keys required, unless loopback and
 * --pca-insecure) up front, so that a refused PCA API stops `serve` before the CA listeners open.
 */
export function servePcaApi(config: ServeConfig): ServePcaApi | undefined {
  if (!config.pcaApiAddr) return undefined;
  const addr = config.pcaApiAddr;
  const keys = accessKeysFrom({ pcaAccessKey: config.pcaAccessKey, pcaAccessKeysFile: config.pcaAccessKeysFile });
  checkPcaApiSecurity(parseHostPort(addr, '--pca-api-addr').host, keys, config.pcaInsecure);
  const region = pcaRegionOf(config.pcaRegion);
  return {
    addr,
    keys,
    start: async (state, log) => {
      const api = await startPcaApi({
        state,
        addr,
        region,
        account: config.pcaAccount,
        accessKeys: keys,
        insecure: config.pcaInsecure,
        usageMode: usageModeOf(config.pcaUsageMode),
        warn: (m) => log.warn({}, m),
        onCall: (r) =>
          log.debug({ pca: r.operation, status: r.status, error: r.errorType, certificateArn: r.certificateArn }, 'PCA API call'),
      });
      log.info(
        { url: api.url, region, account: config.pcaAccount, cas: api.cas().map((c) => c.arn), auth: keys.length > 0 ? 'sigv4' : 'none' },
        'PCA-compatible API listening',
      );
      return api;
    },
  };
}
