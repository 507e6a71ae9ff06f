/** The dashboard's stylesheet: a dark operator theme, system fonts only (works offline). */
export const STYLE_CSS = `
:root {
  --bg: #0d1117; --panel: #151b23; --panel-2: #1b2330; --line: #263041; --text: #e6edf3; --muted: #8b98a9;
  --ok: #3fb950; --warn: #d29922; --critical: #f85149; --expired: #8b3a3a; --accent: #58a6ff; --violet: #a371f7;
  --issued: #2ea043; --refused: #f85149;
  --radius: 10px;
  --mono: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace;
}
* { box-sizing: border-box; }
html, body { margin: 0; background: var(--bg); color: var(--text); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
.muted { color: var(--muted); font-weight: 400; }
.mono { font-family: var(--mono); font-size: 12.5px; }
.hidden { display: none !important; }

.top { display: flex; align-items: center; justify-content: space-between; gap: 16px; padding: 14px 24px; border-bottom: 1px solid var(--line); background: linear-gradient(180deg, #111822, var(--bg)); position: sticky; top: 0; z-index: 2; }
.brand { display: flex; align-items: center; gap: 10px; }
.logo { width: 26px; height: 26px; fill: #1f6feb33; stroke: var(--accent); stroke-width: 1.6; }
.logo .tick { fill: none; stroke: var(--ok); stroke-width: 2.4; stroke-linecap: round; stroke-linejoin: round; }
.brand .name { font-weight: 700; font-size: 18px; letter-spacing: .3px; }
.brand .sub { color: var(--muted); }
.meta { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; justify-content: flex-end; }
.pill { display: inline-flex; align-items: center; gap: 6px; padding: 3px 10px; border-radius: 999px; background: var(--panel-2); border: 1px solid var(--line); font-size: 12.5px; white-space: nowrap; }
.pill b { font-weight: 600; }
.pill.leader { border-color: #2ea04366; background: #2ea0431a; color: #7ee2a8; }
.pill.follower { border-color: #58a6ff55; background: #58a6ff14; color: #a5d0ff; }
.banner { margin: 12px 24px 0; padding: 10px 14px; border-radius: var(--radius); background: #f851491a; border: 1px solid #f8514966; color: #ffb1ab; }

main { padding: 18px 24px 8px; max-width: 1680px; margin: 0 auto; }
.kpis { display: grid; grid-template-columns: repeat(5, minmax(0, 1fr)); gap: 14px; margin-bottom: 14px; }
.kpi { background: var(--panel); border: 1px solid var(--line); border-radius: var(--radius); padding: 14px 16px; position: relative; overflow: hidden; }
.kpi::before { content: ""; position: absolute; left: 0; top: 0; bottom: 0; width: 3px; background: var(--accent); }
.kpi.issued::before { background: var(--issued); } .kpi.refused::before { background: var(--refused); }
.kpi.expiry-ok::before { background: var(--ok); } .kpi.expiry-warn::before { background: var(--warn); }
.kpi.expiry-critical::before, .kpi.expiry-expired::before { background: var(--critical); }
.kpi .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .6px; }
.kpi .value { font-size: 26px; font-weight: 650; margin-top: 2px; font-variant-numeric: tabular-nums; }
.kpi .hint { color: var(--muted); font-size: 12.5px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }

.grid { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 14px; align-items: start; }
.span-2 { grid-column: span 2; } .span-3 { grid-column: span 3; }
.stack { display: grid; gap: 14px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: var(--radius); padding: 14px 16px 16px; min-width: 0; }
.card h2 { margin: 0 0 12px; font-size: 14px; font-weight: 650; letter-spacing: .2px; }
.card h2 .muted { font-size: 12.5px; margin-left: 6px; }

/* Hierarchy: nested lists with connector lines drawn by borders. */
.tree, .tree ul { list-style: none; margin: 0; padding: 0; }
.tree ul { margin-left: 22px; padding-left: 18px; border-left: 1px dashed #33415a; }
.tree li { position: relative; padding: 6px 0; }
.tree ul > li::before { content: ""; position: absolute; left: -18px; top: 30px; width: 16px; border-top: 1px dashed #33415a; }
.node { display: grid; grid-template-columns: auto 1fr auto; gap: 4px 12px; align-items: center; background: var(--panel-2); border: 1px solid var(--line); border-left: 4px solid var(--ok); border-radius: 8px; padding: 9px 12px; max-width: 760px; }
.node.expiry-warn { border-left-color: var(--warn); } .node.expiry-critical { border-left-color: var(--critical); background: #f851490d; } .node.expiry-expired { border-left-color: var(--expired); background: #f851491a; opacity: .9; }
.node .kind { font-size: 11px; font-weight: 700; letter-spacing: .8px; text-transform: uppercase; color: var(--muted); }
.node.root .kind { color: #d2a8ff; } .node.intermediate .kind { color: #79c0ff; } .node.workloads .kind { color: #7ee2a8; }
.node .title { font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.node .when { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.node .when .rel { font-weight: 600; }
.node.expiry-ok .when .rel { color: var(--ok); } .node.expiry-warn .when .rel { color: var(--warn); } .node.expiry-critical .when .rel, .node.expiry-expired .when .rel { color: var(--critical); }
.node .chips { grid-column: 1 / -1; display: flex; flex-wrap: wrap; gap: 6px; align-items: center; }
.chip { font-size: 11.5px; padding: 1px 7px; border-radius: 6px; background: #0d1117; border: 1px solid var(--line); color: var(--muted); white-space: nowrap; }
.chip.signing { color: #7ee2a8; border-color: #2ea04366; }
.life { grid-column: 1 / -1; height: 4px; border-radius: 2px; background: #0d1117; overflow: hidden; }
.life > span { display: block; height: 100%; background: var(--ok); }
.expiry-warn .life > span { background: var(--warn); } .expiry-critical .life > span, .expiry-expired .life > span { background: var(--critical); }
.node.workloads { border-left-color: #2ea04399; grid-template-columns: auto 1fr; }
.node.workloads .count { font-size: 18px; font-weight: 650; font-variant-numeric: tabular-nums; }
.legend { display: flex; flex-wrap: wrap; gap: 14px; margin-top: 12px; color: var(--muted); font-size: 12px; }
.dot { display: inline-block; width: 9px; height: 9px; border-radius: 50%; margin-right: 6px; vertical-align: 0; background: var(--ok); }
.dot.expiry-warn { background: var(--warn); } .dot.expiry-critical { background: var(--critical); } .dot.expiry-expired { background: var(--expired); }

/* Charts */
.chart svg { width: 100%; height: auto; display: block; }
.axis text, .tl text { fill: var(--muted); font-size: 11px; font-family: inherit; }
.axis line, .grid-line { stroke: #263041; stroke-width: 1; }
.bar-issued { fill: var(--issued); } .bar-refused { fill: var(--refused); }
.chart-legend { display: flex; gap: 16px; color: var(--muted); font-size: 12px; margin-top: 6px; }
.sw { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; vertical-align: -1px; }
.sw.issued { background: var(--issued); } .sw.refused { background: var(--refused); }

.reasons { display: grid; gap: 8px; }
.reason-row { display: grid; grid-template-columns: minmax(0, 1fr) auto; gap: 4px 10px; align-items: center; }
.reason-row .bar { grid-column: 1 / -1; height: 6px; border-radius: 3px; background: #0d1117; overflow: hidden; }
.reason-row .bar > span { display: block; height: 100%; background: linear-gradient(90deg, #f85149, #ff7b72); }
.reason-row .n { font-variant-numeric: tabular-nums; color: var(--muted); }
.reason-row .badge { justify-self: start; max-width: 100%; overflow: hidden; text-overflow: ellipsis; }

.badge { display: inline-block; padding: 1px 8px; border-radius: 6px; font-family: var(--mono); font-size: 12px; background: #f851491a; color: #ffa198; border: 1px solid #f8514955; white-space: nowrap; }
.table { width: 100%; border-collapse: collapse; table-layout: fixed; }
.table th { text-align: left; color: var(--muted); font-weight: 500; font-size: 12px; padding: 6px 8px; border-bottom: 1px solid var(--line); }
.table td { padding: 7px 8px; border-bottom: 1px solid #1e2633; vertical-align: top; overflow: hidden; text-overflow: ellipsis; }
.table th:nth-child(1) { width: 110px; } .table th:nth-child(2) { width: 190px; } .table th:nth-child(3) { width: 30%; } .table th:nth-child(4) { width: 17%; }
.table td.msg { color: #c9d1d9; white-space: normal; word-break: break-word; }
.table td.identity, .table td.caller { font-family: var(--mono); font-size: 12px; white-space: nowrap; }
.empty { color: var(--muted); padding: 10px 2px; }

/* Rotation stepper */
.steps { display: flex; flex-direction: column; gap: 0; margin-top: 4px; }
.step { display: grid; grid-template-columns: 18px 1fr auto; gap: 10px; align-items: center; padding: 3px 0; color: var(--muted); position: relative; }
.step .mark { width: 12px; height: 12px; border-radius: 50%; border: 2px solid #33415a; background: var(--bg); justify-self: center; z-index: 1; }
.step:not(:last-child)::after { content: ""; position: absolute; left: 8px; top: 17px; height: calc(100% - 8px); border-left: 2px solid #263041; }
.step.done { color: var(--text); } .step.done .mark { background: var(--ok); border-color: var(--ok); }
.step.current { color: var(--text); font-weight: 600; } .step.current .mark { background: var(--accent); border-color: var(--accent); box-shadow: 0 0 0 4px #58a6ff33; }
.step .t { font-size: 11.5px; color: var(--muted); font-weight: 400; }
.not-configured { display: flex; gap: 10px; align-items: flex-start; color: var(--muted); }
.not-configured b { color: var(--text); font-weight: 600; display: block; }

.upstreams { list-style: none; margin: 0; padding: 0; display: grid; gap: 10px; }
.upstreams li { display: grid; grid-template-columns: 12px 1fr auto; gap: 2px 10px; align-items: center; }
.upstreams .status { font-size: 12px; text-transform: uppercase; letter-spacing: .5px; font-weight: 600; }
.upstreams .detail { grid-column: 2 / -1; color: var(--muted); font-size: 12.5px; word-break: break-word; }
.st { width: 10px; height: 10px; border-radius: 50%; background: #6e7681; }
li[data-status="ok"] .st { background: var(--ok); box-shadow: 0 0 0 3px #3fb95026; } li[data-status="ok"] .status { color: var(--ok); }
li[data-status="degraded"] .st { background: var(--warn); } li[data-status="degraded"] .status { color: var(--warn); }
li[data-status="down"] .st { background: var(--critical); } li[data-status="down"] .status { color: var(--critical); }
li[data-status="not_configured"] .status, li[data-status="unknown"] .status { color: var(--muted); }
li[data-status="not_configured"] .st { background: transparent; border: 2px solid #6e7681; width: 10px; height: 10px; }

/* Timeline */
.tl-list { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 6px 18px; margin-top: 10px; }
.tl-item { display: grid; grid-template-columns: 14px 1fr auto; gap: 8px; align-items: center; padding: 4px 0; border-bottom: 1px solid #1e2633; }
.tl-item .in { font-variant-numeric: tabular-nums; color: var(--muted); white-space: nowrap; }
.shape { width: 10px; height: 10px; background: var(--ok); border-radius: 50%; }
.shape.renewal { border-radius: 2px; transform: rotate(45deg); background: var(--accent); }
.shape.expiry-warn { background: var(--warn); } .shape.expiry-critical, .shape.expiry-expired { background: var(--critical); }
.tl .m-expiry { stroke: #0d1117; stroke-width: 1.5; }
.tl .m-renewal { fill: var(--accent); stroke: #0d1117; stroke-width: 1.5; }
.tl .m-expiry.expiry-ok { fill: var(--ok); } .tl .m-expiry.expiry-warn { fill: var(--warn); } .tl .m-expiry.expiry-critical, .tl .m-expiry.expiry-expired { fill: var(--critical); }
.tl .now { stroke: var(--accent); stroke-width: 2; }
.tl .track { stroke: #33415a; stroke-width: 2; }

.kv { display: grid; grid-template-columns: 92px 1fr; gap: 5px 10px; margin: 0; }
.kv dt { color: var(--muted); font-size: 12.5px; }
.kv dd { margin: 0; word-break: break-word; }
.small { font-size: 12px; margin-top: 10px; }
.terms { list-style: none; margin: 4px 0 0; padding: 0; display: grid; gap: 3px; }
.terms li { display: grid; grid-template-columns: 64px 1fr auto; gap: 8px; align-items: center; color: var(--muted); }
.terms li.current { color: var(--text); }
.terms li.current .term::before { content: "★ "; color: #7ee2a8; }
.terms .term { font-variant-numeric: tabular-nums; }

footer { color: var(--muted); font-size: 12px; text-align: center; padding: 10px 0 22px; }
@media (max-width: 1100px) { .kpis { grid-template-columns: repeat(2, minmax(0, 1fr)); } .grid { grid-template-columns: minmax(0, 1fr); } .span-2, .span-3 { grid-column: auto; } }
`;
