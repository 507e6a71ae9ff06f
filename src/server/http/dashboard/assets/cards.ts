/** The page's text sections: header, summary figures, CA hierarchy, rotation, upstreams, replica, refusals. */
import type { Doc, IntermediateNode, RootNode } from './doc.js';
import { $, clear, h } from './dom.js';
import { date, fmtDur, num, rel, relExpiry, secondsFrom } from './format.js';

function pill(label: string, value: string, cls?: string): HTMLElement {
  return h('span', { class: 'pill' + (cls ? ' ' + cls : '') }, [
    label ? h('span', { class: 'muted', text: label }) : null,
    h('b', { text: value }),
  ]);
}

export function renderMeta(d: Doc): void {
  const r = d.replica;
  clear($('meta')).append(
    pill('trust domain', d.trustDomain),
    pill('cluster', d.cluster),
    h(
      'span',
      { class: 'pill ' + (r.leader ? 'leader' : 'follower'), id: 'replica', 'data-leader': r.leader ? 'true' : 'false', title: r.id },
      [h('b', { text: r.leader ? '★ leader' : 'follower' }), h('span', { text: r.id })],
    ),
    pill('store', r.store + (r.auditDurable ? ' · durable audit' : '')),
    pill('updated', new Date(d.generatedAt).toLocaleTimeString('en-GB')),
  );
}

function kpi(label: string, value: string, hint: string, cls: string, id: string): HTMLElement {
  return h('div', { class: 'kpi' + (cls ? ' ' + cls : ''), id }, [
    h('div', { class: 'label', text: label }),
    h('div', { class: 'value', text: value }),
    h('div', { class: 'hint', text: hint, title: hint }),
  ]);
}

export function renderKpis(d: Doc): void {
  const rt = d.rates;
  const total = rt.issued + rt.refused;
  let signing: IntermediateNode | null = null;
  for (const i of [...d.hierarchy.roots.flatMap((r) => r.intermediates), ...d.hierarchy.orphans]) if (i.signing) signing = i;
  const soon = d.soonestCaExpiry;
  clear($('kpis')).append(
    kpi('Issued · last hour', num(rt.issued), (rt.issued / 60).toFixed(1) + ' per minute on average', 'issued', 'kpi-issued'),
    kpi(
      'Refused · last hour',
      num(rt.refused),
      total ? (100 * rt.refusalRate).toFixed(1) + '% of ' + num(total) + ' requests' : 'no requests yet',
      'refused',
      'kpi-refused',
    ),
    kpi('Valid workload certificates', num(d.validWorkloadCertificates), 'not yet expired, all clusters', '', 'kpi-valid'),
    soon
      ? kpi(
          'Soonest CA expiry',
          fmtDur(soon.expiresInSeconds),
          soon.commonName + ' · ' + date(soon.notAfter) + (d.expiredCas ? ' · ' + d.expiredCas + ' expired' : ''),
          'expiry-' + soon.expiry,
          'kpi-expiry',
        )
      : kpi('Soonest CA expiry', d.expiredCas ? 'all expired' : '—', '', d.expiredCas ? 'expiry-expired' : '', 'kpi-expiry'),
    signing && signing.renewedBy
      ? kpi(
          'Intermediate renewal',
          signing.nextRenewal ? rel(secondsFrom(signing.nextRenewal, d.generatedAt)) : 'by policy',
          'cluster ' +
            signing.cluster +
            ' · renewed by ' +
            signing.renewedBy.kind +
            ' ' +
            signing.renewedBy.name +
            (signing.nextRenewal ? ' · next renewal at ' + date(signing.nextRenewal) : ''),
          'expiry-' + signing.expiry,
          'kpi-renewal',
        )
      : signing && signing.nextRenewal
        ? kpi(
            'Intermediate renewal',
            rel(secondsFrom(signing.nextRenewal, d.generatedAt)),
            'cluster ' + signing.cluster + (signing.generation ? ' · generation ' + signing.generation : ''),
            'expiry-' + signing.expiry,
            'kpi-renewal',
          )
        : kpi(
            'Intermediate renewal',
            signing ? 'manual' : '—',
            signing ? 'cluster ' + signing.cluster + ' · renewed by meshca intermediate or the controllers' : '',
            signing ? 'expiry-' + signing.expiry : '',
            'kpi-renewal',
          ),
  );
}

