/** How a caller proved who it is; recorded in the audit and used as a metrics label. */
export type AuthMethod = 'local-token' | 'jwks' | 'oidc' | 'token-review' | 'mtls';

export interface AuthResult {
  /** Identities the caller may have certified (before trust-domain aliases, which are policy). */
  identities: string[];
  /** The caller's own identity, as audited and rate-limited. */
  caller: string;
  method: AuthMethod;
  /** When the credential stops being valid; verified tokens are cached until then. */
  expiresAt?: Date;
}

/** What a transport extracts from a request before authentication. */
export interface Credentials {
  /** The bearer token, without the "Bearer " prefix. Never logged. */
  token?: string;
  /** DER of a client certificate the TLS layer accepted as chaining to one of our roots. */
  peerCertDer?: Buffer;
}

export interface TokenVerifier {
  readonly method: AuthMethod;
  verify(token: string): Promise<AuthResult>;
}

export interface Authenticator {
  /**
   * The caller's identity. Answers synchronously when no I/O is needed (a client certificate, a
   * token verified before and not yet expired), so that the issuance hot path takes no promise
   * hop; a refusal always comes as a rejected promise, never as a synchronous throw.
   */
  authenticate(c: Credentials): AuthResult | Promise<AuthResult>;
}
