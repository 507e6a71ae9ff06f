import type { KubeClient, KubeWatchEvent } from './client.js';
import { apiStatus } from './client.js';
import { sleep } from '../util/sleep.js';

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
}

export interface ListResult<T> {
  items: T[];
  resourceVersion: string;
}

export interface ReflectorSource<T> {
  /** A consistent list and its collection resourceVersion. */
  list(): Promise<ListResult<T>>;
  /** The collection's URL path, e.g. /apis/certificates.k8s.io/v1/certificatesigningrequests. */
  path: string;
  /** Extra watch parameters (a fieldSelector matching the list's). */
  params?: Record<string, string>;
}

export interface ReflectorHandlers<T> {
  /** After every (re)list, with the complete current set: callers replace their cache. */
  sync(items: T[]): void;
  event(type: 'ADDED' | 'MODIFIED' | 'DELETED', object: T): void;
}

export interface ReflectorOptions {
  signal: AbortSignal;
  /** Server-side watch timeout; the stream then ends and is re-opened from the last resourceVersion. */
  watchTimeoutSeconds?: number;
  /** Delay before retrying after a failure; doubles up to maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
  log?: { warn(obj: object, msg: string): void; debug(obj: object, msg: string): void };
}

/** The watch's history no longer reaches our resourceVersion: only a new list can resume. */
class Gone extends Error {}

/**
 * List, then watch from the list's resourceVersion, like client-go's reflector: a watch that ends
 * is re-opened from the last resourceVersion seen (no event is lost or repeated), a 410 Gone (the
 * server compacted that history) leads to a fresh list, and failures back off. Runs until the
 * signal aborts.
 */
export async function runReflector<T extends { metadata?: ObjectMeta }>(
  client: KubeClient,
  source: ReflectorSource<T>,
  handlers: ReflectorHandlers<T>,
  o: ReflectorOptions,
): Promise<void> {
  const base = o.backoffMs ?? 500;
  let backoff = base;
  let rv: string | undefined;
  while (!o.signal.aborted) {
    try {
      if (rv === undefined) {
        const l = await source.list();
        if (o.signal.aborted) return;
        rv = l.resourceVersion;
        handlers.sync(l.items);
      }
      const started = Date.now();
      await client.watch<T | { code?: number; reason?: string; message?: string }>(
        source.path,
        { ...source.params, resourceVersion: rv, allowWatchBookmarks: true, timeoutSeconds: o.watchTimeoutSeconds ?? 300 },
        (e: KubeWatchEvent<T | { code?: number; message?: string }>) => {
          if (e.type === 'ERROR') {
            const st = e.object as { code?: number; message?: string };
            if (st.code === 410) throw new Gone(st.message ?? 'resource version too old');
            throw new Error(`watch error: ${st.message ?? JSON.stringify(st)}`);
          }
          const obj = e.object as T;
          if (obj.metadata?.resourceVersion) rv = obj.metadata.resourceVersion;
          if (e.type !== 'BOOKMARK') handlers.event(e.type, obj);
        },
        o.signal,
      );
      // A stream the server closes at once, again and again, must not become a busy loop.
      if (Date.now() - started < 1000) await sleep(base, o.signal);
      backoff = base;
    } catch (e) {
      if (o.signal.aborted) return;
      const status = (e as { statusCode?: number }).statusCode ?? apiStatus(e);
      if (e instanceof Gone || status === 410) {
        o.log?.debug({ path: source.path, resourceVersion: rv }, 'watch history gone (410); listing again');
        rv = undefined;
        continue;
      }
      o.log?.warn({ path: source.path, err: (e as Error).message, retryMs: backoff }, 'list/watch failed; retrying');
      await sleep(backoff, o.signal);
      backoff = Math.min(backoff * 2, o.maxBackoffMs ?? 30_000);
    }
  }
}