function nodeCard(n: RootNode | IntermediateNode, d: Doc): HTMLElement {
  const chips = [
    h('span', { class: 'chip', text: n.keyAlgorithm }),
    h('span', { class: 'chip mono', text: 'serial ' + n.serial.slice(0, 12) + (n.serial.length > 12 ? '…' : ''), title: n.serial }),
  ];
  let kind: 'root' | 'intermediate';
  let label: string;
  let cluster: string | undefined;
  if ('intermediates' in n) {
    kind = 'root';
    label = 'Root CA';
    chips.push(h('span', { class: 'chip', text: n.intermediates.length + ' intermediate' + (n.intermediates.length === 1 ? '' : 's') }));
  } else {
    kind = 'intermediate';
    label = 'Intermediate · ' + n.cluster;
    cluster = n.cluster;
    if (n.signing) chips.unshift(h('span', { class: 'chip signing', text: 'signing workloads' }));
    if (n.generation) chips.push(h('span', { class: 'chip', text: 'generation ' + n.generation }));
    chips.push(
      h('span', {
        class: 'chip',
        text: n.source === 'database' ? 'in PostgreSQL' : n.source === 'upstream' ? 'from upstream' : 'state directory',
      }),
    );
    if (n.renewedBy) chips.push(h('span', { class: 'chip', text: 'renewed by ' + n.renewedBy.kind + ' ' + n.renewedBy.name }));
    if (n.nextRenewal) chips.push(h('span', { class: 'chip', text: 'renews ' + rel(secondsFrom(n.nextRenewal, d.generatedAt)) }));
  }
  const bar = h('span');
  bar.style.width = Math.max(1, Math.round(n.lifeLeft * 100)) + '%';
  return h(
    'div',
    {
      class: 'node ' + kind + ' expiry-' + n.expiry,
      'data-kind': kind,
      'data-expiry': n.expiry,
      'data-cluster': cluster,
      title: n.subject + '\nSHA-256 ' + n.fingerprint256,
    },
    [
      h('div', { class: 'kind', text: label }),
      h('div', { class: 'title', text: n.commonName }),
      h('div', { class: 'when' }, [
        h('span', { class: 'rel', text: relExpiry(n.expiresInSeconds) }),
        h('br'),
        h('span', { class: 'muted', text: date(n.notAfter) }),
      ]),
      h('div', { class: 'life', title: Math.round(n.lifeLeft * 100) + '% of its lifetime left' }, [bar]),
      h('div', { class: 'chips' }, chips),
    ],
  );
}

function workloadsCard(i: IntermediateNode, d: Doc): HTMLElement {
  const w = i.workloads;
  const last = w.lastIssued ? 'last issued ' + rel(secondsFrom(w.lastIssued, d.generatedAt)) : 'none issued yet';
  return h('div', { class: 'node workloads', 'data-kind': 'workloads', 'data-cluster': i.cluster }, [
    h('div', { class: 'kind', text: 'Workload certificates' }),
    h('div', {}, [
      h('span', { class: 'count', text: num(w.valid) }),
      h('span', { class: 'muted', text: ' valid  ·  ' + num(w.issuedLastHour) + ' issued in the last hour  ·  ' + last }),
    ]),
  ]);
}

export function renderTree(d: Doc): void {
  // An intermediate's branch: its card, and under it the workload certificates it signed.
  const branches = (list: IntermediateNode[]): HTMLElement =>
    h(
      'ul',
      {},
      list.map((i) => h('li', {}, [nodeCard(i, d), h('ul', {}, [h('li', {}, [workloadsCard(i, d)])])])),
    );
  const ul = h('ul', { class: 'tree', id: 'tree-root' });
  for (const r of d.hierarchy.roots)
    ul.appendChild(h('li', {}, [nodeCard(r, d), r.intermediates.length ? branches(r.intermediates) : null]));
  if (d.hierarchy.orphans.length) {
    ul.appendChild(h('li', {}, [h('div', { class: 'empty', text: 'Issuer not among the trusted roots' }), branches(d.hierarchy.orphans)]));
  }
  clear($('tree')).appendChild(ul);
}

