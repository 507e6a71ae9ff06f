import type { Store } from './index.js';

/** The store with some of its methods replaced; every other member is the store's own, bound to it. */
export function overrideStore(store: Store, overrides: Partial<Store> & Record<string, unknown>): Store {
  return new Proxy(store, {
    get(target, key, receiver) {
      if (typeof key === 'string' && key in overrides) return overrides[key];
      const v = Reflect.get(target, key, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
