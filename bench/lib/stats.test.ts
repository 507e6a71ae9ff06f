import assert from 'node:assert/strict';
import { test } from 'node:test';
import { relativeLoss, summarize, t95 } from './stats.js';

test('summarize gives the mean and the n-1 standard deviation', () => {
  const s = summarize([2, 4, 4, 4, 5, 5, 7, 9]);
  assert.equal(s.mean, 5);
  assert.ok(Math.abs(s.sd - Math.sqrt(32 / 7)) < 1e-12);
  assert.ok(Number.isNaN(summarize([3]).sd));
});

test('t quantiles: the table, rounding a fractional df down, the normal limit', () => {
  assert.equal(t95(1), 12.706);
  assert.equal(t95(6), 2.447);
  assert.equal(t95(6.9), 2.447);
  assert.equal(t95(30), 2.042);
  assert.equal(t95(200), 1.96);
  assert.ok(Number.isNaN(t95(0.5)));
});

test('relativeLoss: 10% lower with equal spreads, against a hand computation', () => {
  // a: mean 90, sd sqrt(8/3); b: mean 100, sd sqrt(8/3); four runs each.
  const r = relativeLoss([88, 90, 90, 92], [98, 100, 100, 102]);
  assert.ok(Math.abs(r.percent - 10) < 1e-9);
  const v = 8 / 3 / 4; // variance of each mean
  const relA = v / 8100;
  const relB = v / 10000;
  const se = 0.9 * Math.sqrt(relA + relB);
  const df = (relA + relB) ** 2 / (relA ** 2 / 3 + relB ** 2 / 3);
  assert.ok(Math.abs(r.df - df) < 1e-9);
  assert.ok(df > 5 && df < 6); // so the quantile is t(5)
  assert.ok(Math.abs(r.ci95 - 100 * 2.571 * se) < 1e-9);
});

test('relativeLoss: identical runs give a zero-width interval; one run a side gives none', () => {
  const same = relativeLoss([5, 5], [5, 5]);
  assert.equal(same.percent, 0);
  assert.equal(same.ci95, 0);
  const one = relativeLoss([90], [100]);
  assert.ok(Number.isNaN(one.ci95));
  assert.ok(Math.abs(one.percent - 10) < 1e-9);
});

test('relativeLoss: wider spreads widen the interval, a negative loss stays negative', () => {
  const narrow = relativeLoss([95, 96, 94, 95], [100, 101, 99, 100]);
  const wide = relativeLoss([85, 105, 90, 100], [90, 110, 95, 105]);
  assert.ok(wide.ci95 > 4 * narrow.ci95);
  assert.ok(relativeLoss([110, 112], [100, 102]).percent < 0);
});
