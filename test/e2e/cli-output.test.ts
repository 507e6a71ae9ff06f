import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { runMeshca, type RunResult, REPO_ROOT } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';
import { rootTrustPolicyYaml } from './reload-helpers.js';

const ID = 'spiffe://cluster.local/ns/bookinfo/sa/reviews';
const FORMATS = ['json', 'yaml'] as const;

async function ok(args: string[]): Promise<RunResult> {
  const r = await runMeshca(args, { timeoutMs: 60_000 });
  assert.equal(r.code, 0, `meshca ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** Runs a read command with -o json or -o yaml and parses what it printed. */
async function structured(args: string[], format: 'json' | 'yaml', code = 0): Promise<Record<string, unknown>> {
  const r = await runMeshca([...args, '-o', format], { timeoutMs: 60_000 });
  assert.equal(r.code, code, `meshca ${args.join(' ')} -o ${format} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return (format === 'json' ? JSON.parse(r.stdout) : parseYaml(r.stdout)) as Record<string, unknown>;
}

const fingerprint = (file: string) => new X509Certificate(readFileSync(file)).fingerprint256;

describe('read commands share -o table|wide|json|yaml', () => {
  const t = tempDir('meshca-output-');
  const dir = join(t.path, 'state');
  const other = join(t.path, 'other');
  const east = join(t.path, 'east');
  const west = join(t.path, 'west');
  const alien = join(t.path, 'alien');
  const wl = join(t.path, 'wl');

  before(async () => {
    await ok(['init', '--dir', dir]);
    await ok(['init', '--dir', other]);
    await ok(['intermediate', '--dir', dir, '--cluster', 'east', '--out', east]);
    await ok(['intermediate', '--dir', dir, '--cluster', 'west', '--out', west]);
    await ok(['intermediate', '--dir', other, '--cluster', 'alien', '--out', alien]);
    await ok(['issue', '--dir', dir, '--cluster', 'east', '--spiffe-id', ID, '--out', wl]);
    await ok(['apply', '--dir', dir, '-f', join(REPO_ROOT, 'test/fixtures/manifests/selfsigned-ca.yaml')]);
    await ok(['cluster', 'add', 'north', '--dir', dir, '--no-reconcile']);
    writeFileSync(join(t.path, 'policy.yaml'), rootTrustPolicyYaml());
    await ok(['apply', '--dir', dir, '-f', join(t.path, 'policy.yaml')]);
  });

  it('rejects an unknown format on every read command, naming the accepted ones', async () => {
    const cmds = [
      ['get', 'issuers', '--dir', dir],
      ['inspect', wl],
      ['verify', '--root', join(east, 'root-cert.pem'), join(wl, 'cert-chain.pem')],
      ['compare-roots', east, west],
      ['cluster', 'list', '--dir', dir],
    ];
    for (const c of cmds) {
      const r = await runMeshca([...c, '-o', 'xml']);
      assert.equal(r.code, 2, `${c.join(' ')} -o xml: ${r.stderr}`);
      assert.match(r.stderr, /-o xml: use table, wide, json, yaml/);
      assert.equal(r.stdout, '');
    }
  });

  it('get: -o table is the default; json/yaml/wide/name; comma-separated kinds', async () => {
    // A fixed --at keeps the AGE column equal between the two runs.
    const at = new Date(Date.now() + 3_600_000).toISOString();
    const plain = (await ok(['get', 'issuers', '--dir', dir, '--at', at])).stdout;
    assert.equal((await ok(['get', 'issuers', '--dir', dir, '--at', at, '-o', 'table'])).stdout, plain);
    assert.match(plain, /^NAMESPACE\s+NAME\s+READY\s+AGE$/m);
    assert.match((await ok(['get', 'issuers', '--dir', dir, '-o', 'wide'])).stdout, /^NAMESPACE\s+NAME\s+READY\s+STATUS\s+AGE$/m);

    const both = (await ok(['get', 'issuers,certificates', '--dir', dir])).stdout;
    const [issuers, certs] = both.split('\n\n');
    assert.match(issuers, /^NAMESPACE\s+NAME\s+READY\s+AGE\n/);
    assert.match(issuers, /^istio-system\s+selfsigned\s+True/m);
    assert.match(issuers, /^istio-system\s+mesh-root\s+True/m);
    assert.match(certs, /^NAMESPACE\s+NAME\s+READY\s+SECRET\s+ISSUER/);
    assert.match(certs, /^istio-system\s+istio-ca\s+True\s+cacerts\s+mesh-root/m);
    assert.match(certs, /^istio-system\s+mesh-root\s+True\s+mesh-root\s+selfsigned/m);

    const names = (await ok(['get', 'issuer,cert', '--dir', dir, '-o', 'name'])).stdout.trim().split('\n').sort();
    assert.deepEqual(names, [
      'certificate.cert-manager.io/istio-ca',
      'certificate.cert-manager.io/mesh-root',
      'issuer.cert-manager.io/mesh-root',
      'issuer.cert-manager.io/selfsigned',
    ]);
    for (const f of FORMATS) {
      const list = await structured(['get', 'issuers,certificates', '--dir', dir], f);
      assert.equal(list.kind, 'List');
      const items = list.items as { kind: string; metadata: { name: string }; status: { conditions: { type: string }[] } }[];
      assert.deepEqual(items.map((i) => `${i.kind}/${i.metadata.name}`).sort(), [
        'Certificate/istio-ca',
        'Certificate/mesh-root',
        'Issuer/mesh-root',
        'Issuer/selfsigned',
      ]);
      assert.ok(items.every((i) => i.status.conditions.some((c) => c.type === 'Ready')));
      const one = await structured(['get', 'certificate', 'istio-ca', '--dir', dir], f);
      assert.equal(one.kind, 'Certificate');
    }
    const named = await runMeshca(['get', 'issuers,certificates', 'istio-ca', '--dir', dir]);
    assert.equal(named.code, 2);
    assert.match(named.stderr, /a NAME needs a single kind/);
    // kubectl's TYPE/NAME, as the guides type it (`kubectl get awspcaclusterissuer/root-ca`, `secret/cacerts`).
    for (const f of FORMATS) {
      assert.deepEqual(
        await structured(['get', 'certificate/istio-ca', '--dir', dir], f),
        await structured(['get', 'certificate', 'istio-ca', '--dir', dir], f),
      );
    }
    assert.equal(
      (await ok(['get', 'secret/cacerts', '-n', 'istio-system', '--dir', dir, '-o', 'name'])).stdout,
      (await ok(['get', 'secret', 'cacerts', '-n', 'istio-system', '--dir', dir, '-o', 'name'])).stdout,
    );
    for (const bad of [['issuers/selfsigned', 'mesh-root'], ['issuers,certs/istio-ca'], ['issuer/'], ['issuer/a/b']]) {
      const r = await runMeshca(['get', ...bad, '--dir', dir]);
      assert.equal(r.code, 2, `${bad.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /KIND\/NAME/);
    }
    const badKind = await runMeshca(['get', 'issuers,bogus', '--dir', dir]);
    assert.notEqual(badKind.code, 0);
    assert.match(badKind.stderr, /bogus/);
  });

  it('inspect: -o json/yaml print the report, --json stays as an alias, table the default', async () => {
    const text = (await ok(['inspect', wl])).stdout;
    assert.equal((await ok(['inspect', wl, '-o', 'table'])).stdout, text);
    assert.match(text, /verifies/i);
    const alias = JSON.parse((await ok(['inspect', wl, '--json'])).stdout);
    for (const f of FORMATS) {
      const r = await structured(['inspect', wl], f);
      assert.deepEqual(Object.keys(r).sort(), ['certificates', 'chain', 'csrs', 'identity', 'kind', 'source']);
      const certs = r.certificates as { role: string; fingerprintSha256?: string }[];
      assert.equal(certs.length, 3);
      assert.equal((r.chain as { verified: boolean }).verified, true);
      assert.deepEqual((r.identity as { spiffeIds: string[] }).spiffeIds, [ID]);
      assert.deepEqual(
        { ...r, certificates: certs.map((c) => c.role) },
        { ...alias, certificates: alias.certificates.map((c: { role: string }) => c.role) },
      );
    }
    assert.doesNotMatch((await ok(['inspect', '--help'])).stdout, /--json/);

    // The agent's chain file alone (leaf and intermediate, root-cert.pem beside it), as the README's
    // tour inspects it: not a broken chain, and the hint names the root beside it.
    const agentOut = join(t.path, 'agent-out');
    mkdirSync(agentOut);
    const pems = readFileSync(join(wl, 'cert-chain.pem'), 'utf8').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n/g)!;
    writeFileSync(join(agentOut, 'cert-chain.pem'), pems.slice(0, 2).join(''));
    writeFileSync(join(agentOut, 'root-cert.pem'), readFileSync(join(wl, 'root-cert.pem')));
    const alone = (await ok(['inspect', join(agentOut, 'cert-chain.pem')])).stdout;
    assert.match(alone, /^Chain: not verified \(no root given\):$/m);
    const hint = `pass --root ${join(agentOut, 'root-cert.pem')} (beside it), or inspect the directory ${agentOut}`;
    assert.ok(alone.includes(hint), alone);
    assert.match((await ok(['inspect', agentOut])).stdout, /^Chain: verifies to root /m, 'the directory form finds the root');
    const json = await structured(['inspect', join(agentOut, 'cert-chain.pem')], 'json');
    assert.deepEqual(json.chain, {
      verified: false,
      trustedFrom: 'nothing',
      root: null,
      problems: [`the source carries no root to verify against; ${hint}`],
    });
  });

  it('verify: {ok, checks:[{name, ok, message}]} and exit 1 on failure, also with -o json/yaml', async () => {
    const args = ['verify', '--root', join(east, 'root-cert.pem'), join(wl, 'cert-chain.pem')];
    const text = (await ok(args)).stdout;
    assert.match(text, /^OK: .* chain of 3 certificate\(s\) verifies/);
    assert.equal((await ok([...args, '-o', 'table'])).stdout, text);
    assert.match((await ok([...args, '-o', 'wide'])).stdout, /^ {2}ok {4}trusted root: ends at root/m);
    const root = fingerprint(join(east, 'root-cert.pem'));
    for (const f of FORMATS) {
      const r = await structured(args, f);
      assert.equal(r.ok, true);
      assert.equal((r.root as { fingerprintSha256: string }).fingerprintSha256, root);
      const checks = r.checks as { name: string; ok: boolean; message: string }[];
      assert.deepEqual(
        checks.map((c) => c.name.split(' ')[0]),
        ['leaf', 'intermediate', 'root', 'trusted'],
      );
      assert.ok(checks.every((c) => c.ok && typeof c.message === 'string' && c.message.length > 0));
      assert.deepEqual(r.problems, []);

      const bad = await structured(['verify', '--root', join(alien, 'root-cert.pem'), join(wl, 'cert-chain.pem')], f, 1);
      assert.equal(bad.ok, false);
      assert.equal(bad.root, null);
      const failed = (bad.checks as { name: string; ok: boolean; message: string }[]).filter((c) => !c.ok);
      assert.ok(failed.some((c) => c.name === 'trusted root' && /does not end at a trusted root/.test(c.message)));
      assert.ok((bad.problems as string[]).length > 0);
    }
    const badText = await runMeshca(['verify', '--root', join(alien, 'root-cert.pem'), join(wl, 'cert-chain.pem')]);
    assert.equal(badText.code, 1);
    assert.equal(badText.stdout, '');
    assert.match(badText.stderr, /does not verify against/);
  });

  it('compare-roots: {shared, roots, bundles} and exit 1 when no root is shared, also with -o json/yaml', async () => {
    const text = (await ok(['compare-roots', east, west])).stdout;
    assert.equal((await ok(['compare-roots', east, west, '-o', 'table'])).stdout, text);
    assert.match(text, /^all 2 sources share root/m);
    const root = fingerprint(join(east, 'root-cert.pem'));
    const alienRoot = fingerprint(join(alien, 'root-cert.pem'));
    for (const f of FORMATS) {
      const r = await structured(['compare-roots', east, west], f);
      assert.equal(r.shared, true);
      assert.equal(r.ok, true);
      assert.equal((r.sharedRoot as { fingerprintSha256: string }).fingerprintSha256, root);
      assert.deepEqual(r.roots, [
        { subject: (r.roots as { subject: string }[])[0].subject, fingerprintSha256: root, sources: [east, west] },
      ]);
      assert.deepEqual(
        (r.bundles as { source: string; roots: string[]; chainVerifies: boolean | null }[]).map((b) => [
          b.source,
          b.roots,
          b.chainVerifies,
        ]),
        [
          [east, [root], true],
          [west, [root], true],
        ],
      );

      const bad = await structured(['compare-roots', east, alien], f, 1);
      assert.equal(bad.shared, false);
      assert.equal(bad.ok, false);
      assert.equal(bad.sharedRoot, null);
      assert.deepEqual((bad.roots as { fingerprintSha256: string }[]).map((x) => x.fingerprintSha256).sort(), [root, alienRoot].sort());
      assert.match((bad.problems as string[]).join('\n'), /do not share a root/);
    }
    const badText = await runMeshca(['compare-roots', east, alien]);
    assert.equal(badText.code, 1);
    assert.match(badText.stderr, /do not share a root/);
  });

  it('cluster list: table, wide, and {clusters:[{name, intermediate, delivery}]}', async () => {
    const ca = new X509Certificate(readFileSync(join(dir, 'clusters', 'north', 'cacerts', 'ca-cert.pem')));
    for (const args of [[], ['-o', 'table']]) {
      const text = (await ok(['cluster', 'list', '--dir', dir, ...args])).stdout;
      assert.match(text, /^NAME\s+INTERMEDIATE\s+TIME LEFT\s+AGE\s+DELIVERY\s+DIGEST\s+EXPIRES\s+LAST WRITE\s+LAST ERROR\n/);
      assert.match(
        text,
        new RegExp(
          `^north\\s+${ca.serialNumber.slice(0, 16).toLowerCase()}\\s+\\S+\\s+\\S+\\s+files only\\s+${new Date(ca.validTo).toISOString()}$`,
          'm',
        ),
      );
    }
    assert.match(
      (await ok(['cluster', 'list', '--dir', dir, '-o', 'wide'])).stdout,
      /^NAME\s+INTERMEDIATE\s+TIME LEFT\s+AGE\s+DELIVERY\s+SERVER/m,
    );
    for (const f of FORMATS) {
      const r = await structured(['cluster', 'list', '--dir', dir], f);
      const clusters = r.clusters as { name: string; intermediate: { serial: string; notAfter: string; fingerprint: string } | null }[];
      assert.deepEqual(
        clusters.map((c) => c.name),
        ['north'],
      );
      assert.equal(clusters[0].intermediate!.fingerprint, ca.fingerprint256);
      assert.equal(clusters[0].intermediate!.serial.toUpperCase(), ca.serialNumber.toUpperCase());
      assert.equal(Date.parse(clusters[0].intermediate!.notAfter), Date.parse(ca.validTo));
    }
  });
});
