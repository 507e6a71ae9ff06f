import { formatDuration } from '../config/duration.js';
import { certLabel, type ParsedCertificate } from '../pki/certificate.js';
import { verifyChain } from '../pki/chain.js';

/**
 * What `meshca doctor` reports: one finding per thing it checked. The checks themselves take
 * parsed material and a time and do no I/O, so every verdict can be tested on crafted inputs.
 */
export type Severity = 'ok' | 'warn' | 'fail';

export interface Finding {
  severity: Severity;
  /** What was checked: "root", "cluster east intermediate", "served CA TLS", ... */
  check: string;
  message: string;
  /** The command that fixes it, when one does. */
  fix?: string;
}

export interface DoctorReport {
  ok: boolean;
  mode: 'state' | 'served' | 'bundles';
  target: string;
  checkedAt: string;
  summary: Record<Severity, number>;
  findings: Finding[];
}

export function report(mode: DoctorReport['mode'], target: string, now: Date, findings: Finding[]): DoctorReport {
  const summary: Record<Severity, number> = { ok: 0, warn: 0, fail: 0 };
  for (const f of findings) summary[f.severity]++;
  return { ok: summary.fail === 0, mode, target, checkedAt: now.toISOString(), summary, findings };
}

export const ok = (check: string, message: string): Finding => ({ severity: 'ok', check, message });
export const warn = (check: string, message: string, fix?: string): Finding => ({
  severity: 'warn',
  check,
  message,
  ...(fix ? { fix } : {}),
});
export const fail = (check: string, message: string, fix?: string): Finding => ({
  severity: 'fail',
  check,
  message,
  ...(fix ? { fix } : {}),
});

export function iso(d: Date): string {
  return d.toISOString().replace('.000Z', 'Z');
}

/** "12d 3h" style, for how long until or since an instant. */
export function span(ms: number): string {
  const s = Math.abs(Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}

/** The instant a certificate is due for renewal when `ratio` of its lifetime is to be left. */
export function renewalPoint(cert: ParsedCertificate, ratio: number): Date {
  const life = cert.notAfter.getTime() - cert.notBefore.getTime();
  return new Date(cert.notAfter.getTime() - ratio * life);
}

/**
 * The renewal point of an intermediate no policy owns: `renewBeforeSeconds` ahead of NotAfter when
 * it fits in the lifetime, else a third of the lifetime (cert-manager's and `meshca serve --renew-before`'s default).
 */
export function leadRenewal(
  cert: ParsedCertificate,
  renewBeforeSeconds: number | undefined,
  from = '--renew-before',
): { at: Date; rule: string; severity: 'fail' } {
  const life = cert.notAfter.getTime() - cert.notBefore.getTime();
  const given = renewBeforeSeconds !== undefined && renewBeforeSeconds * 1000 < life;
  const before = given ? renewBeforeSeconds * 1000 : life / 3;
  return {
    at: new Date(cert.notAfter.getTime() - before),
    rule: given ? `${from} ${formatDuration(renewBeforeSeconds)}` : 'a third of its lifetime left',
    severity: 'fail',
  };
}

export interface LifetimeOptions {
  /** When the certificate should have been replaced, and by what rule ("the RootTrustPolicy's ratio 0.1"). */
  renewal?: { at: Date; rule: string; severity: Severity };
  /** The command that replaces it. */
  fix?: string;
}

/**
 * Validity against `now`: not yet valid (material written with --at, or a clock behind), expired,
 * past its renewal point and not renewed, or fine with the time left.
 */
export function lifetimeFinding(check: string, cert: ParsedCertificate, now: Date, o: LifetimeOptions = {}): Finding {
  const t = now.getTime();
  const label = certLabel(cert);
  if (t < cert.notBefore.getTime()) {
    return fail(
      check,
      `${label} is not valid until ${iso(cert.notBefore)} (${span(cert.notBefore.getTime() - t)} from now): it was issued for a later time (--at) or by a machine whose clock is ahead; peers reject it until then`,
      o.fix,
    );
  }
  if (t >= cert.notAfter.getTime())
    return fail(check, `${label} expired at ${iso(cert.notAfter)} (${span(t - cert.notAfter.getTime())} ago)`, o.fix);
  const left = `valid until ${iso(cert.notAfter)} (${span(cert.notAfter.getTime() - t)} left)`;
  if (o.renewal && t >= o.renewal.at.getTime()) {
    return {
      severity: o.renewal.severity,
      check,
      message: `${label} is ${left} but was due for renewal at ${iso(o.renewal.at)} (${o.renewal.rule}) and has not been renewed`,
      ...(o.fix ? { fix: o.fix } : {}),
    };
  }
  const next = o.renewal ? `; renewal due at ${iso(o.renewal.at)} (${o.renewal.rule})` : '';
  return ok(check, `${label} is ${left}${next}`);
}

/** Shell-quotes a path for a fix command only when it needs it. */
export function sh(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * Verifies signatures, CA flags and names of a chain at an instant every certificate in it is
 * valid, so that "does it chain" is answered apart from "is it in date" (a finding of its own).
 */
export function chainsTo(chain: ParsedCertificate[], roots: ParsedCertificate[]): string[] {
  const all = [...chain, ...roots];
  const from = Math.max(...all.map((c) => c.notBefore.getTime()));
  const to = Math.min(...chain.map((c) => c.notAfter.getTime()));
  const at = from <= to ? new Date(from) : chain[0].notBefore;
  return verifyChain(chain, { now: at, roots }).problems;
}
