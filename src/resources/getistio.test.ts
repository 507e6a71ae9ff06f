import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseGetistioConfig } from './getistio.js';

// Compiled to dist/src/resources/: the fixture lives in the source tree.
const FIXTURE = fileURLToPath(new URL('../../../test/fixtures/getistio/aws-acm-config.yaml', import.meta.url));
const seed = readFileSync(FIXTURE, 'utf8');

function problems(text: string): string {
  try {
    parseGetistioConfig(text, 'cfg.yaml');
  } catch (e) {
    return (e as Error).message;
  }
  assert.fail('expected the config to be rejected');
}

describe('getistio gen-ca config', () => {
  it('accepts the tutorial YAML verbatim, trimming the ARN and honouring organizationunit', () => {
    const p = parseGetistioConfig(seed, 'aws-acm-config.yaml');
    assert.equal(p.signingCAArn, 'arn:aws:acm-pca:us-east-2:859085711342:certificate-authority/570689c0-d28d-8037-ba4b-24c652916e1b');
    assert.equal(p.templateArn, 'arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen0/V1');
    assert.equal(p.signingAlgorithm, 'SHA256WITHRSA');
    assert.equal(p.namespace, 'istio-system');
    assert.equal(p.overrideExisting, true);
    assert.equal(p.validityDays, 365);
    assert.equal(p.keyLength, 2048);
    assert.deepEqual(p.subject, {
      commonName: 'getistio.example.io',
      country: ['US'],
      province: undefined,
      locality: ['Sunnyvale'],
      streetAddress: undefined,
      postalCode: undefined,
      organization: ['Istio'],
      organizationalUnit: ['engineering'],
      serialNumber: undefined,
    });
    assert.deepEqual(p.sans.emailAddresses, ['youremail@example.io']);
  });

  it('accepts the Go zero values that `getistio gen-ca --help` prints, and applies getistio defaults', () => {
    const p = parseGetistioConfig(
      [
        'providerName: aws',
        'disableSecretCreation: false',
        'providerConfig:',
        '  aws:',
        '    signingCAArn: arn:aws:acm-pca:us-west-2:123456789012:certificate-authority/abc',
        'certificateParameters:',
        '  caOptions:',
        '    certSigningRequestParams:',
        '      raw: []',
        '      version: 0',
        '      publickey: null',
        '      subject:',
        '        organizationalunit: []',
        '        names: []',
        '      dnsnames:',
        '      - ca.istio.io',
      ].join('\n'),
      'cfg.yaml',
    );
    assert.equal(p.templateArn, 'arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen0/V1');
    assert.equal(p.signingAlgorithm, undefined);
    assert.equal(p.validityDays, 3650);
    assert.equal(p.overrideExisting, false);
    assert.equal(p.subject.commonName, 'Istio CA');
    assert.deepEqual(p.sans.dnsNames, ['ca.istio.io']);
  });

  it('names the path of an unknown field', () => {
    const msg = problems(seed.replace('    validityDays: 365', '    validityDays: 365\n    validityYears: 1'));
    assert.match(msg, /certificateParameters\.caOptions\.validityYears: unknown field/);
    assert.match(problems(seed.replace('commonname:', 'commonName:')), /certSigningRequestParams\.subject\.commonName: unknown field/);
  });

  it('names the path of a field of the wrong type', () => {
    assert.match(problems(seed.replace('validityDays: 365', 'validityDays: "a year"')), /certificateParameters\.caOptions\.validityDays: /);
    assert.match(
      problems(seed.replace('overrideExistingCACertsSecret: true', 'overrideExistingCACertsSecret: yes please')),
      /secretOptions\.overrideExistingCACertsSecret/,
    );
    assert.match(problems(seed.replace('- "US"', '- "USA"')), /subject\.country\[0\]: must be a two-letter country code/);
  });

  it('refuses other providers, weak keys and malformed ARNs', () => {
    assert.match(problems(seed.replace('providerName: "aws"', 'providerName: "gcp"')), /providerName: must be "aws".*"gcp"/);
    assert.match(
      problems(seed.replace('keyLength: 2048', 'keyLength: 1024')),
      /caOptions\.keyLength: RSA key length 1024 is not accepted; use 2048, 3072 or 4096/,
    );
    assert.match(
      problems(seed.replace(/signingCAArn: ".*"/, 'signingCAArn: "arn:aws:acm:us-east-2:1:certificate/x"')),
      /providerConfig\.aws\.signingCAArn: must be an ACM PCA CA ARN/,
    );
    assert.match(
      problems(seed.replace('signingAlgorithm: SHA256WITHRSA', 'signingAlgorithm: MD5WITHRSA')),
      /providerConfig\.aws\.signingAlgorithm: must be one of/,
    );
  });

  it('reports every problem at once, and YAML syntax errors with the file name', () => {
    const msg = problems(seed.replace('keyLength: 2048', 'keyLength: 1024').replace('providerName: "aws"', 'providerName: "gcp"'));
    assert.match(msg, /providerName/);
    assert.match(msg, /keyLength/);
    assert.match(problems('providerName: [aws'), /cfg\.yaml is not valid YAML/);
    assert.match(problems('- just\n- a list\n'), /expected a YAML mapping/);
  });
});
