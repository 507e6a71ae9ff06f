import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pairedLoss, relativeLoss, summarize, t95 } from './stats.js';

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

test('pairedLoss: the mean of the per-pair losses with a t interval over the pairs', () => {
  // Losses 10%, 12%, 8%: mean 10, sd 2, n 3, t(2) = 4.303.
  const r = pairedLoss([90, 88, 92], [100, 100, 100]);
  assert.ok(Math.abs(r.percent - 10) < 1e-9);
  assert.equal(r.df, 2);
  assert.ok(Math.abs(r.ci95 - (4.303 * 2) / Math.sqrt(3)) < 1e-9);
});

test('pairedLoss: a drift that moves both sides of each pair does not widen the interval', () => {
  // The same 5% loss at three machine speeds: paired, no spread at all; unpaired, a wide interval.
  const b = [100, 130, 80];
  const a = b.map((x) => 0.95 * x);
  const paired = pairedLoss(a, b);
  assert.ok(Math.abs(paired.percent - 5) < 1e-9);
  assert.ok(paired.ci95 < 1e-9);
  assert.ok(relativeLoss(a, b).ci95 > 20);
});

test('pairedLoss: one pair gives no interval; mismatched or empty inputs are refused', () => {
  const one = pairedLoss([90], [100]);
  assert.ok(Number.isNaN(one.ci95));
  assert.throws(() => pairedLoss([1, 2], [1]), /as many a as b/);
  assert.throws(() => pairedLoss([], []), /at least one/);
});
