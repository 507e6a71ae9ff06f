import type { Registry } from 'prom-client';
import type { MetricsSource } from './http/index.js';

/** One /metrics text from a base source and extra registries (same exposition format). */
export function withRegistries(base: MetricsSource, extra: Registry[]): MetricsSource {
  if (extra.length === 0) return base;
  return {
    contentType: base.contentType,
    metrics: async () =>
      [await base.metrics(), ...(await Promise.all(extra.map((r) => r.metrics())))].map((t) => (t.endsWith('\n') ? t : `${t}\n`)).join(''),
  };
}
