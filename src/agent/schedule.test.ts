import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BACKOFF_CAP_MS, MIN_RENEW_DELAY_MS, backoffDelay, renewalDelay, renewalTime } from './schedule.js';

const H = 3_600_000;
const t0 = Date.UTC(2030, 0, 1);
const cert = (lifetimeMs: number, backdateMs = 0) => ({
  notBefore: new Date(t0 - backdateMs),
  notAfter: new Date(t0 + lifetimeMs),
  receivedAt: t0,
});

test('renewal at renewAt of the lifetime, jittered by at most ±10% of that offset', () => {
  assert.equal(renewalTime({ ...cert(24 * H), renewAt: 0.5, random: () => 0.5 }), t0 + 12 * H);
  assert.equal(renewalTime({ ...cert(24 * H), renewAt: 0.5, random: () => 0 }), t0 + 12 * H * 0.9);
  assert.equal(renewalTime({ ...cert(24 * H), renewAt: 0.5, random: () => 1 }), t0 + 12 * H * 1.1);
  assert.equal(renewalTime({ ...cert(10 * H), renewAt: 0.8, random: () => 0.5 }), t0 + 8 * H);
  for (let i = 0; i < 200; i++) {
    const r = renewalTime({ ...cert(24 * H), renewAt: 0.5, random: Math.random });
    assert.ok(r >= t0 + 10.8 * H && r <= t0 + 13.2 * H, `renewal ${(r - t0) / H}h outside 10.8h..13.2h`);
  }
});

test('a back-dated notBefore does not make a short-lived certificate due on arrival', () => {
  // meshca back-dates by 60 s: a 10 s certificate counted from notBefore would be overdue at once.
  const r = renewalTime({ ...cert(10_000, 60_000), renewAt: 0.5, random: () => 0.5 });
  assert.equal(r, t0 + 5_000);
  // A certificate issued before it was received (restart with --cert-dir): counted from notBefore.
  const old = renewalTime({
    notBefore: new Date(t0),
    notAfter: new Date(t0 + 24 * H),
    receivedAt: t0 + 48 * H,
    renewAt: 0.5,
    random: () => 0.5,
  });
  assert.equal(old, t0 + 24 * H);
});

test('jitter never pushes renewal past expiry', () => {
  const r = renewalTime({ ...cert(H), renewAt: 0.95, random: () => 1 });
  assert.ok(r < t0 + H);
  assert.equal(r, t0 + 0.95 * H);
});

test('the delay is never below the floor, so an overdue certificate cannot make the loop spin', () => {
  assert.equal(renewalDelay({ ...cert(H), renewAt: 0.5, random: () => 0.5 }, t0 + 2 * H), MIN_RENEW_DELAY_MS);
  assert.equal(renewalDelay({ ...cert(H), renewAt: 0.5, random: () => 0.5 }, t0), H / 2);
});

test('backoff doubles from 1 s and stops at 5 minutes', () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5, 8, 9, 10].map((n) => backoffDelay(n)),
    [1000, 2000, 4000, 8000, 16000, 128000, 256000, BACKOFF_CAP_MS],
  );
  assert.equal(backoffDelay(5000), BACKOFF_CAP_MS);
  assert.equal(backoffDelay(0), 1000);
});
