/** The page's drawn sections: the per-minute rate chart, refusal reasons and the timeline (inline SVG). */
import type { Doc } from './doc.js';
import { $, clear, h, s } from './dom.js';
import { date, num, rel } from './format.js';

// The top of the y axis: four gridlines at a round, whole step (1, 2, 5 x 10^k).
function niceMax(v: number): number {
  const raw = Math.max(1, v / 4);
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * p).filter((x) => x >= raw)[0];
  return Math.max(1, Math.ceil(step)) * 4;
}

export function renderRates(d: Doc): void {
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

export function renderReasons(d: Doc): void {
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
export function renderTimeline(d: Doc): void {
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
