import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { makeRoot } from '../../test/helpers/pki.js';
import { parseCertificates } from '../pki/certificate.js';
import { caTrust } from './trust.js';

test('the CA is verified with --ca-root plus the roots of the last answer, read again on every call', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshca-trust-'));
  const out = join(dir, 'out');
  const caRoot = join(dir, 'ca-root.pem');
  const oldRoot = makeRoot({ cn: 'old' }).cert;
  const newRoot = makeRoot({ cn: 'new' }).cert;
  writeFileSync(caRoot, oldRoot.pem);
  const trust = caTrust(caRoot, out);
  const fps = () => parseCertificates(trust()).map((c) => c.fingerprint256);
  assert.deepEqual(fps(), [oldRoot.fingerprint256], 'before the first answer: --ca-root alone');
  // The agent published an answer carrying both roots (a rotation under way).
  mkdirSync(out);
  writeFileSync(join(out, 'root-cert.pem'), oldRoot.pem + newRoot.pem);
  assert.deepEqual(fps(), [oldRoot.fingerprint256, newRoot.fingerprint256], 'no duplicates');
  // --ca-root mid-update (unreadable): the published roots still let the agent renew.
  writeFileSync(caRoot, 'garbage');
  assert.deepEqual(fps(), [oldRoot.fingerprint256, newRoot.fingerprint256]);
  writeFileSync(join(out, 'root-cert.pem'), '');
  assert.throws(trust, /no root to verify the CA with/);
});
