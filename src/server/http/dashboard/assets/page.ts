/**
 * The dashboard page. Static: app.js fills every section from GET /v1/dashboard. Embedded as a
 * string so that `tsc` carries it into dist/ and the server needs no files besides its own code.
 */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>meshca · CA dashboard</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/dashboard/style.css">
<script src="/dashboard/app.js" defer></script>
</head>
<body>
<header class="top">
  <div class="brand">
    <svg class="logo" viewBox="0 0 32 32" aria-hidden="true"><path d="M16 2 4 7v8c0 7.5 5.1 13.4 12 15 6.9-1.6 12-7.5 12-15V7L16 2z"/><path class="tick" d="m10.5 16 4 4 7-8"/></svg>
    <span class="name">meshca</span><span class="sub">certificate authority</span>
  </div>
  <div class="meta" id="meta"><span class="muted">loading…</span></div>
</header>
<div class="banner hidden" id="banner" role="alert"></div>
<main>
  <section class="kpis" id="kpis" aria-label="summary"></section>
  <section class="grid">
    <div class="stack span-2">
    <article class="card" id="tree-card">
      <h2>CA hierarchy <span class="muted">roots → cluster intermediates → workload certificates</span></h2>
      <div id="tree" class="tree-wrap"></div>
      <div class="legend">
        <span><i class="dot expiry-ok"></i>healthy</span>
        <span><i class="dot expiry-warn"></i>in renewal window (last third)</span>
        <span><i class="dot expiry-critical"></i>last tenth of life</span>
        <span><i class="dot expiry-expired"></i>expired</span>
      </div>
    </article>
    <article class="card" id="rates-card">
      <h2>Issuance and refusals <span class="muted">last hour, per minute</span></h2>
      <div id="rates" class="chart"></div>
    </article>
    </div>
    <div class="stack">
      <article class="card" id="rotation-card"><h2>Root rotation</h2><div id="rotation"></div></article>
      <article class="card" id="upstreams-card"><h2>Upstream health</h2><ul id="upstreams" class="upstreams"></ul></article>
      <article class="card" id="replica-card"><h2>Replica and leadership</h2><div id="replica-info"></div></article>
      <article class="card" id="reasons-card"><h2>Refusal reasons <span class="muted">last hour</span></h2><div id="reasons"></div></article>
    </div>
    <article class="card span-3" id="timeline-card"><h2>Upcoming expiries and renewals</h2><div id="timeline"></div></article>
    <article class="card span-3" id="refusals-card">
      <h2>Recent refusals</h2>
      <table id="refusals" class="table">
        <thead><tr><th>When</th><th>Reason</th><th>Identity asked for</th><th>Caller</th><th>Message</th></tr></thead>
        <tbody></tbody>
      </table>
    </article>
  </section>
</main>
<footer><span id="footer">read-only · refreshes every 5 s · <a href="/v1/dashboard">JSON</a> · <a href="/metrics">metrics</a> · <a href="/v1/ca">/v1/ca</a></span></footer>
</body>
</html>
`;
