import { z } from 'zod';
import type { FieldSpec } from './field-spec.js';

/**
 * The `meshca serve` keys that choose the store: embedded SQLite in the state directory,
 * or PostgreSQL shared by several replicas. Spread into the one schema (schema.ts) and field table
 * (fields.ts) like the upstream keys, so each is a flat key with a flag and an env variable.
 */

const POSTGRES_URL = /^postgres(ql)?:\/\//;

export const STORE_SHAPE = {
  store: z.enum(['sqlite', 'postgres']).optional(),
  // The message never echoes the value: a URL may carry a password.
  storeUrl: z.string().regex(POSTGRES_URL, 'expected a postgres:// or postgresql:// URL').optional(),
  auditDurable: z.boolean().optional(),
};

export const STORE_FIELDS = {
  store: {
    kind: 'string',
    help: 'sqlite (state directory, one server) or postgres (shared by replicas; default: postgres when --store-url is set)',
  },
  storeUrl: {
    kind: 'string',
    help: 'PostgreSQL URL, e.g. postgres://meshca@db:5432/meshca (prefer MESHCA_STORE_URL: it may hold a password)',
  },
  auditDurable: {
    kind: 'bool',
    help: 'answer a certificate request only once its audit row is committed (default: true with postgres, false with sqlite)',
  },
} as const satisfies Record<keyof typeof STORE_SHAPE, FieldSpec>;

interface StoreSettings {
  store?: 'sqlite' | 'postgres';
  storeUrl?: string;
  auditDurable?: boolean;
}

export type StoreKind = 'sqlite' | 'postgres';

export function storeKindOf(c: StoreSettings): StoreKind {
  return c.store ?? (c.storeUrl ? 'postgres' : 'sqlite');
}

/** Durable audit by default where replicas make it matter (a killed replica must not take rows with it). */
export function auditDurableOf(c: StoreSettings): boolean {
  return c.auditDurable ?? storeKindOf(c) === 'postgres';
}

export function refineStore(c: StoreSettings, ctx: z.RefinementCtx): void {
  if (c.store === 'postgres' && !c.storeUrl)
    ctx.addIssue({ code: 'custom', path: ['storeUrl'], message: 'required when store is postgres' });
  if (c.store === 'sqlite' && c.storeUrl) ctx.addIssue({ code: 'custom', path: ['storeUrl'], message: 'only used with store: postgres' });
}
