/**
 * The dashboard's script: polls GET /v1/dashboard and draws every section with DOM and inline SVG
 * (no framework, no chart library, nothing fetched from elsewhere). Text from the API is only ever
 * set through textContent, never parsed as HTML: refusal messages and identities come from clients.
 *
 * A classic script, not a module (no import or export here): the page loads it with a plain
 * <script defer>, and the wrapper keeps its names out of the page's globals.
 */

// The JSON of GET /v1/dashboard as this page reads it (DashboardDocument in ../data.ts).
type Expiry = 'ok' | 'warn' | 'critical' | 'expired';

interface CertNode {
  subject: string;
  commonName: string;
  serial: string;
  fingerprint256: string;
  keyAlgorithm: string;
  notAfter: string;
  expiresInSeconds: number;
  lifeLeft: number;
  expiry: Expiry;
}

interface IntermediateNode extends CertNode {
  cluster: string;
  signing: boolean;
  source: 'state-dir' | 'database' | 'upstream';
  generation: number | null;
  nextRenewal: string | null;
  workloads: { valid: number; issuedLastHour: number; lastIssued: string | null };
}

interface RootNode extends CertNode {
  intermediates: IntermediateNode[];
}

interface Doc {
  generatedAt: string;
  trustDomain: string;
  cluster: string;
  replica: { id: string; role: string; store: 'sqlite' | 'postgres'; leader: boolean; leaderSince: string | null; auditDurable: boolean };
  leaderTerms: { term: number; holder: string; acquiredAt: string }[];
  hierarchy: { roots: RootNode[]; orphans: IntermediateNode[] };
  soonestCaExpiry: { commonName: string; notAfter: string; expiresInSeconds: number; expiry: Expiry } | null;
  expiredCas: number;
  validWorkloadCertificates: number;
  timeline: { at: string; inSeconds: number; kind: 'expiry' | 'renewal'; what: string; label: string; expiry: Expiry }[];
  rates: {
    buckets: { start: string; issued: number; refused: number }[];
    issued: number;
    refused: number;
    refusalRate: number;
    available: boolean;
  };
  refusalReasons: { reason: string; count: number }[];
  refusals: { time: string; reason: string; identity: string; caller: string; method: string; message: string }[];
  rotation: {
    name: string;
    phase: string;
    phases: string[];
    message?: string;
    history: { phase: string; time: string }[];
    others: number;
  } | null;
  upstreams: { name: string; kind: string; status: string; detail: string }[];
}

