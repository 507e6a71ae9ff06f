import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { chmodSync, copyFileSync, cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { startServer, type RunningServer } from '../../src/server/index.js';
import { openssl, opensslVerify } from '../helpers/openssl.js';
import { MESHCA_BIN, REPO_ROOT, ok, runMeshca, runProcess, type RunResult } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';
import { rootTrustPolicyYaml } from './reload-helpers.js';

interface Finding {
  severity: 'ok' | 'warn' | 'fail';
  check: string;
  message: string;
  fix?: string;
}
interface Report {
  ok: boolean;
  mode: string;
  summary: Record<string, number>;
  findings: Finding[];
}

const t = tempDir('meshca-doctor-');
after(() => t.cleanup());

const meshca = (args: string[]) => runMeshca(args, { cwd: t.path, timeoutMs: 60_000 });
const must = async (args: string[]) => ok(await meshca(args), `meshca ${args.join(' ')}`);

/** Runs doctor with -o json; checks the exit code agrees with the report and returns it. */
async function doctor(args: string[]): Promise<Report & { run: RunResult }> {
  const run = await meshca(['doctor', ...args, '-o', 'json']);
  const r = JSON.parse(run.stdout) as Report;
  assert.equal(run.code, r.ok ? 0 : 1, `exit ${run.code} for ok=${r.ok}:\n${run.stdout}\n${run.stderr}`);
  return { ...r, run };
}

const failures = (r: Report) => r.findings.filter((f) => f.severity !== 'ok');

function onlyFailure(r: Report, check: RegExp, message: RegExp): Finding {
  const bad = failures(r);
  assert.equal(bad.length, 1, `expected one finding, got:\n${JSON.stringify(bad, null, 2)}`);
  assert.equal(bad[0].severity, 'fail');
  assert.match(bad[0].check, check);
  assert.match(bad[0].message, message);
  return bad[0];
}

/** Runs a fix command the way an operator would paste it, from the test directory. */
async function runFix(fix: string | undefined): Promise<void> {
  assert.ok(fix, 'the finding names a fix');
  const cmd = fix.replace(/#.*$/, '').replace(/(^|&& )meshca /g, `$1${process.execPath} ${MESHCA_BIN} `);
  const r = await runProcess('bash', ['-c', cmd], { cwd: t.path, timeoutMs: 60_000 });
  assert.equal(r.code, 0, `${fix}:\n${r.stdout}\n${r.stderr}`);
}

describe('meshca doctor: a state directory', () => {
  const dir = join(t.path, 'state');
  const other = join(t.path, 'other');
  const east = join(dir, 'clusters/east/cacerts');

  before(async () => {
    await must(['init', '--dir', dir]);
    await must(['intermediate', '--dir', dir, '--cluster', 'east', '--out', join(t.path, 'east-cacerts')]);
    await must(['intermediate', '--dir', dir, '--cluster', 'west', '--out', join(t.path, 'west-cacerts')]);
    await must(['init', '--dir', other]);
    await must(['intermediate', '--dir', other, '--cluster', 'east', '--out', join(t.path, 'alien-cacerts')]);
  });

  it('a healthy state directory: every finding ok, exit 0, a readable table', async () => {
    const r = await doctor(['--dir', dir]);
    assert.equal(r.mode, 'state');
    assert.deepEqual(failures(r), []);
    for (const check of ['root', 'root key', 'cluster east', 'cluster east intermediate', 'cluster west key', 'shared root', 'database']) {
      assert.ok(
        r.findings.some((f) => f.check === check),
        `checked ${check}`,
      );
    }
    const table = await meshca(['doctor', '--dir', dir]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^ok {4}cluster east intermediate: .* is valid until /m);
    assert.match(table.stdout, /^OK: 0 failed, 0 warning\(s\), \d+ ok \(state directory /m);
    const yaml = parseYaml((await meshca(['doctor', '--dir', dir, '-o', 'yaml'])).stdout) as Report;
    assert.deepEqual(yaml.findings, r.findings);
  });

  it('a key file readable by others: fail naming it, and chmod 600 fixes it', async () => {
    chmodSync(join(east, 'ca-key.pem'), 0o644);
    const r = await doctor(['--dir', dir]);
    const f = onlyFailure(r, /^cluster east key$/, /ca-key\.pem is readable by group or others \(mode 644\)/);
    assert.equal(f.fix, `chmod 600 ${join(east, 'ca-key.pem')}`);
    const table = await meshca(['doctor', '--dir', dir]);
    assert.equal(table.code, 1);
    assert.match(table.stdout, /^FAIL {2}cluster east key: .*mode 644.*\n {6}fix: chmod 600 /m);
    assert.match(table.stderr, /doctor found 1 problem/);
    await runFix(f.fix);
    assert.equal((await doctor(['--dir', dir])).ok, true);
  });

  it('a key that does not match the intermediate: fail, and `meshca intermediate` fixes it', async () => {
    copyFileSync(join(dir, 'clusters/west/cacerts/ca-key.pem'), join(east, 'ca-key.pem'));
    const r = await doctor(['--dir', dir]);
    const f = onlyFailure(r, /^cluster east key$/, /ca-key\.pem does not match .*ca-cert\.pem/);
    assert.equal(f.fix, `meshca intermediate --dir ${dir} --cluster east --out ./east-cacerts`);
    await runFix(f.fix);
    assert.equal((await doctor(['--dir', dir])).ok, true);
  });

  it('root-cert.pem holding another root: the cluster and the shared-root check fail', async () => {
    copyFileSync(join(other, 'root/root-cert.pem'), join(east, 'root-cert.pem'));
    const r = await doctor(['--dir', dir]);
    const bad = failures(r);
    assert.deepEqual(
      bad.map((f) => f.check),
      ['cluster east', 'shared root'],
    );
    assert.match(bad[0].message, /root-cert\.pem holds .*, not the state root .*would not trust the others/);
    assert.match(bad[1].message, /cluster\(s\) east do not trust the root/);
    await runFix(bad[0].fix);
    assert.equal((await doctor(['--dir', dir])).ok, true);
  });

  it('a cluster bundle under another root: its intermediate does not chain to the state root', async () => {
    for (const f of ['ca-cert.pem', 'ca-key.pem', 'cert-chain.pem']) copyFileSync(join(t.path, 'alien-cacerts', f), join(east, f));
    const r = await doctor(['--dir', dir]);
    const f = onlyFailure(r, /^cluster east$/, /does not chain to the state root .*is self-signed but is not one of the trusted roots/);
    await runFix(f.fix);
    assert.equal((await doctor(['--dir', dir])).ok, true);
  });

  it('expiry against the renewal window: --at inside it and past NotAfter fail; openssl agrees on the dates', async () => {
    const caCert = join(east, 'ca-cert.pem');
    const notAfter = new Date(new X509Certificate(readFileSync(caCert)).validTo);
    const days = (notAfter.getTime() - Date.now()) / 86_400_000;
    // 730 days, renewed with a third of that left: due about 243 days before NotAfter.
    const inWindow = await doctor(['--dir', dir, '--at', `+${Math.floor(days - 100)}d`]);
    // Both intermediates are 730 days old at most a minute apart: both are in their window.
    assert.deepEqual(
      failures(inWindow).map((f) => [f.severity, f.check]),
      [
        ['fail', 'cluster east intermediate'],
        ['fail', 'cluster west intermediate'],
      ],
    );
    assert.match(failures(inWindow)[0].message, /but was due for renewal at .* \(a third of its lifetime left\) and has not been renewed/);
    const narrower = await doctor(['--dir', dir, '--at', `+${Math.floor(days - 100)}d`, '--renew-before', '30d']);
    assert.equal(narrower.ok, true, JSON.stringify(failures(narrower)));
    // serve's renewBefore in the state directory's meshca.yaml is the default lead time.
    writeFileSync(join(dir, 'meshca.yaml'), 'renewBefore: 30d\n');
    const configured = await doctor(['--dir', dir, '--at', `+${Math.floor(days - 100)}d`]);
    assert.equal(configured.ok, true, JSON.stringify(failures(configured)));
    assert.match(
      configured.findings.find((f) => f.check === 'cluster east intermediate')!.message,
      /renewal due at .* \(renewBefore in .*meshca\.yaml 30d\)/,
    );
    rmSync(join(dir, 'meshca.yaml'));
    const past = await doctor(['--dir', dir, '--at', `+${Math.ceil(days + 1)}d`]);
    const expired = past.findings.find((f) => f.check === 'cluster east intermediate')!;
    assert.equal(expired.severity, 'fail');
    assert.match(expired.message, new RegExp(`expired at ${notAfter.toISOString().replace('.000Z', 'Z')}`));
    // openssl: still valid in (days - 100) days, expired in (days + 1).
    assert.equal(openssl(['x509', '-in', caCert, '-noout', '-checkend', String(Math.floor(days - 100) * 86_400)]).code, 0);
    assert.equal(openssl(['x509', '-in', caCert, '-noout', '-checkend', String(Math.ceil(days + 1) * 86_400)]).code, 1);
  });

  it('the state database: readable, and a mode that exposes it fails', async () => {
    await must(['token', '--dir', dir, '--namespace', 'default', '--service-account', 'web']);
    const r = await doctor(['--dir', dir]);
    assert.match(r.findings.find((f) => f.check === 'database')!.message, /meshca\.db is readable \(schema version \d+/);
    chmodSync(join(dir, 'meshca.db'), 0o644);
    const f = onlyFailure(await doctor(['--dir', dir]), /^database$/, /meshca\.db is readable by group or others/);
    await runFix(f.fix);
    assert.equal((await doctor(['--dir', dir])).ok, true);
  });

  it('keys encrypted at rest: without MESHCA_KEY_PASSPHRASE a warning says to set it; with it, ok', async () => {
    const enc = join(t.path, 'encrypted');
    const env = { MESHCA_KEY_PASSPHRASE: 'correct horse' };
    ok(await runMeshca(['init', '--dir', enc], { env }), 'init');
    ok(await runMeshca(['intermediate', '--dir', enc, '--cluster', 'east', '--out', join(t.path, 'enc-east')], { env }), 'intermediate');
    const without = await doctor(['--dir', enc]);
    assert.equal(without.ok, true);
    assert.deepEqual(
      failures(without).map((f) => [f.severity, f.check]),
      [
        ['warn', 'root key'],
        ['warn', 'cluster east key'],
      ],
    );
    assert.match(failures(without)[0].message, /set MESHCA_KEY_PASSPHRASE/);
    const run = await runMeshca(['doctor', '--dir', enc, '-o', 'json'], { env });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(failures(JSON.parse(run.stdout) as Report), []);
  });

  it('a missing state directory exits 3, as the other read commands', async () => {
    const r = await meshca(['doctor', '--dir', join(t.path, 'no-such-dir')]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /state directory .*no-such-dir does not exist/);
  });
});

describe('meshca doctor: intermediates a RootTrustPolicy renews', () => {
  const dir = join(t.path, 'rtp');
  const policy = join(t.path, 'rtp.yaml');
  const iso = (d: Date) => d.toISOString().replace(/\.\d+Z$/, 'Z');

  before(async () => {
    writeFileSync(policy, rootTrustPolicyYaml({ ttlDays: 30, secretRotationGracePeriodRatio: 0.1 }));
    // Not reconciled yet: the first reconcile below makes root and intermediate at one (past) time.
    await must(['apply', '--dir', dir, '--no-reconcile', '-f', policy]);
    await must(['cluster', 'add', 'east', '--dir', dir, '--no-reconcile']);
  });

  it('past the policy renewal point and not renewed: fail, and `meshca reconcile` fixes it', async () => {
    // Issued 28 days ago: a 30-day intermediate the policy renews with a tenth of its life left.
    await must(['reconcile', '--dir', dir, '--at', iso(new Date(Date.now() - 28 * 86_400_000)), '--allow-future-material']);
    const r = await doctor(['--dir', dir]);
    const f = onlyFailure(
      r,
      /^cluster east intermediate$/,
      /due for renewal at .*RootTrustPolicy\/gloo-mesh\/root-trust-policy: secretRotationGracePeriodRatio 0\.1\) and has not been renewed/,
    );
    assert.equal(f.fix, `meshca reconcile --dir ${dir}`);
    await runFix(f.fix);
    assert.equal((await doctor(['--dir', dir])).ok, true);
  });

  it('material not valid yet (written with --at): fail, and the fix reissues it', async () => {
    await must(['reconcile', '--dir', dir, '--at', '+40d', '--allow-future-material']);
    const f = onlyFailure(
      await doctor(['--dir', dir]),
      /^cluster east intermediate$/,
      /is not valid until .*issued for a later time \(--at\)/,
    );
    assert.equal(f.fix, `rm -r ${join(dir, 'clusters/east/cacerts')} && meshca reconcile --dir ${dir}`);
    await runFix(f.fix);
    assert.equal((await doctor(['--dir', dir])).ok, true);
  });
});

describe('meshca doctor: cert-manager Certificates', () => {
  const dir = join(t.path, 'cm');
  const cacerts = join(dir, 'secrets/istio-system/cacerts');
  const manifests = join(REPO_ROOT, 'test/fixtures/manifests/selfsigned-ca.yaml');

  before(async () => {
    await must(['apply', '--dir', dir, '--no-reconcile', '-f', manifests]);
    // 20 days ago: istio-ca (720h, renewBefore 360h) is past its renewal time, mesh-root (10 years) is not.
    const past = new Date(Date.now() - 20 * 86_400_000).toISOString();
    await must(['reconcile', '--dir', dir, '--at', past, '--allow-future-material']);
  });

  it('no root/ but Certificates: each Secret is judged by its renewBefore, and `meshca reconcile` fixes it', async () => {
    const r = await doctor(['--dir', dir]);
    assert.match(r.findings[0].message, /the CAs here come from the issuers of 2 cert-manager Certificate\(s\)/);
    const f = onlyFailure(
      r,
      /^certificate istio-system\/istio-ca$/,
      /"istio-ca" is valid until .* but was due for renewal at .* \(renewBefore 360h\) and has not been renewed/,
    );
    assert.equal(f.fix, `meshca reconcile --dir ${dir}`);
    await runFix(f.fix);
    const healed = await doctor(['--dir', dir]);
    assert.deepEqual(failures(healed), []);
    const checks = healed.findings.map((x) => x.check);
    for (const c of ['certificate istio-system/istio-ca', 'certificate istio-system/mesh-root', 'certificate istio-system/istio-ca key'])
      assert.ok(checks.includes(c), `${c} in ${checks.join(', ')}`);
    // openssl agrees the renewed Secret chains to its ca.crt.
    const v = opensslVerify(join(cacerts, 'ca.crt'), join(cacerts, 'tls.crt'));
    assert.equal(v.code, 0, v.stderr);
  });

  it('a ca.crt that tls.crt does not chain to, and a readable key: both fail', async () => {
    const saved = readFileSync(join(cacerts, 'ca.crt'));
    await must(['init', '--dir', join(t.path, 'cm-alien')]);
    try {
      copyFileSync(join(t.path, 'cm-alien/root/root-cert.pem'), join(cacerts, 'ca.crt'));
      chmodSync(join(cacerts, 'tls.key'), 0o644);
      const bad = failures(await doctor(['--dir', dir]));
      assert.deepEqual(
        bad.map((f) => f.check),
        ['certificate istio-system/istio-ca', 'certificate istio-system/istio-ca key'],
      );
      assert.match(bad[0].message, /^tls\.crt does not chain to ca\.crt: /);
      assert.match(bad[1].message, /tls\.key is readable by group or others \(mode 644\)/);
    } finally {
      writeFileSync(join(cacerts, 'ca.crt'), saved);
      chmodSync(join(cacerts, 'tls.key'), 0o600);
    }
  });
});

describe('meshca doctor: bundles and proxy secrets', () => {
  const dir = join(t.path, 'b-state');
  const other = join(t.path, 'b-other');
  const eastB = join(t.path, 'b-east');
  const westB = join(t.path, 'b-west');
  const alienB = join(t.path, 'b-alien');
  const proxy = join(t.path, 'proxy_secret.json');

  before(async () => {
    await must(['init', '--dir', dir]);
    await must(['intermediate', '--dir', dir, '--cluster', 'east', '--out', eastB]);
    await must(['intermediate', '--dir', dir, '--cluster', 'west', '--out', westB]);
    await must(['init', '--dir', other]);
    await must(['intermediate', '--dir', other, '--cluster', 'east', '--out', alienB]);
    const wl = join(t.path, 'b-web');
    await must([
      'issue',
      '--dir',
      dir,
      '--cluster',
      'east',
      '--spiffe-id',
      'spiffe://cluster.local/ns/default/sa/web',
      '--ttl',
      '24h',
      '--out',
      wl,
    ]);
    const b64 = (f: string) => readFileSync(join(wl, f)).toString('base64');
    const dump = {
      dynamicActiveSecrets: [
        { name: 'default', secret: { name: 'default', tlsCertificate: { certificateChain: { inlineBytes: b64('cert-chain.pem') } } } },
        { name: 'ROOTCA', secret: { name: 'ROOTCA', validationContext: { trustedCa: { inlineBytes: b64('root-cert.pem') } } } },
      ],
    };
    writeFileSync(proxy, JSON.stringify(dump));
  });

  it('bundles and a proxy secret under one root: ok, with --root too', async () => {
    const r = await doctor(['--root', join(dir, 'root/root-cert.pem'), eastB, westB, proxy]);
    assert.equal(r.mode, 'bundles');
    assert.deepEqual(failures(r), []);
    assert.match(r.findings.find((f) => f.check === 'shared root')!.message, /^all 3 source\(s\) trust root /);
  });

  it('a bundle under another root: fail naming it, the other sources are fine', async () => {
    const r = await doctor([eastB, westB, alienB]);
    const f = onlyFailure(r, /^shared root$/, new RegExp(`^${alienB} does not trust root .*, which 2 other source\\(s\\) trust`));
    assert.match(f.fix!, /^meshca intermediate --dir STATE-DIR --cluster CLUSTER --out /);
    assert.match(r.run.stderr, /doctor found 1 problem/);
    // One against one: no majority, so doctor asks which root is the mesh's rather than guess.
    const tie = onlyFailure(await doctor([eastB, alienB]), /^shared root$/, /no root is trusted by more of them than another/);
    assert.equal(tie.fix, `meshca doctor --root MESH-ROOT.pem ${eastB} ${alienB}   # name the mesh's root to see which to replace`);
  });

  it("root-cert.pem that does not match the chain's top: fail", async () => {
    const mixed = join(t.path, 'b-mixed');
    cpSync(eastB, mixed, { recursive: true });
    copyFileSync(join(alienB, 'root-cert.pem'), join(mixed, 'root-cert.pem'));
    const r = await doctor([mixed, westB]);
    const bad = failures(r);
    assert.ok(
      bad.some((f) => f.check === mixed && /root-cert\.pem holds .* but the chain ends at /.test(f.message)),
      JSON.stringify(bad, null, 2),
    );
    assert.ok(bad.some((f) => f.check === mixed && /does not verify to its own root/.test(f.message)));
  });

  it('a workload certificate past the half life istio-agent renews at: fail', async () => {
    const r = await doctor(['--at', '+14h', proxy]);
    const f = onlyFailure(r, /workload certificate$/, /due for renewal at .*istio-agent renews at half life/);
    assert.match(f.fix!, /^meshca doctor --ca-addr ISTIOD:15012 /);
  });
});

describe('meshca doctor: a served CA', () => {
  const dir = join(t.path, 'served');
  const rootFile = join(t.path, 'served-root.pem');
  const tokenFile = join(t.path, 'token');
  let server: RunningServer;

  before(async () => {
    server = await startServer({ dir, grpcAddr: '127.0.0.1:0', httpAddr: '127.0.0.1:0', logLevel: 'silent' });
    writeFileSync(rootFile, server.rootPem);
    const tok = await must(['token', '--dir', dir, '--namespace', 'shop', '--service-account', 'cart', '--ttl', '10m']);
    writeFileSync(tokenFile, tok.stdout.trim());
  });
  after(async () => server?.close());

  it('TLS chain, name, readiness, trust bundle, clock and a test certificate: all ok', async () => {
    const r = await doctor([
      '--ca-addr',
      server.grpcAddress,
      '--ca-root',
      rootFile,
      '--http-addr',
      server.httpAddress,
      '--token-file',
      tokenFile,
    ]);
    assert.equal(r.mode, 'served');
    assert.deepEqual(failures(r), []);
    const msgs = r.findings.map((f) => `${f.check}: ${f.message}`).join('\n');
    assert.match(msgs, /chains to --ca-root /);
    assert.match(msgs, /names istiod\.istio-system\.svc/);
    assert.match(msgs, /\/readyz: ready/);
    assert.match(msgs, /^clock: the server's clock is within /m);
    assert.match(msgs, /^test certificate: issued spiffe:\/\/cluster\.local\/ns\/shop\/sa\/cart/m);
  });

  it('a --ca-root the CA does not chain to: fail naming the file, and the fix fetches the right one', async () => {
    const wrong = join(t.path, 'wrong-root.pem');
    copyFileSync(join(t.path, 'other/root/root-cert.pem'), wrong);
    const r = await doctor(['--ca-addr', server.grpcAddress, '--ca-root', wrong, '--http-addr', server.httpAddress]);
    const tls = r.findings.find((f) => f.check === `CA ${server.grpcAddress}` && f.severity === 'fail');
    assert.ok(tls, JSON.stringify(r.findings, null, 2));
    assert.match(tls.message, new RegExp(`does not chain to --ca-root ${wrong}`));
    assert.equal(tls.fix, `curl -fsS 'http://${server.httpAddress}/v1/trust-bundle?format=pem' -o ${wrong}`);
    assert.equal(r.findings.find((f) => f.check === 'trust bundle')!.severity, 'fail');
    await runFix(tls.fix);
    assert.equal((await doctor(['--ca-addr', server.grpcAddress, '--ca-root', wrong, '--http-addr', server.httpAddress])).ok, true);
  });

  it('a server name the certificate does not carry, and nothing listening: fail', async () => {
    const named = await doctor(['--ca-addr', server.grpcAddress, '--ca-root', rootFile, '--ca-server-name', 'ca.example.com']);
    const f = onlyFailure(named, /^CA /, /names .*, not ca\.example\.com/);
    assert.match(f.fix!, /^meshca serve --serving-sans ca\.example\.com,istiod\.istio-system\.svc/);
    const down = await doctor(['--ca-addr', '127.0.0.1:9', '--ca-root', rootFile]);
    onlyFailure(down, /^CA 127\.0\.0\.1:9$/, /no TLS connection to 127\.0\.0\.1:9: .*ECONNREFUSED/);
  });
});
