/**
 * The adversarial suite: every attack below runs against a real `meshca serve` on one gRPC
 * transport (one test file per transport). Each case asserts, through underAttack(), that the
 * process is alive, that a fresh valid client was answered within ANSWER_BOUND_MS throughout, that
 * RSS stayed under RSS_BOUND, and that the audit shows no certificate the case did not allow; most
 * also assert how the attack itself was answered.
 */
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, randomUUID } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { SignJWT, importPKCS8 } from 'jose';
import { after, before, describe, test } from 'node:test';
import { createCsr } from '../../src/pki/csr.js';
import { generateKeyPair } from '../../src/pki/keys.js';
import { decodePemBlocks, encodePem } from '../../src/pki/pem.js';
import { IstioCaClient } from '../e2e/serve/ca-client.js';
import { ID, workloadCsr } from '../e2e/serve/helpers.js';
import { opensslOk } from '../helpers/openssl.js';
import { tempDir } from '../helpers/tmp.js';
import { startTarget, underAttack, type Target, type Transport, type AuditRow } from './harness.js';
import { BAD_HPACK_INDEX, F, frame, grpcBody, headerOf, PREFACE, RawPeer, requestBlock, S, settings, sleep, T, u32 } from './wire.js';

/** How long each flood runs. */
const FLOOD_MS = 1500;

/** Runs `step` on `n` connections until FLOOD_MS has passed, reconnecting a connection the server cut. */
async function flood(
  t: Target,
  n: number,
  o: { read?: boolean; settings?: Buffer; graceMs?: number },
  step: (p: RawPeer, round: number) => Promise<void>,
): Promise<{ cut: number }> {
  const end = Date.now() + FLOOD_MS;
  let cut = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (Date.now() < end) {
        const p = await RawPeer.open(t.grpc, o).catch(() => undefined);
        if (!p) {
          await sleep(50);
          continue;
        }
        for (let round = 0; Date.now() < end && !p.ev.closed && !p.ev.goaway; round++) await step(p, round);
        // A GOAWAY or close still in flight when the flood's time ran out counts too.
        if (p.ev.closed || p.ev.goaway || (o.graceMs && (await p.endedWithin(o.graceMs)))) cut++;
        p.destroy();
      }
    }),
  );
  return { cut };
}

/** A gRPC call on a raw connection: HEADERS (extra headers appended) and one DATA frame with END_STREAM. */
function call(
  id: number,
  body: Buffer,
  extra: ReadonlyArray<readonly [string, string]> = [],
  o: { path?: string; method?: 'POST' | 'GET' } = {},
): Buffer {
  return Buffer.concat([frame(T.HEADERS, F.END_HEADERS, id, requestBlock(extra, o)), frame(T.DATA, F.END_STREAM, id, body)]);
}

/** gRPC status of a stream's answer, 'reset:<code>' when it was reset, or 'none' when the connection ended first. */
async function outcome(p: RawPeer, id: number): Promise<string> {
  const r = await p.streamOutcome(id, 5000);
  if (r.reset !== undefined) return `reset:${r.reset}`;
  const s = headerOf(r.headers, 'grpc-status');
  if (s !== undefined) return s;
  const status = headerOf(r.headers, ':status');
  if (status !== undefined && status !== '200') return `http:${status}`;
  return r.ended ? 'ended' : 'none';
}

