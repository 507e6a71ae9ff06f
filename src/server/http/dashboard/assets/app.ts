/**
 * The dashboard's script: polls GET /v1/dashboard and draws every section with DOM and inline SVG
 * (no framework, no chart library, nothing fetched from elsewhere). Text from the API is only ever
 * set through textContent, never parsed as HTML: refusal messages and identities come from clients.
 * Written as plain ES2017 inside a string (no template literals in the script itself).
 */
export const APP_JS = String.raw`'use strict';
(function () {
  var REFRESH_MS = 5000;
  var SVGNS = 'http://www.w3.org/2000/svg';

  function h(tag, attrs, children) {
    var el = document.createElement(tag);
    return fill(el, attrs, children);
  }
  function s(tag, attrs, children) {
    var el = document.createElementNS(SVGNS, tag);
    return fill(el, attrs, children);
  }
  function fill(el, attrs, children) {
    for (var k in attrs || {}) {
      if (attrs[k] === undefined || attrs[k] === null) continue;
      if (k === 'text') el.textContent = attrs[k];
      else el.setAttribute(k, String(attrs[k]));
    }
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      el.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    });
    return el;
  }
  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }
  function $(id) { return document.getElementById(id); }

  var UNITS = [['y', 31536000], ['d', 86400], ['h', 3600], ['m', 60], ['s', 1]];
  function fmtDur(sec) {
    var a = Math.abs(Math.round(sec));
    for (var i = 0; i < UNITS.length; i++) {
      var n = Math.floor(a / UNITS[i][1]);
      if (n > 0 || i === UNITS.length - 1) {
        var out = n + UNITS[i][0];
        if (i + 1 < UNITS.length) {
          var m = Math.floor((a - n * UNITS[i][1]) / UNITS[i + 1][1]);
          if (m > 0) out += ' ' + m + UNITS[i + 1][0];
        }
        return out;
      }
    }
    return '0s';
  }
  function rel(sec) { return sec >= 0 ? 'in ' + fmtDur(sec) : fmtDur(-sec) + ' ago'; }
  function relExpiry(sec) { return sec >= 0 ? 'expires in ' + fmtDur(sec) : 'expired ' + fmtDur(-sec) + ' ago'; }
  function num(n) { return Number(n).toLocaleString('en-US'); }
  function date(iso) { return new Date(iso).toISOString().replace('T', ' ').slice(0, 16) + ' UTC'; }
  function secondsFrom(iso, nowIso) { return (Date.parse(iso) - Date.parse(nowIso)) / 1000; }

  function pill(label, value, cls) {
    return h('span', { class: 'pill' + (cls ? ' ' + cls : '') }, [label ? h('span', { class: 'muted', text: label }) : null, h('b', { text: value })]);
  }

  function renderMeta(d) {
    var r = d.replica;
    clear($('meta')).append(
      pill('trust domain', d.trustDomain),
      pill('cluster', d.cluster),
      h('span', { class: 'pill ' + (r.leader ? 'leader' : 'follower'), id: 'replica', 'data-leader': r.leader ? 'true' : 'false', title: r.id },
        [h('b', { text: r.leader ? '★ leader' : 'follower' }), h('span', { text: r.id })]),
      pill('store', r.store + (r.auditDurable ? ' · durable audit' : '')),
      pill('updated', new Date(d.generatedAt).toLocaleTimeString('en-GB'))
    );
  }

  function kpi(label, value, hint, cls, id) {
    return h('div', { class: 'kpi' + (cls ? ' ' + cls : ''), id: id }, [
      h('div', { class: 'label', text: label }),
      h('div', { class: 'value', text: value }),
      h('div', { class: 'hint', text: hint, title: hint })
    ]);
  }

  function renderKpis(d) {
    var rt = d.rates;
    var total = rt.issued + rt.refused;
    var signing = null;
    d.hierarchy.roots.concat([{ intermediates: d.hierarchy.orphans }]).forEach(function (r) {
      (r.intermediates || []).forEach(function (i) { if (i.signing) signing = i; });
    });
    var soon = d.soonestCaExpiry;
    clear($('kpis')).append(
      kpi('Issued · last hour', num(rt.issued), (rt.issued / 60).toFixed(1) + ' per minute on average', 'issued', 'kpi-issued'),
      kpi('Refused · last hour', num(rt.refused), total ? (100 * rt.refusalRate).toFixed(1) + '% of ' + num(total) + ' requests' : 'no requests yet', 'refused', 'kpi-refused'),
      kpi('Valid workload certificates', num(d.validWorkloadCertificates), 'not yet expired, all clusters', '', 'kpi-valid'),
      soon
        ? kpi('Soonest CA expiry', fmtDur(soon.expiresInSeconds), soon.commonName + ' · ' + date(soon.notAfter) + (d.expiredCas ? ' · ' + d.expiredCas + ' expired' : ''), 'expiry-' + soon.expiry, 'kpi-expiry')
        : kpi('Soonest CA expiry', d.expiredCas ? 'all expired' : '—', '', d.expiredCas ? 'expiry-expired' : '', 'kpi-expiry'),
      signing && signing.nextRenewal
        ? kpi('Intermediate renewal', rel(secondsFrom(signing.nextRenewal, d.generatedAt)), 'cluster ' + signing.cluster + (signing.generation ? ' · generation ' + signing.generation : ''), 'expiry-' + signing.expiry, 'kpi-renewal')
        : kpi('Intermediate renewal', signing ? 'manual' : '—', signing ? 'cluster ' + signing.cluster + ' · renewed by meshca intermediate or the controllers' : '', signing ? 'expiry-' + signing.expiry : '', 'kpi-renewal')
    );
  }

  function nodeCard(n, kind, d) {
    var chips = [h('span', { class: 'chip', text: n.keyAlgorithm }), h('span', { class: 'chip mono', text: 'serial ' + n.serial.slice(0, 12) + (n.serial.length > 12 ? '…' : ''), title: n.serial })];
    var label = kind === 'root' ? 'Root CA' : 'Intermediate · ' + n.cluster;
    if (kind === 'intermediate') {
      if (n.signing) chips.unshift(h('span', { class: 'chip signing', text: 'signing workloads' }));
      if (n.generation) chips.push(h('span', { class: 'chip', text: 'generation ' + n.generation }));
      chips.push(h('span', { class: 'chip', text: n.source === 'database' ? 'in PostgreSQL' : n.source === 'upstream' ? 'from upstream' : 'state directory' }));
      if (n.nextRenewal) chips.push(h('span', { class: 'chip', text: 'renews ' + rel(secondsFrom(n.nextRenewal, d.generatedAt)) }));
    } else {
      chips.push(h('span', { class: 'chip', text: n.intermediates.length + ' intermediate' + (n.intermediates.length === 1 ? '' : 's') }));
    }
    var bar = h('span');
    bar.style.width = Math.max(1, Math.round(n.lifeLeft * 100)) + '%';
    return h('div', { class: 'node ' + kind + ' expiry-' + n.expiry, 'data-kind': kind, 'data-expiry': n.expiry, 'data-cluster': n.cluster, title: n.subject + '\nSHA-256 ' + n.fingerprint256 }, [
      h('div', { class: 'kind', text: label }),
      h('div', { class: 'title', text: n.commonName }),
      h('div', { class: 'when' }, [h('span', { class: 'rel', text: relExpiry(n.expiresInSeconds) }), h('br'), h('span', { class: 'muted', text: date(n.notAfter) })]),
      h('div', { class: 'life', title: Math.round(n.lifeLeft * 100) + '% of its lifetime left' }, [bar]),
      h('div', { class: 'chips' }, chips)
    ]);
  }

  function workloadsCard(i, d) {
    var w = i.workloads;
    var last = w.lastIssued ? 'last issued ' + rel(secondsFrom(w.lastIssued, d.generatedAt)) : 'none issued yet';
    return h('div', { class: 'node workloads', 'data-kind': 'workloads', 'data-cluster': i.cluster }, [
      h('div', { class: 'kind', text: 'Workload certificates' }),
      h('div', {}, [h('span', { class: 'count', text: num(w.valid) }), h('span', { class: 'muted', text: ' valid  ·  ' + num(w.issuedLastHour) + ' issued in the last hour  ·  ' + last })])
    ]);
  }

  function renderTree(d) {
    var ul = h('ul', { class: 'tree', id: 'tree-root' });
    d.hierarchy.roots.forEach(function (r) {
      var kids = h('ul');
      r.intermediates.forEach(function (i) { kids.appendChild(h('li', {}, [nodeCard(i, 'intermediate', d), h('ul', {}, [h('li', {}, [workloadsCard(i, d)])])])); });
      ul.appendChild(h('li', {}, [nodeCard(r, 'root', d), r.intermediates.length ? kids : null]));
    });
    if (d.hierarchy.orphans.length) {
      var kids = h('ul');
      d.hierarchy.orphans.forEach(function (i) { kids.appendChild(h('li', {}, [nodeCard(i, 'intermediate', d), h('ul', {}, [h('li', {}, [workloadsCard(i, d)])])])); });
      ul.appendChild(h('li', {}, [h('div', { class: 'empty', text: 'Issuer not among the trusted roots' }), kids]));
    }
    clear($('tree')).appendChild(ul);
  }

  // The top of the y axis: four gridlines at a round, whole step (1, 2, 5 x 10^k).
  function niceMax(v) {
    var raw = Math.max(1, v / 4);
    var p = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 5, 10].map(function (m) { return m * p; }).filter(function (x) { return x >= raw; })[0];
    return Math.max(1, Math.ceil(step)) * 4;
  }

  function renderRates(d) {
    var W = 760, H = 230, L = 44, R = 8, T = 10, B = 26;
    var pw = W - L - R, ph = H - T - B;
    var b = d.rates.buckets;
    var max = niceMax(Math.max.apply(null, b.map(function (x) { return x.issued + x.refused; }).concat([1])));
    var svg = s('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': 'certificates issued and refused per minute over the last hour', id: 'rates-svg' });
    for (var g = 0; g <= 4; g++) {
      var y = T + ph - (ph * g) / 4;
      svg.appendChild(s('line', { class: 'grid-line', x1: L, x2: W - R, y1: y, y2: y }));
      svg.appendChild(s('text', { x: L - 8, y: y + 4, 'text-anchor': 'end', class: 'axis', text: num(Math.round((max * g) / 4)) }));
    }
    var bw = pw / b.length;
    b.forEach(function (x, k) {
      var x0 = L + k * bw + 1, w = Math.max(1, bw - 2);
      var hi = (ph * x.issued) / max, hr = (ph * x.refused) / max;
      var tip = new Date(x.start).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' }) + ' — ' + x.issued + ' issued, ' + x.refused + ' refused';
      if (x.issued > 0) svg.appendChild(s('rect', { class: 'bar-issued', x: x0, y: T + ph - hi, width: w, height: hi, rx: 1.5 }, [s('title', { text: tip })]));
      if (x.refused > 0) svg.appendChild(s('rect', { class: 'bar-refused', x: x0, y: T + ph - hi - hr, width: w, height: hr, rx: 1.5 }, [s('title', { text: tip })]));
    });
    var axis = s('g', { class: 'axis' });
    axis.appendChild(s('line', { x1: L, x2: W - R, y1: T + ph, y2: T + ph }));
    [0, 10, 20, 30, 40, 50, 59].forEach(function (k) {
      var label = k === 59 ? 'now' : '−' + (60 - k) + 'm';
      axis.appendChild(s('text', { x: L + k * bw + bw / 2, y: H - 8, 'text-anchor': 'middle', text: label }));
    });
    svg.appendChild(axis);
    clear($('rates')).append(svg, h('div', { class: 'chart-legend' }, [
      h('span', {}, [h('i', { class: 'sw issued' }), 'issued (' + num(d.rates.issued) + ')']),
      h('span', {}, [h('i', { class: 'sw refused' }), 'refused (' + num(d.rates.refused) + ')']),
      d.rates.available ? null : h('span', { text: 'this store keeps no aggregates' })
    ]));
  }

  function renderReasons(d) {
    var el = clear($('reasons'));
    if (!d.refusalReasons.length) { el.appendChild(h('div', { class: 'empty', text: 'No refusals in the last hour.' })); return; }
    var max = d.refusalReasons[0].count;
    var box = h('div', { class: 'reasons' });
    d.refusalReasons.slice(0, 8).forEach(function (r) {
      var bar = h('span');
      bar.style.width = Math.max(2, Math.round((100 * r.count) / max)) + '%';
      box.appendChild(h('div', { class: 'reason-row', 'data-reason': r.reason }, [h('span', { class: 'badge', text: r.reason }), h('span', { class: 'n', text: num(r.count) }), h('div', { class: 'bar' }, [bar])]));
    });
    el.appendChild(box);
  }

  var TICKS = [[60, '1m'], [3600, '1h'], [86400, '1d'], [604800, '1w'], [2592000, '30d'], [31536000, '1y'], [315360000, '10y']];
  function renderTimeline(d) {
    var ev = d.timeline;
    var el = clear($('timeline'));
    if (!ev.length) { el.appendChild(h('div', { class: 'empty', text: 'Nothing scheduled.' })); return; }
    var W = 1200, H = 64, L = 30, R = 30, Y = 30;
    var maxSec = Math.max(3600, ev[ev.length - 1].inSeconds * 1.05);
    var scale = function (sec) { return L + ((W - L - R) * Math.log(1 + Math.max(0, sec) / 60)) / Math.log(1 + maxSec / 60); };
    var svg = s('svg', { viewBox: '0 0 ' + W + ' ' + H, class: 'tl', role: 'img', 'aria-label': 'timeline, logarithmic' });
    svg.appendChild(s('line', { class: 'track', x1: L, x2: W - R, y1: Y, y2: Y }));
    TICKS.forEach(function (t) {
      if (t[0] > maxSec) return;
      var x = scale(t[0]);
      svg.appendChild(s('line', { class: 'grid-line', x1: x, x2: x, y1: Y - 8, y2: Y + 8 }));
      svg.appendChild(s('text', { x: x, y: H - 6, 'text-anchor': 'middle', text: t[1] }));
    });
    svg.appendChild(s('line', { class: 'now', x1: L, x2: L, y1: Y - 12, y2: Y + 12 }));
    svg.appendChild(s('text', { x: L, y: H - 6, 'text-anchor': 'middle', text: 'now' }));
    ev.forEach(function (e, k) {
      var x = scale(e.inSeconds), y = Y + (k % 2 === 0 ? -0 : 0);
      var tip = s('title', { text: e.label + ' ' + rel(e.inSeconds) + ' (' + date(e.at) + ')' });
      if (e.kind === 'renewal') svg.appendChild(s('polygon', { class: 'm-renewal', points: [x, y - 7, x + 7, y, x, y + 7, x - 7, y].join(' ') }, [tip]));
      else svg.appendChild(s('circle', { class: 'm-expiry expiry-' + e.expiry, cx: x, cy: y, r: 6 }, [tip]));
    });
    var list = h('div', { class: 'tl-list' });
    ev.slice(0, 12).forEach(function (e) {
      list.appendChild(h('div', { class: 'tl-item', 'data-kind': e.kind, 'data-what': e.what }, [
        h('i', { class: 'shape ' + (e.kind === 'renewal' ? 'renewal' : 'expiry-' + e.expiry) }),
        h('span', { text: e.label }),
        h('span', { class: 'in', text: rel(e.inSeconds), title: date(e.at) })
      ]));
    });
    el.append(svg, list);
  }

  function renderRotation(d) {
    var el = clear($('rotation'));
    var r = d.rotation;
    if (!r) {
      el.appendChild(h('div', { class: 'not-configured', 'data-state': 'not-configured' }, [h('div', {}, [h('b', { text: 'No root rotation' }), h('span', { text: 'Not configured: apply a RootRotation to start one; its phases show here.' })])]));
      return;
    }
    var at = r.phases.indexOf(r.phase);
    var when = {};
    r.history.forEach(function (x) { when[x.phase] = x.time; });
    el.appendChild(h('div', { 'data-state': r.phase }, [h('b', { text: r.name }), h('span', { class: 'muted', text: '  ·  ' + r.phase + (r.others ? '  ·  ' + r.others + ' other' + (r.others === 1 ? '' : 's') : '') })]));
    if (r.message) el.appendChild(h('div', { class: 'muted', text: r.message }));
    var steps = h('div', { class: 'steps' });
    r.phases.forEach(function (p, k) {
      var cls = k < at || r.phase === 'Complete' ? 'done' : k === at ? 'current' : '';
      steps.appendChild(h('div', { class: 'step ' + cls, 'data-phase': p }, [h('i', { class: 'mark' }), h('span', { text: p }), h('span', { class: 't', text: when[p] ? date(when[p]) : '' })]));
    });
    el.appendChild(steps);
  }

  var STATUS = { ok: 'healthy', degraded: 'degraded', down: 'down', unknown: 'unknown', not_configured: 'not configured' };
  function renderUpstreams(d) {
    var el = clear($('upstreams'));
    d.upstreams.forEach(function (u) {
      el.appendChild(h('li', { 'data-status': u.status, 'data-kind': u.kind }, [h('i', { class: 'st' }), h('b', { text: u.name }), h('span', { class: 'status', text: STATUS[u.status] || u.status }), h('div', { class: 'detail', text: u.detail })]));
    });
  }

  function renderReplica(d) {
    var r = d.replica;
    var el = clear($('replica-info'));
    var rows = [
      ['this replica', r.id + ' (' + r.role + ')'],
      ['role', r.leader ? 'leader' + (r.leaderSince ? ' for ' + fmtDur(-secondsFrom(r.leaderSince, d.generatedAt)) + ', runs the controllers' : '') : 'follower: serves, leaves the controllers to the leader'],
      ['store', r.store === 'postgres' ? 'PostgreSQL, shared by the replicas' : 'SQLite in the state directory'],
      ['audit', r.auditDurable ? 'durable: answered after the row commits' : 'batched: written within the flush interval']
    ];
    var dl = h('dl', { class: 'kv' });
    rows.forEach(function (x) { dl.append(h('dt', { text: x[0] }), h('dd', { text: x[1] })); });
    el.appendChild(dl);
    if (d.leaderTerms.length) {
      var ol = h('ol', { class: 'terms' });
      d.leaderTerms.forEach(function (t, k) {
        ol.appendChild(h('li', { class: k === 0 ? 'current' : '', 'data-term': t.term }, [
          h('span', { class: 'term', text: 'term ' + t.term }),
          h('span', { class: 'mono', text: t.holder }),
          h('span', { class: 'muted', text: rel(secondsFrom(t.acquiredAt, d.generatedAt)) })
        ]));
      });
      el.append(h('div', { class: 'muted small', text: 'leader terms, newest first' }), ol);
    }
  }

  function renderRefusals(d) {
    var tb = clear(document.querySelector('#refusals tbody'));
    if (!d.refusals.length) { tb.appendChild(h('tr', {}, [h('td', { colspan: 5, class: 'empty', text: 'No refusals recorded.' })])); return; }
    d.refusals.forEach(function (r) {
      tb.appendChild(h('tr', { class: 'refusal', 'data-reason': r.reason }, [
        h('td', { text: rel(secondsFrom(r.time, d.generatedAt)), title: r.time }),
        h('td', { class: 'reason' }, [h('span', { class: 'badge', text: r.reason })]),
        h('td', { class: 'identity', text: r.identity || '—', title: r.identity }),
        h('td', { class: 'caller', text: r.caller || (r.method ? r.method : 'unauthenticated'), title: r.caller }),
        h('td', { class: 'msg', text: r.message })
      ]));
    });
  }

  function render(d) {
    renderMeta(d); renderKpis(d); renderTree(d); renderRates(d); renderReasons(d); renderTimeline(d); renderRotation(d); renderUpstreams(d); renderReplica(d); renderRefusals(d);
    document.body.setAttribute('data-updated', d.generatedAt);
    document.body.setAttribute('data-ready', 'true');
  }

  function refresh() {
    fetch('/v1/dashboard', { cache: 'no-store' })
      .then(function (res) { if (!res.ok) throw new Error('GET /v1/dashboard answered ' + res.status); return res.json(); })
      .then(function (d) { $('banner').classList.add('hidden'); render(d); })
      .catch(function (e) { var b = $('banner'); b.textContent = 'Cannot refresh: ' + e.message + ' (showing the last data)'; b.classList.remove('hidden'); })
      .then(function () { setTimeout(refresh, REFRESH_MS); });
  }
  refresh();
})();
`;