export function renderRotation(d: Doc): void {
  const el = clear($('rotation'));
  const r = d.rotation;
  if (!r) {
    el.appendChild(
      h('div', { class: 'not-configured', 'data-state': 'not-configured' }, [
        h('div', {}, [
          h('b', { text: 'No root rotation' }),
          h('span', { text: 'Not configured: apply a RootRotation to start one; its phases show here.' }),
        ]),
      ]),
    );
    return;
  }
  const at = r.phases.indexOf(r.phase);
  const when: Record<string, string> = {};
  for (const x of r.history) when[x.phase] = x.time;
  el.appendChild(
    h('div', { 'data-state': r.phase }, [
      h('b', { text: r.name }),
      h('span', {
        class: 'muted',
        text: '  ·  ' + r.phase + (r.others ? '  ·  ' + r.others + ' other' + (r.others === 1 ? '' : 's') : ''),
      }),
    ]),
  );
  if (r.message) el.appendChild(h('div', { class: 'muted', text: r.message }));
  const steps = h('div', { class: 'steps' });
  r.phases.forEach((p, k) => {
    const cls = k < at || r.phase === 'Complete' ? 'done' : k === at ? 'current' : '';
    steps.appendChild(
      h('div', { class: 'step ' + cls, 'data-phase': p }, [
        h('i', { class: 'mark' }),
        h('span', { text: p }),
        h('span', { class: 't', text: when[p] ? date(when[p]) : '' }),
      ]),
    );
  });
  el.appendChild(steps);
}

const STATUS: Record<string, string> = {
  ok: 'healthy',
  degraded: 'degraded',
  down: 'down',
  unknown: 'unknown',
  not_configured: 'not configured',
};
export function renderUpstreams(d: Doc): void {
  const el = clear($('upstreams'));
  for (const u of d.upstreams) {
    el.appendChild(
      h('li', { 'data-status': u.status, 'data-kind': u.kind }, [
        h('i', { class: 'st' }),
        h('b', { text: u.name }),
        h('span', { class: 'status', text: STATUS[u.status] || u.status }),
        h('div', { class: 'detail', text: u.detail }),
      ]),
    );
  }
}

export function renderReplica(d: Doc): void {
  const r = d.replica;
  const el = clear($('replica-info'));
  const rows: [string, string][] = [
    ['this replica', r.id + ' (' + r.role + ')'],
    [
      'role',
      r.leader
        ? 'leader' + (r.leaderSince ? ' for ' + fmtDur(-secondsFrom(r.leaderSince, d.generatedAt)) + ', runs the controllers' : '')
        : 'follower: serves, leaves the controllers to the leader',
    ],
    ['store', r.store === 'postgres' ? 'PostgreSQL, shared by the replicas' : 'SQLite in the state directory'],
    ['audit', r.auditDurable ? 'durable: answered after the row commits' : 'batched: written within the flush interval'],
  ];
  const dl = h('dl', { class: 'kv' });
  for (const [k, v] of rows) dl.append(h('dt', { text: k }), h('dd', { text: v }));
  el.appendChild(dl);
  if (d.leaderTerms.length) {
    const ol = h('ol', { class: 'terms' });
    d.leaderTerms.forEach((t, k) => {
      ol.appendChild(
        h('li', { class: k === 0 ? 'current' : '', 'data-term': t.term }, [
          h('span', { class: 'term', text: 'term ' + t.term }),
          h('span', { class: 'mono', text: t.holder }),
          h('span', { class: 'muted', text: rel(secondsFrom(t.acquiredAt, d.generatedAt)) }),
        ]),
      );
    });
    el.append(h('div', { class: 'muted small', text: 'leader terms, newest first' }), ol);
  }
}

export function renderRefusals(d: Doc): void {
  const body = document.querySelector('#refusals tbody');
  if (!body) throw new Error('no #refusals tbody in the page');
  const tb = clear(body);
  if (!d.refusals.length) {
    tb.appendChild(h('tr', {}, [h('td', { colspan: 5, class: 'empty', text: 'No refusals recorded.' })]));
    return;
  }
  for (const r of d.refusals) {
    tb.appendChild(
      h('tr', { class: 'refusal', 'data-reason': r.reason }, [
        h('td', { text: rel(secondsFrom(r.time, d.generatedAt)), title: r.time }),
        h('td', { class: 'reason' }, [h('span', { class: 'badge', text: r.reason })]),
        h('td', { class: 'identity', text: r.identity || '—', title: r.identity }),
        h('td', { class: 'caller', text: r.caller || (r.method ? r.method : 'unauthenticated'), title: r.caller }),
        h('td', { class: 'msg', text: r.message }),
      ]),
    );
  }
}