export function adversarialSuite(transport: Transport): void {
  describe(`adversarial: ${transport}`, () => {
    let t: Target;
    const tmp = tempDir('meshca-adv-files-');
    before(async () => {
      t = await startTarget(transport);
    });
    after(async () => {
      await t?.close();
      tmp.cleanup();
    });

    test('rapid reset: HEADERS then RST_STREAM, over and over (CVE-2023-44487)', async () => {
      const block = requestBlock([['authorization', 'Bearer x']]);
      let cut = 0;
      await underAttack(t, 'rapid reset', async () => {
        ({ cut } = await flood(t, 2, { graceMs: 2000 }, async (p, round) => {
          const frames: Buffer[] = [];
          for (let i = 0; i < 200; i++) {
            const id = (round * 200 + i) * 2 + 1;
            frames.push(frame(T.HEADERS, F.END_HEADERS, id, block), frame(T.RST_STREAM, 0, id, u32(8)));
          }
          await p.send(Buffer.concat(frames));
        }));
      });
      if (transport === 'h2') assert.ok(cut > 0, 'the reset flood was cut with GOAWAY');
    });

    test('CONTINUATION flood of empty frames is cut, not buffered', async () => {
      let cut = 0;
      const empties = Buffer.concat(Array.from({ length: 10_000 }, () => frame(T.CONTINUATION, 0, 1)));
      await underAttack(t, 'empty CONTINUATION flood', async () => {
        ({ cut } = await flood(t, 2, { graceMs: 2000 }, async (p, round) => {
          if (round === 0) p.write(frame(T.HEADERS, 0, 1, requestBlock().subarray(0, 8)));
          await p.send(empties);
        }));
      });
      assert.ok(cut > 0, 'the server ended a connection that never finished its header block');
    });

    test('CONTINUATION flood of full frames is cut', async () => {
      let cut = 0;
      const full = frame(T.CONTINUATION, 0, 1, Buffer.concat([Buffer.from([0x00, 0x7f, 0x80, 0x7f]), Buffer.alloc(16_000, 0x61)]));
      await underAttack(t, 'full CONTINUATION flood', async () => {
        ({ cut } = await flood(t, 2, { graceMs: 2000 }, async (p, round) => {
          if (round === 0) p.write(frame(T.HEADERS, 0, 1, requestBlock().subarray(0, 8)));
          await p.send(Buffer.concat([full, full, full, full]));
        }));
      });
      assert.ok(cut > 0, 'the server ended a connection whose header block kept growing');
    });

    test('SETTINGS amplification: 999 open streams and frames of 2,500 INITIAL_WINDOW_SIZE entries', async () => {
      const entries = Array.from({ length: 2500 }, (_, i) => [S.INITIAL_WINDOW_SIZE, 65_535 + (i % 2)] as const);
      const big = settings(entries);
      const block = requestBlock();
      await underAttack(t, 'SETTINGS flood', async () => {
        await flood(t, 2, {}, async (p, round) => {
          if (round === 0) {
            const open: Buffer[] = [];
            for (let i = 0; i < 999; i++) open.push(frame(T.HEADERS, F.END_HEADERS, i * 2 + 1, block));
            await p.send(Buffer.concat(open));
          }
          await p.send(Buffer.concat([big, big, big, big]));
        });
      });
    });

    test('PING flood from a peer that never reads', async () => {
      const pings = Buffer.concat(Array.from({ length: 5000 }, (_, i) => frame(T.PING, 0, 0, Buffer.alloc(8, i & 0xff))));
      await underAttack(t, 'PING flood', async () => {
        await flood(t, 2, { read: false }, async (p) => {
          if (!(await p.send(pings))) await sleep(20);
        });
      });
    });

    test('zero window: answers the peer never has room for stay bounded', async () => {
      const attacker = ID('attacker', 'zero-window');
      const token = await t.token('attacker', 'zero-window');
      const body = grpcBody(workloadCsr(attacker).csr);
      await underAttack(
        t,
        'zero window',
        async () => {
          await flood(t, 4, { read: false, settings: settings([[S.INITIAL_WINDOW_SIZE, 0]]) }, async (p, round) => {
            if (round > 0) return sleep(100);
            const calls: Buffer[] = [];
            for (let i = 0; i < 200; i++) calls.push(call(i * 2 + 1, body, [['authorization', `Bearer ${token}`]]));
            await p.send(Buffer.concat(calls));
          });
        },
        { allowed: [attacker] },
      );
    });

    test('slowloris: connections that trickle a preface or a header block and wait', async () => {
      const peers: RawPeer[] = [];
      await underAttack(t, 'slowloris', async () => {
        for (let i = 0; i < 60; i++) {
          const p = await RawPeer.open(t.grpc, { preface: false }).catch(() => undefined);
          if (!p) continue;
          peers.push(p);
          if (i % 3 === 0) p.write(PREFACE.subarray(0, 5));
          else if (i % 3 === 1) p.write(Buffer.concat([PREFACE, settings([]), frame(T.HEADERS, 0, 1, requestBlock().subarray(0, 10))]));
          else
            p.write(
              Buffer.concat([
                PREFACE,
                settings([]),
                frame(T.HEADERS, F.END_HEADERS, 1, requestBlock()),
                frame(T.DATA, 0, 1, Buffer.from([0, 0, 0, 4, 0])),
              ]),
            );
        }
        const end = Date.now() + FLOOD_MS;
        for (let k = 5; Date.now() < end; k++) {
          for (const [i, p] of peers.entries()) if (i % 3 === 0 && k < PREFACE.length) p.write(PREFACE.subarray(k, k + 1));
          await sleep(200);
        }
      });
      peers.forEach((p) => p.destroy());
    });

    test('unfinished request bodies on many connections stay within the memory budget', async () => {
      const head = Buffer.from([0, 0, 0x40, 0, 0]); // a 4 MiB message is announced
      const chunk = frame(T.DATA, 0, 0, Buffer.concat([head, Buffer.alloc(16_379)]));
      const more = frame(T.DATA, 0, 0, Buffer.alloc(16_384));
      const block = requestBlock([['authorization', 'Bearer x']]);
      await underAttack(t, 'unfinished bodies', async () => {
        await flood(t, 8, {}, async (p, round) => {
          const id = round * 2 + 1;
          const frames = [frame(T.HEADERS, F.END_HEADERS, id, block), chunk, ...Array.from({ length: 63 }, () => more)];
          for (const f of frames) f.writeUInt32BE(id, 5);
          await p.send(Buffer.concat(frames));
        });
      });
    });

    test('header lists held just under the size limit on many streams stay within the memory budget', async () => {
      const bigValue = 'a'.repeat(14_000);
      const block = requestBlock([
        ['x-pad-1', bigValue],
        ['x-pad-2', bigValue],
        ['x-pad-3', bigValue],
        ['x-pad-4', bigValue],
      ]);
      await underAttack(t, 'held header lists', async () => {
        await flood(t, 8, {}, async (p, round) => {
          const id = round * 2 + 1;
          const parts: Buffer[] = [];
          for (let at = 0; at < block.length; at += 16_384) {
            const last = at + 16_384 >= block.length;
            parts.push(frame(at === 0 ? T.HEADERS : T.CONTINUATION, last ? F.END_HEADERS : 0, id, block.subarray(at, at + 16_384)));
          }
          await p.send(Buffer.concat(parts));
        });
      });
    });

    test('protocol violations end the connection', async () => {
      const violations: Record<string, Buffer> = {
        'HTTP/1.1 instead of the preface': Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
        'PING before SETTINGS': Buffer.concat([PREFACE, frame(T.PING, 0, 0, Buffer.alloc(8))]),
        'DATA on stream 0': Buffer.concat([PREFACE, settings([]), frame(T.DATA, 0, 0, Buffer.alloc(4))]),
        'HEADERS on an even stream': Buffer.concat([
          PREFACE,
          settings([]),
          frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 2, requestBlock()),
        ]),
        'a frame above MAX_FRAME_SIZE': Buffer.concat([PREFACE, settings([]), frame(T.DATA, 0, 1, Buffer.alloc(20_000))]),
        'an HPACK index beyond both tables': Buffer.concat([
          PREFACE,
          settings([]),
          frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, BAD_HPACK_INDEX),
        ]),
        'PUSH_PROMISE from a client': Buffer.concat([
          PREFACE,
          settings([]),
          frame(T.PUSH_PROMISE, F.END_HEADERS, 1, Buffer.concat([u32(2), requestBlock()])),
        ]),
        'connection window overflow': Buffer.concat([
          PREFACE,
          settings([]),
          frame(T.WINDOW_UPDATE, 0, 0, u32(0x7fffffff)),
          frame(T.WINDOW_UPDATE, 0, 0, u32(0x7fffffff)),
        ]),
        'ENABLE_PUSH of 2': Buffer.concat([PREFACE, settings([[S.ENABLE_PUSH, 2]])]),
        'header block interrupted by PING': Buffer.concat([
          PREFACE,
          settings([]),
          frame(T.HEADERS, 0, 1, requestBlock().subarray(0, 8)),
          frame(T.PING, 0, 0, Buffer.alloc(8)),
        ]),
        'SETTINGS of odd length': Buffer.concat([PREFACE, frame(T.SETTINGS, 0, 0, Buffer.alloc(7))]),
      };
      const lingering: string[] = [];
      await underAttack(t, 'protocol violations', async () => {
        for (const [name, bytes] of Object.entries(violations)) {
          const p = await RawPeer.open(t.grpc, { preface: false });
          p.write(bytes);
          if (!(await p.endedWithin(3000))) lingering.push(name);
          p.destroy();
        }
      });
      assert.deepEqual(lingering, [], 'every violation ended its connection');
    });

    test('RFC 9113 8.2: malformed fields never reach the CA (CR, LF, NUL, upper case, te)', async () => {
      const attacker = ID('attacker', 'fields');
      const token = await t.token('attacker', 'fields');
      const body = grpcBody(workloadCsr(attacker).csr);
      const auth: [string, string] = ['authorization', `Bearer ${token}`];
      const cases: Record<string, Array<[string, string]>> = {
        'CR LF in a value': [auth, ['clusterid', 'east\r\nx-injected: 1']],
        'NUL in a value': [auth, ['clusterid', 'east\u0000west']],
        'LF alone in a value': [auth, ['clusterid', 'east\nx-injected: 1']],
        'upper case name': [auth, ['ClusterID', 'east']],
        'space in a name': [auth, ['cluster id', 'east']],
        'te other than trailers': [auth, ['te', 'gzip']],
        'leading space in a value': [auth, ['clusterid', ' east']],
      };
      // nghttp2 (node-http2) resets upper-case names and te, but drops a field with CR, LF, NUL,
      // edge whitespace or a space in its name and serves the rest of the request; node offers no
      // hook to see the drop. The bad value still never reaches meshca: checked in the audit below.
      const dropped = new Set(['CR LF in a value', 'NUL in a value', 'LF alone in a value', 'space in a name', 'leading space in a value']);
      const strippedByNghttp2 = (name: string) => transport === 'node-http2' && dropped.has(name);
      const got: Record<string, string> = {};
      const { rows } = await underAttack(
        t,
        'malformed fields',
        async () => {
          for (const [name, extra] of Object.entries(cases)) {
            const p = await RawPeer.open(t.grpc);
            p.write(call(1, body, extra));
            got[name] = await outcome(p, 1);
            p.destroy();
          }
        },
        { allowed: transport === 'node-http2' ? [attacker] : [] },
      );
      for (const [name, o] of Object.entries(got)) {
        if (strippedByNghttp2(name)) assert.ok(o === 'reset:1' || o === '0', `${name}: ${o}`);
        else assert.equal(o, 'reset:1', `${name}: RST_STREAM PROTOCOL_ERROR expected, got ${o}`);
      }
      assert.deepEqual(
        rows.filter((r) => r.identity === attacker).map((r) => r.client_cluster ?? ''),
        rows.filter((r) => r.identity === attacker).map(() => ''),
        'no malformed value reached the audit',
      );
    });

    test('malformed gRPC framing is refused and issues nothing', async () => {
      const attacker = ID('attacker', 'framing');
      const token = await t.token('attacker', 'framing');
      const good = grpcBody(workloadCsr(attacker).csr);
      const auth: [string, string] = ['authorization', `Bearer ${token}`];
      const lying = Buffer.from(good);
      lying.writeUInt32BE(good.length + 1000, 1);
      const compressedNoEncoding = Buffer.from(good);
      compressedNoEncoding[0] = 1;
      const bomb = gzipSync(Buffer.alloc(64 << 20));
      const bombFrame = Buffer.concat([Buffer.from([1]), u32(bomb.length), bomb]);
      const cases: Record<string, { body: Buffer; extra?: Array<[string, string]>; path?: string; method?: 'GET' }> = {
        'length prefix longer than the body': { body: lying },
        'two messages in a unary call': { body: Buffer.concat([good, good]) },
        'compressed flag without grpc-encoding': { body: compressedNoEncoding },
        'gzip bomb (64 MiB of zeros)': { body: bombFrame, extra: [['grpc-encoding', 'gzip']] },
        'length prefix of 4 GiB': { body: Buffer.concat([Buffer.from([0]), u32(0xffffffff)]) },
        'truncated message header': { body: good.subarray(0, 3) },
        'empty body': { body: Buffer.alloc(0) },
        'unknown encoding': { body: good, extra: [['grpc-encoding', 'br']] },
        'unknown method': { body: good, path: '/istio.v1.auth.IstioCertificateService/Nope' },
        'GET instead of POST': { body: good, method: 'GET' },
        'protobuf with a wrong wire type': { body: Buffer.concat([Buffer.from([0]), u32(4), Buffer.from([0x0d, 1, 2, 3])]) },
        'protobuf string longer than the message': { body: Buffer.concat([Buffer.from([0]), u32(3), Buffer.from([0x0a, 0x7f, 0x41])]) },
      };
      const got: Record<string, string> = {};
      await underAttack(t, 'malformed gRPC framing', async () => {
        for (const [name, c] of Object.entries(cases)) {
          const p = await RawPeer.open(t.grpc);
          p.write(call(1, c.body, [auth, ...(c.extra ?? [])], { path: c.path, method: c.method }));
          got[name] = await outcome(p, 1);
          p.destroy();
        }
      });
      for (const [name, o] of Object.entries(got)) assert.ok(o !== '0' && o !== 'none', `${name}: expected a refusal, got ${o}`);
    });

    test('token attacks are refused UNAUTHENTICATED and issue nothing', async () => {
      const key = await t.issuerKey();
      const priv = await importPKCS8(key.privateKeyPem, 'ES256');
      const pubPem = createPublicKey(key.privateKeyPem).export({ type: 'spki', format: 'pem' }).toString();
      const now = Math.floor(Date.now() / 1000);
      const claims = (ns: string, sa: string) => ({
        'kubernetes.io': { namespace: ns, serviceaccount: { name: sa, uid: randomUUID() } },
        sub: `system:serviceaccount:${ns}:${sa}`,
      });
      const signed = (c: Record<string, unknown>, alg = 'ES256', k: Parameters<SignJWT['sign']>[0] = priv, kid = key.kid) =>
        new SignJWT(c)
          .setProtectedHeader({ alg, kid, typ: 'JWT' })
          .setIssuer('meshca-local')
          .setAudience('istio-ca')
          .setIssuedAt(now)
          .setExpirationTime(now + 600)
          .sign(k);
      const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const foreign = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
      const tokens: Record<string, { token: string; identity: string }> = {
        'alg none': {
          token: `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...claims('atk', 'none'), iss: 'meshca-local', aud: 'istio-ca', exp: now + 600 })}.`,
          identity: ID('atk', 'none'),
        },
        'HS256 keyed with the public key': {
          token: await signed(claims('atk', 'hs256'), 'HS256', new TextEncoder().encode(pubPem)),
          identity: ID('atk', 'hs256'),
        },
        expired: {
          token: await t.token('atk', 'expired', { ttlSeconds: 60, now: new Date(Date.now() - 7200_000) }),
          identity: ID('atk', 'expired'),
        },
        'wrong audience': { token: await t.token('atk', 'aud', { audience: ['kubernetes'] }), identity: ID('atk', 'aud') },
        'foreign kid': { token: await signed(claims('atk', 'kid'), 'ES256', foreign, randomUUID()), identity: ID('atk', 'kid') },
        'foreign key under the real kid': { token: await signed(claims('atk', 'key'), 'ES256', foreign), identity: ID('atk', 'key') },
        'namespace with slashes': {
          token: await signed(claims('evil/sa/x/ns/istio-system', 'y')),
          identity: 'spiffe://cluster.local/ns/evil/sa/x/ns/istio-system/sa/y',
        },
        'service account with slashes': {
          token: await signed(claims('evil', 'x/ns/istio-system/sa/y')),
          identity: 'spiffe://cluster.local/ns/evil/sa/x/ns/istio-system/sa/y',
        },
        'upper-case namespace': { token: await signed(claims('Istio-System', 'y')), identity: ID('Istio-System', 'y') },
        'not a JWT': { token: 'not.a.jwt', identity: ID('atk', 'garbage') },
      };
      const results: Record<string, string> = {};
      await underAttack(t, 'token attacks', async () => {
        const client = IstioCaClient.tls(t.grpc, t.rootPem);
        try {
          for (const [name, { token, identity }] of Object.entries(tokens)) {
            results[name] = await client.createCertificate({ csr: workloadCsr(identity).csr }, { token }).then(
              () => 'issued',
              (e: { code: number }) => String(e.code),
            );
          }
        } finally {
          client.close();
        }
      });
      for (const [name, r] of Object.entries(results)) assert.equal(r, '16', `${name}: expected UNAUTHENTICATED (16), got ${r}`);
    });

    test('CSR attacks are refused and issue nothing', async () => {
      const me = ID('attacker', 'csr');
      const token = await t.token('attacker', 'csr');
      const ec = generateKeyPair('ec-p256').privateKey;
      const badSig = decodePemBlocks(workloadCsr(me).csr)[0].der;
      badSig[badSig.length - 5] ^= 0xff;
      const keyFile = `${tmp.path}/ku.key`;
      opensslOk(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', keyFile]);
      const kuCsr = opensslOk([
        'req',
        '-new',
        '-key',
        keyFile,
        '-subj',
        '/O=attacker',
        '-addext',
        `subjectAltName=URI:${me}`,
        '-addext',
        'keyUsage=critical,keyCertSign,digitalSignature',
      ]);
      const rsaFile = `${tmp.path}/rsa1024.key`;
      opensslOk(['genrsa', '-out', rsaFile, '1024']);
      const weak = opensslOk(['req', '-new', '-key', rsaFile, '-subj', '/O=attacker', '-addext', `subjectAltName=URI:${me}`]);
      const csrs: Record<string, string> = {
        'basicConstraints CA:TRUE': createCsr({ key: ec, sans: { uris: [me] }, isCA: true }).pem,
        'keyUsage keyCertSign (openssl)': kuCsr,
        "another workload's identity": workloadCsr(ID('istio-system', 'istiod')).csr,
        'a DNS name': createCsr({ key: ec, sans: { uris: [me], dnsNames: ['istiod.istio-system.svc'] } }).pem,
        'two URIs': createCsr({ key: ec, sans: { uris: [me, ID('attacker', 'other')] } }).pem,
        'a bad signature': encodePem('CERTIFICATE REQUEST', badSig),
        'RSA-1024': weak,
        'garbage PEM': '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n',
        'above the size limit': `${workloadCsr(me).csr}${'x'.repeat(40_000)}`,
      };
      const results: Record<string, string> = {};
      await underAttack(t, 'CSR attacks', async () => {
        const client = IstioCaClient.tls(t.grpc, t.rootPem);
        try {
          for (const [name, csr] of Object.entries(csrs)) {
            results[name] = await client.createCertificate({ csr }, { token }).then(
              () => 'issued',
              (e: { code: number }) => String(e.code),
            );
          }
        } finally {
          client.close();
        }
      });
      for (const [name, r] of Object.entries(results))
        assert.ok(r === '3' || r === '7', `${name}: expected INVALID_ARGUMENT or PERMISSION_DENIED, got ${r}`);
      assert.equal(results['basicConstraints CA:TRUE'], '3');
      assert.equal(results['keyUsage keyCertSign (openssl)'], '3');
    });

    test('a flood of unauthenticated refusals writes a bounded number of audit rows', async () => {
      const block = requestBlock([['authorization', 'Bearer not.a.jwt']]);
      const body = grpcBody(workloadCsr(ID('atk', 'flood')).csr);
      const one = (id: number) => Buffer.concat([frame(T.HEADERS, F.END_HEADERS, id, block), frame(T.DATA, F.END_STREAM, id, body)]);
      let sent = 0;
      const started = Date.now();
      const refusedBefore = await refusedCount(t.http);
      const { mark } = await underAttack(t, 'refusal flood', async () => {
        await flood(t, 4, {}, async (p, round) => {
          if (round >= 10) return sleep(100);
          const calls: Buffer[] = [];
          for (let i = 0; i < 100; i++) calls.push(one((round * 100 + i) * 2 + 1));
          sent += 100;
          await p.send(Buffer.concat(calls));
          await sleep(20);
        });
      });
      // Every refusal the server counted must end as a row or inside a summary; the summary of the
      // last second is written up to a second later, and later still on a loaded machine.
      let refused = 0;
      let rows: AuditRow[] = [];
      let accounted = 0;
      for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(250)) {
        refused = (await refusedCount(t.http)) - refusedBefore;
        rows = t.auditSince(mark).filter((r) => r.outcome === 'refused' && r.caller === '');
        const summaries = rows.filter((r) => r.reason === 'refusals_suppressed');
        const counted = summaries.reduce((n, r) => n + Number(/^(\d+) /.exec(r.message ?? '')?.[1] ?? 0), 0);
        accounted = rows.length - summaries.length + counted;
        if (accounted >= refused) break;
      }
      const seconds = Math.ceil((Date.now() - started) / 1000) + 1;
      const summaries = rows.filter((r) => r.reason === 'refusals_suppressed');
      assert.ok(refused > 150 && refused <= sent, `the server refused ${refused} of the ${sent} calls sent`);
      // The default bucket: 100 rows at once, then 50 a second, plus one summary a second.
      assert.ok(rows.length <= 100 + 50 * seconds + seconds, `${rows.length} rows for ${refused} refusals in ${seconds} s`);
      assert.ok(summaries.length >= 1, 'the suppressed refusals are summarized');
      assert.equal(accounted, refused, `rows and summaries account for the ${refused} refusals the server counted`);
    });

    test('HTTP port abuse: malformed request lines, traversal and huge queries never take the process down', async () => {
      const requests: Record<string, string> = {
        'a path of //': 'GET // HTTP/1.1\r\nHost: x\r\n\r\n',
        'a bad percent escape': 'GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n',
        'absolute form': 'GET http://x/healthz HTTP/1.1\r\nHost: x\r\n\r\n',
        traversal: 'GET /../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n',
        'encoded traversal': 'GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n',
        'asterisk form': 'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n',
        'a 100 KB query': `GET /v1/certificates?identity=${'a'.repeat(100_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
        'a bad limit': 'GET /v1/certificates?limit=-1e309&limit=x HTTP/1.1\r\nHost: x\r\n\r\n',
      };
      const statuses: Record<string, string> = {};
      await underAttack(t, 'HTTP abuse', async () => {
        for (const [name, raw] of Object.entries(requests)) statuses[name] = await rawHttp(t.http, raw);
      });
      for (const [name, s] of Object.entries(statuses)) assert.ok(!/^HTTP\/1\.1 5/.test(s), `${name}: ${s}`);
      assert.match(statuses['traversal'], /^HTTP\/1\.1 (400|404)/);
    });
  });
}

/** Sends raw bytes to the HTTP port and returns the status line, or 'closed' when the server hung up without one. */
function rawHttp(addr: string, raw: string): Promise<string> {
  const i = addr.lastIndexOf(':');
  return new Promise((resolve) => {
    const s = netConnect({ host: addr.slice(0, i), port: Number(addr.slice(i + 1)) });
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    s.on('error', () => {});
    s.on('close', () => resolve(got.split('\r\n')[0] || 'closed'));
    s.setTimeout(5000, () => s.destroy());
    s.end(raw);
  });
}

/** meshca_certificate_requests_refused_total summed over its labels, from the HTTP port's /metrics. */
async function refusedCount(httpAddr: string): Promise<number> {
  const text = await (await fetch(`http://${httpAddr}/metrics`)).text();
  let n = 0;
  for (const m of text.matchAll(/^meshca_certificate_requests_refused_total\{[^}]*\} (\S+)$/gm)) n += Number(m[1]);
  return n;
}
