import { createPublicKey, randomUUID, type KeyObject } from 'node:crypto';
import { SignJWT, jwtVerify, type JWTHeaderParameters } from 'jose';
import { keyPem } from '../ca/bundle.js';
import { MeshcaError } from '../pki/errors.js';
import { generateKeyPair, parsePrivateKeyPem } from '../pki/keys.js';
import { workloadSpiffeId } from '../pki/spiffe.js';
import type { Store } from '../store/index.js';
import { identityOf, serviceAccountFromClaims, type ServiceAccountRef } from './claims.js';
import { expiryOf, tokenError } from './jose-errors.js';
import type { AuthResult, TokenVerifier } from './types.js';

/** `iss` of tokens minted by `meshca token`; verification routes on it. */
export const LOCAL_ISSUER = 'meshca-local';
const ALG = 'ES256';
/** Reloading keys on an unknown kid picks up a key another process created; this bounds how often. */
const RELOAD_INTERVAL_MS = 1000;

export interface TokenRequest extends ServiceAccountRef {
  ttlSeconds: number;
  audience: string[];
  now?: Date;
}

/**
 * The embedded-mode token issuer: ES256 keys kept in the store (encrypted with the key passphrase
 * when one is set), tokens shaped like Kubernetes projected service-account tokens so that the
 * same claim reader serves every issuer.
 */
export class LocalTokenIssuer {
  private keys = new Map<string, KeyObject>();
  private publicKeys = new Map<string, KeyObject>();
  private current!: { kid: string; key: KeyObject };
  private lastReload = 0;

  private constructor(
    private readonly store: Store,
    private readonly passphrase: string | undefined,
  ) {}

  /** Loads the issuer's keys, creating the first one when the store has none. */
  static async open(store: Store, o: { passphrase?: string } = {}): Promise<LocalTokenIssuer> {
    const issuer = new LocalTokenIssuer(store, o.passphrase || undefined);
    await issuer.reload();
    if (issuer.keys.size === 0) {
      const { privateKey } = generateKeyPair('ec-p256');
      const kid = randomUUID();
      await store.addTokenKey({ kid, alg: ALG, privateKeyPem: keyPem(privateKey, issuer.passphrase), createdAt: new Date() });
      await issuer.reload();
    }
    return issuer;
  }

  private async reload(): Promise<void> {
    this.lastReload = Date.now();
    const rows = await this.store.listTokenKeys();
    for (const r of rows) {
      if (this.keys.has(r.kid)) continue;
      let key: KeyObject;
      try {
        key = parsePrivateKeyPem(r.privateKeyPem, `token issuer key ${r.kid}`, this.passphrase);
      } catch (e) {
        throw new MeshcaError(
          'failed_precondition',
          'corrupt_state',
          `${(e as Error).message} (set MESHCA_KEY_PASSPHRASE to the passphrase the key was stored with)`,
          { cause: e },
        );
      }
      this.keys.set(r.kid, key);
      this.publicKeys.set(r.kid, createPublicKey(key));
    }
    // Rows come newest first: sign with the newest key, verify with all of them.
    if (rows.length > 0) this.current = { kid: rows[0].kid, key: this.keys.get(rows[0].kid)! };
  }

  async issue(r: TokenRequest): Promise<string> {
    if (!(r.ttlSeconds > 0)) throw new MeshcaError('invalid_argument', 'bad_ttl', `token TTL must be positive, got ${r.ttlSeconds}s`);
    // Refuse names that could never form an identity now, not when the token is used.
    workloadSpiffeId('cluster.local', r.namespace, r.serviceAccount);
    const now = Math.floor((r.now ?? new Date()).getTime() / 1000);
    return new SignJWT({
      'kubernetes.io': { namespace: r.namespace, serviceaccount: { name: r.serviceAccount, uid: randomUUID() } },
    })
      .setProtectedHeader({ alg: ALG, kid: this.current.kid, typ: 'JWT' })
      .setIssuer(LOCAL_ISSUER)
      .setSubject(`system:serviceaccount:${r.namespace}:${r.serviceAccount}`)
      .setAudience(r.audience)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + Math.ceil(r.ttlSeconds))
      .sign(this.current.key);
  }

  private async keyFor(header: JWTHeaderParameters): Promise<KeyObject> {
    const kid = header.kid ?? '';
    let key = this.publicKeys.get(kid);
    if (!key && Date.now() - this.lastReload > RELOAD_INTERVAL_MS) {
      await this.reload();
      key = this.publicKeys.get(kid);
    }
    if (!key) throw new MeshcaError('unauthenticated', 'unknown_token_key', `token key id "${kid}" is not one of the local issuer's keys`);
    return key;
  }

  verifier(o: { trustDomain: string; audience: string[]; now?: () => Date }): TokenVerifier {
    return {
      method: 'local-token',
      verify: async (token: string): Promise<AuthResult> => {
        try {
          const { payload } = await jwtVerify(token, (h) => this.keyFor(h), {
            issuer: LOCAL_ISSUER,
            audience: o.audience,
            algorithms: [ALG],
            currentDate: o.now?.(),
          });
          const id = identityOf(serviceAccountFromClaims(payload), o.trustDomain);
          return { identities: [id], caller: id, method: 'local-token', expiresAt: expiryOf(payload) };
        } catch (e) {
          throw tokenError(e, o.audience);
        }
      },
    };
  }
}
