import type { AuthResult } from './types.js';

/**
 * Verified tokens, kept until they expire so that a workload renewing often costs one signature
 * check per token rather than per request. Bounded: when full, the oldest entry goes first.
 */
export class TokenCache {
  private readonly entries = new Map<string, AuthResult & { expiresAt: Date }>();

  constructor(private readonly max = 10_000) {}

  get(token: string, now: Date): AuthResult | undefined {
    const e = this.entries.get(token);
    if (!e) return undefined;
    if (e.expiresAt.getTime() <= now.getTime()) {
      this.entries.delete(token);
      return undefined;
    }
    return e;
  }

  set(token: string, r: AuthResult): void {
    if (!r.expiresAt) return;
    if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(token, r as AuthResult & { expiresAt: Date });
  }

  get size(): number {
    return this.entries.size;
  }
}
