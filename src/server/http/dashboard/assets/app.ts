/**
 * The dashboard's script: polls GET /v1/dashboard and draws every section with DOM and inline SVG
 * (no framework, no chart library, nothing fetched from elsewhere). Text from the API is only ever
 * set through textContent, never parsed as HTML: refusal messages and identities come from clients.
 *
 * An ES module, loaded with <script type="module"> like the ones it imports from /dashboard/: module
 * scope keeps every name out of the page's globals.
 */
import { renderKpis, renderMeta, renderRefusals, renderReplica, renderRotation, renderTree, renderUpstreams } from './cards.js';
import { renderRates, renderReasons, renderTimeline } from './charts.js';
import type { Doc } from './doc.js';
import { $ } from './dom.js';

const REFRESH_MS = 5000;

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