(function () {
  const REFRESH_MS = 5000;
  const SVGNS = 'http://www.w3.org/2000/svg';

  type Attrs = Record<string, string | number | null | undefined>;
  type Child = Node | string | null | undefined;

  function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs, children?: Child[]): HTMLElementTagNameMap[K] {
    return fill(document.createElement(tag), attrs, children);
  }
  function s<K extends keyof SVGElementTagNameMap>(tag: K, attrs?: Attrs, children?: Child[]): SVGElementTagNameMap[K] {
    return fill(document.createElementNS(SVGNS, tag), attrs, children);
  }
  function fill<E extends Element>(el: E, attrs?: Attrs, children?: Child[]): E {
    for (const [k, v] of Object.entries(attrs ?? {})) {
      if (v === undefined || v === null) continue;
      if (k === 'text') el.textContent = String(v);
      else el.setAttribute(k, String(v));
    }
    for (const c of children ?? []) {
      if (c === null || c === undefined) continue;
      el.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    }
    return el;
  }
  function clear<E extends Element>(el: E): E {
    while (el.firstChild) el.removeChild(el.firstChild);
    return el;
  }
  function $(id: string): HTMLElement {
    const el = document.getElementById(id);
    if (!el) throw new Error('no element #' + id + ' in the page');
    return el;
  }

  const UNITS: [string, number][] = [
    ['y', 31536000],
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ];
  function fmtDur(sec: number): string {
    const a = Math.abs(Math.round(sec));
    for (let i = 0; i < UNITS.length; i++) {
      const n = Math.floor(a / UNITS[i][1]);
      if (n > 0 || i === UNITS.length - 1) {
        let out = n + UNITS[i][0];
        if (i + 1 < UNITS.length) {
          const m = Math.floor((a - n * UNITS[i][1]) / UNITS[i + 1][1]);
          if (m > 0) out += ' ' + m + UNITS[i + 1][0];
        }
        return out;
      }
    }
    return '0s';
  }
  const rel = (sec: number): string => (sec >= 0 ? 'in ' + fmtDur(sec) : fmtDur(-sec) + ' ago');
  const relExpiry = (sec: number): string => (sec >= 0 ? 'expires in ' + fmtDur(sec) : 'expired ' + fmtDur(-sec) + ' ago');
  const num = (n: number): string => Number(n).toLocaleString('en-US');
  const date = (iso: string): string => new Date(iso).toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
  const secondsFrom = (iso: string, nowIso: string): number => (Date.parse(iso) - Date.parse(nowIso)) / 1000;

  function pill(label: string, value: string, cls?: string): HTMLElement {
    return h('span', { class: 'pill' + (cls ? ' ' + cls : '') }, [
      label ? h('span', { class: 'muted', text: label }) : null,
      h('b', { text: value }),
    ]);
  }

  function renderMeta(d: Doc): void {
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

  function renderKpis(d: Doc): void {
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
      signing && signing.nextRenewal
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

  function renderTree(d: Doc): void {
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
      ul.appendChild(
        h('li', {}, [h('div', { class: 'empty', text: 'Issuer not among the trusted roots' }), branches(d.hierarchy.orphans)]),
      );
    }
    clear($('tree')).appendChild(ul);
  }

  // The top of the y axis: four gridlines at a round, whole step (1, 2, 5 x 10^k).
  function niceMax(v: number): number {
    const raw = Math.max(1, v / 4);
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * p).filter((x) => x >= raw)[0];
    return Math.max(1, Math.ceil(step)) * 4;
  }

  function renderRates(d: Doc): void {
    const W = 760,
      H = 230,
      L = 44,
      R = 8,
      T = 10,
      B = 26;
    const pw = W - L - R,
      ph = H - T - B;
    const b = d.rates.buckets;
    const max = niceMax(Math.max(...b.map((x) => x.issued + x.refused), 1));
    const svg = s('svg', {
      viewBox: '0 0 ' + W + ' ' + H,
      role: 'img',
      'aria-label': 'certificates issued and refused per minute over the last hour',
      id: 'rates-svg',
    });
    for (let g = 0; g <= 4; g++) {
      const y = T + ph - (ph * g) / 4;
      svg.appendChild(s('line', { class: 'grid-line', x1: L, x2: W - R, y1: y, y2: y }));
      svg.appendChild(s('text', { x: L - 8, y: y + 4, 'text-anchor': 'end', class: 'axis', text: num(Math.round((max * g) / 4)) }));
    }
    const bw = pw / b.length;
    b.forEach((x, k) => {
      const x0 = L + k * bw + 1,
        w = Math.max(1, bw - 2);
      const hi = (ph * x.issued) / max,
        hr = (ph * x.refused) / max;
      const tip =
        new Date(x.start).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' }) +
        ' — ' +
        x.issued +
        ' issued, ' +
        x.refused +
        ' refused';
      if (x.issued > 0)
        svg.appendChild(
          s('rect', { class: 'bar-issued', x: x0, y: T + ph - hi, width: w, height: hi, rx: 1.5 }, [s('title', { text: tip })]),
        );
      if (x.refused > 0)
        svg.appendChild(
          s('rect', { class: 'bar-refused', x: x0, y: T + ph - hi - hr, width: w, height: hr, rx: 1.5 }, [s('title', { text: tip })]),
        );
    });
    const axis = s('g', { class: 'axis' });
    axis.appendChild(s('line', { x1: L, x2: W - R, y1: T + ph, y2: T + ph }));
    for (const k of [0, 10, 20, 30, 40, 50, 59]) {
      const label = k === 59 ? 'now' : '−' + (60 - k) + 'm';
      axis.appendChild(s('text', { x: L + k * bw + bw / 2, y: H - 8, 'text-anchor': 'middle', text: label }));
    }
    svg.appendChild(axis);
    clear($('rates')).append(
      svg,
      h('div', { class: 'chart-legend' }, [
        h('span', {}, [h('i', { class: 'sw issued' }), 'issued (' + num(d.rates.issued) + ')']),
        h('span', {}, [h('i', { class: 'sw refused' }), 'refused (' + num(d.rates.refused) + ')']),
        d.rates.available ? null : h('span', { text: 'this store keeps no aggregates' }),
      ]),
    );
  }

  function renderReasons(d: Doc): void {
    const el = clear($('reasons'));
    if (!d.refusalReasons.length) {
      el.appendChild(h('div', { class: 'empty', text: 'No refusals in the last hour.' }));
      return;
    }
    const max = d.refusalReasons[0].count;
    const box = h('div', { class: 'reasons' });
    for (const r of d.refusalReasons.slice(0, 8)) {
      const bar = h('span');
      bar.style.width = Math.max(2, Math.round((100 * r.count) / max)) + '%';
      box.appendChild(
        h('div', { class: 'reason-row', 'data-reason': r.reason }, [
          h('span', { class: 'badge', text: r.reason }),
          h('span', { class: 'n', text: num(r.count) }),
          h('div', { class: 'bar' }, [bar]),
        ]),
      );
    }
    el.appendChild(box);
  }

  const TICKS: [number, string][] = [
    [60, '1m'],
    [3600, '1h'],
    [86400, '1d'],
    [604800, '1w'],
    [2592000, '30d'],
    [31536000, '1y'],
    [315360000, '10y'],
  ];
  function renderTimeline(d: Doc): void {
    const ev = d.timeline;
    const el = clear($('timeline'));
    if (!ev.length) {
      el.appendChild(h('div', { class: 'empty', text: 'Nothing scheduled.' }));
      return;
    }
    const W = 1200,
      H = 64,
      L = 30,
      R = 30,
      Y = 30;
    const maxSec = Math.max(3600, ev[ev.length - 1].inSeconds * 1.05);
    const scale = (sec: number): number => L + ((W - L - R) * Math.log(1 + Math.max(0, sec) / 60)) / Math.log(1 + maxSec / 60);
    const svg = s('svg', { viewBox: '0 0 ' + W + ' ' + H, class: 'tl', role: 'img', 'aria-label': 'timeline, logarithmic' });
    svg.appendChild(s('line', { class: 'track', x1: L, x2: W - R, y1: Y, y2: Y }));
    for (const [sec, text] of TICKS) {
      if (sec > maxSec) continue;
      const x = scale(sec);
      svg.appendChild(s('line', { class: 'grid-line', x1: x, x2: x, y1: Y - 8, y2: Y + 8 }));
      svg.appendChild(s('text', { x, y: H - 6, 'text-anchor': 'middle', text }));
    }
    svg.appendChild(s('line', { class: 'now', x1: L, x2: L, y1: Y - 12, y2: Y + 12 }));
    svg.appendChild(s('text', { x: L, y: H - 6, 'text-anchor': 'middle', text: 'now' }));
    for (const e of ev) {
      const x = scale(e.inSeconds),
        y = Y;
      const tip = s('title', { text: e.label + ' ' + rel(e.inSeconds) + ' (' + date(e.at) + ')' });
      if (e.kind === 'renewal')
        svg.appendChild(s('polygon', { class: 'm-renewal', points: [x, y - 7, x + 7, y, x, y + 7, x - 7, y].join(' ') }, [tip]));
      else svg.appendChild(s('circle', { class: 'm-expiry expiry-' + e.expiry, cx: x, cy: y, r: 6 }, [tip]));
    }
    const list = h('div', { class: 'tl-list' });
    for (const e of ev.slice(0, 12)) {
      list.appendChild(
        h('div', { class: 'tl-item', 'data-kind': e.kind, 'data-what': e.what }, [
          h('i', { class: 'shape ' + (e.kind === 'renewal' ? 'renewal' : 'expiry-' + e.expiry) }),
          h('span', { text: e.label }),
          h('span', { class: 'in', text: rel(e.inSeconds), title: date(e.at) }),
        ]),
      );
    }
    el.append(svg, list);
  }

  function renderRotation(d: Doc): void {
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
  function renderUpstreams(d: Doc): void {
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

  function renderReplica(d: Doc): void {
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

  function renderRefusals(d: Doc): void {
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

  function render(d: Doc): void {
    renderMeta(d);
    renderKpis(d);
    renderTree(d);
    renderRates(d);
    renderReasons(d);
    renderTimeline(d);
    renderRotation(d);
    renderUpstreams(d);
    renderReplica(d);
    renderRefusals(d);
    document.body.setAttribute('data-updated', d.generatedAt);
    document.body.setAttribute('data-ready', 'true');
  }

  async function refresh(): Promise<void> {
    try {
      const res = await fetch('/v1/dashboard', { cache: 'no-store' });
      if (!res.ok) throw new Error('GET /v1/dashboard answered ' + res.status);
      const d = (await res.json()) as Doc;
      $('banner').classList.add('hidden');
      render(d);
    } catch (e) {
      const b = $('banner');
      b.textContent = 'Cannot refresh: ' + (e instanceof Error ? e.message : String(e)) + ' (showing the last data)';
      b.classList.remove('hidden');
    }
    setTimeout(() => void refresh(), REFRESH_MS);
  }
  void refresh();
})();
