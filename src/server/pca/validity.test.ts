import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PcaError } from './errors.js';
import { parseEndDate, resolveValidity } from './validity.js';

const now = new Date('2024-01-31T10:00:00Z');

describe('PCA Validity', () => {
  it('resolves DAYS, MONTHS (calendar, end of month kept), YEARS and ABSOLUTE', () => {
    assert.equal(resolveValidity({ Type: 'DAYS', Value: 2 }, now).toISOString(), '2024-02-02T10:00:00.000Z');
    assert.equal(resolveValidity({ Type: 'MONTHS', Value: 1 }, now).toISOString(), '2024-02-29T10:00:00.000Z');
    assert.equal(resolveValidity({ Type: 'YEARS', Value: 1 }, now).toISOString(), '2025-01-31T10:00:00.000Z');
    assert.equal(resolveValidity({ Type: 'ABSOLUTE', Value: 2524608000 }, now).toISOString(), '2050-01-01T00:00:00.000Z');
  });

  it('reads END_DATE as UTCTime (YY >= 50 is 19YY) or GeneralizedTime, like the API reference', () => {
    assert.equal(parseEndDate(491231235959, 'Validity').toISOString(), '2049-12-31T23:59:59.000Z');
    assert.equal(parseEndDate(501231235959, 'Validity').toISOString(), '1950-12-31T23:59:59.000Z');
    assert.equal(parseEndDate(20301231235959, 'Validity').toISOString(), '2030-12-31T23:59:59.000Z');
    assert.throws(() => parseEndDate(20301332000000, 'Validity'), /not a valid date/);
    assert.throws(() => parseEndDate(2030, 'Validity'), /YYMMDDHHMMSS/);
  });

  it('rejects unknown types and non-positive or fractional values as InvalidArgsException', () => {
    for (const v of [
      { Type: 'WEEKS', Value: 1 },
      { Type: 'DAYS', Value: 0 },
      { Type: 'DAYS', Value: 1.5 },
      { Type: 'DAYS', Value: '3' },
    ]) {
      assert.throws(
        () => resolveValidity(v, now),
        (e: unknown) => e instanceof PcaError && e.awsType === 'InvalidArgsException',
      );
    }
    assert.throws(
      () => resolveValidity(undefined, now),
      (e: unknown) => e instanceof PcaError && e.awsType === 'ValidationException',
    );
  });
});
