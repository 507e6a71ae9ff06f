import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { rawRequest, requestBytes } from '../../../test/e2e/raw-http.js';
import type { Authority } from '../../ca/authority.js';
import type { Store } from '../../store/index.js';
import { createHttpServer, targetProblem } from './index.js';
import { createLimitedServer, HTTP_LIMITS } from './limits.js';

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

describe('HTTP port limits', () => {
  it('applies the limits to the node:http server', () => {
    const server = createLimitedServer(() => {});
    assert.equal(server.headersTimeout, HTTP_LIMITS.headersTimeoutMs);
    assert.equal(server.requestTimeout, HTTP_LIMITS.requestTimeoutMs);
    assert.equal(server.keepAliveTimeout, HTTP_LIMITS.keepAliveTimeoutMs);
    assert.equal(server.maxRequestsPerSocket, HTTP_LIMITS.maxRequestsPerSocket);
    assert.equal(server.maxConnections, HTTP_LIMITS.maxConnections);
    assert.ok(HTTP_LIMITS.headersTimeoutMs <= HTTP_LIMITS.requestTimeoutMs);
  });

  it('closes connections beyond maxConnections at once and accepts again once one ends', async () => {
    const server = createLimitedServer((_q, res) => res.end('ok'), { ...HTTP_LIMITS, maxConnections: 2 });
    const addr = await listen(server);
    const port = (server.address() as AddressInfo).port;
    const held = await Promise.all(
      [0, 1].map(
        () =>
          new Promise<ReturnType<typeof connect>>((resolve) => {
            const s = connect({ host: '127.0.0.1', port }, () => resolve(s));
          }),
      ),
    );
    // Let the server account for both before the third arrives.
    await new Promise((r) => setTimeout(r, 100));
    const third = await rawRequest(addr, requestBytes('/'));
    assert.equal(third.status, 0);
    assert.ok(third.closedByServer);
    held[0].destroy();
    await new Promise((r) => setTimeout(r, 100));
    const fourth = await rawRequest(addr, requestBytes('/'));
    assert.equal(fourth.status, 200);
    held[1].destroy();
    await close(server);
  });

  it('classifies request targets', () => {
    assert.equal(targetProblem('/healthz', 100), undefined);
    assert.equal(targetProblem('/v1/certificates?identity=../x', 100), undefined);
    assert.equal(targetProblem(`/${'a'.repeat(100)}`, 100)?.status, 414);
    for (const t of ['*', 'http://x/', '', 'healthz']) assert.equal(targetProblem(t, 100)?.error, 'bad_request_target', t);
    for (const t of ['/..', '/a/../b', '/./a', '/a/.', '/%2E%2e/', '/a%2Fb', '/a%5cb', '/a\\b'])
      assert.equal(targetProblem(t, 100)?.error, 'bad_path', t);
  });

  it('answers 500 and stays up when handling a failure throws too', async () => {
    let logged = 0;
    const server = createHttpServer({
      // Only /metrics is asked for, which reads neither.
      authority: undefined as unknown as Authority,
      store: undefined as unknown as Store,
      trustDomain: 'cluster.local',
      cluster: 'c',
      notReady: () => undefined,
      registry: { contentType: 'text/plain', metrics: () => Promise.reject(new Error('registry broke')) },
      log: {
        error: () => {
          logged++;
          if (logged === 1) throw new Error('logger broke');
        },
      },
    });
    const addr = await listen(server);
    const r = await rawRequest(addr, requestBytes('/metrics'));
    assert.equal(r.status, 500, r.text);
    assert.equal((JSON.parse(r.body) as { error: string }).error, 'internal');
    assert.equal(logged, 2);
    const health = await rawRequest(addr, requestBytes('/healthz'));
    assert.equal(health.status, 200);
    await close(server);
  });
});
