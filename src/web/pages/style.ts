// The console's one stylesheet, served as /style.css (the policy allows no inline style or script).

export const STYLE = `
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #fff; --muted: #5d6670; --line: #d5d9de; --accent: #0b5cad; --bad: #a3201b; --ok: #1d6b2f; --tint: #f3f5f7; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e8eb; --bg: #15181c; --muted: #9aa3ad; --line: #343a41; --accent: #6cb0f5; --bad: #f08a84; --ok: #7fd08f; --tint: #1e2227; } }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header.top { display: flex; gap: 1.2em; align-items: center; padding: .6em 1.2em; border-bottom: 1px solid var(--line); background: var(--tint); }
header.top .brand { font-weight: 600; }
header.top nav { display: flex; gap: 1em; flex: 1; }
header.top form { margin: 0; }
main { padding: 1em 1.2em 3em; max-width: 76em; }
h1 { font-size: 1.35em; margin: .4em 0 .8em; }
h2 { font-size: 1.1em; margin: 1.4em 0 .5em; }
a { color: var(--accent); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35em .5em; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: .9em; }
td.why { color: var(--muted); }
/* Paths, parameters and recorded JSON are long words: they wrap rather than widen the page. */
table.checks td { overflow-wrap: anywhere; }
td.nowrap, th.nowrap { white-space: nowrap; }
.muted { color: var(--muted); }
.bad { color: var(--bad); }
.ok { color: var(--ok); }
.notice { padding: .6em .9em; border: 1px solid var(--line); border-left: 4px solid var(--accent); background: var(--tint); margin: 0 0 1em; }
.notice.bad { border-left-color: var(--bad); color: inherit; }
.notice.ok { border-left-color: var(--ok); color: inherit; }
form.search { display: flex; flex-wrap: wrap; gap: .5em; align-items: end; margin-bottom: 1em; }
form.search label { display: flex; flex-direction: column; font-size: .85em; color: var(--muted); }
input, select, button { font: inherit; }
input[type=text], input[type=email], input[type=password], input[type=date], select { padding: .3em .45em; border: 1px solid var(--line); border-radius: 4px; background: var(--bg); color: var(--fg); }
button { padding: .35em .9em; border: 1px solid var(--line); border-radius: 4px; background: var(--tint); color: var(--fg); cursor: pointer; }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
button.danger { color: var(--bad); }
.actions { display: flex; gap: .6em; margin: 1em 0; }
.actions form { margin: 0; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .25em 1em; margin: 0 0 1em; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; overflow-wrap: anywhere; }
pre.message { white-space: pre-wrap; overflow-wrap: anywhere; border: 1px solid var(--line); padding: .8em; background: var(--tint); max-height: 40em; overflow: auto; font-size: .9em; }
ul.why { padding-left: 1.2em; }
ul.why li.caught { font-weight: 600; }
.login { max-width: 24em; margin: 3em auto; }
.login label { display: block; margin: .7em 0 .2em; }
.login input { width: 100%; }
.login button { margin-top: 1em; }
.pages { margin-top: 1em; display: flex; gap: 1em; }
fieldset { border: 1px solid var(--line); margin: 0 0 1em; }
/* The dashboard (pages/dashboard.ts, pages/charts.ts): inline SVG coloured by class, light and dark. */
:root { --k-accept: #2e8b45; --k-reject: #c2362f; --k-defer: #d08a00; --k-error: #7a4fc2; --k-bug: #3b3f45; --k-drop: #8a929b; --k-quarantine: #2f6fb5; --k-timeout: #e06d10; --k-gauge: #4a7fb8; --p50: #1f5f99; --p95: #9cc2e8; }
@media (prefers-color-scheme: dark) { :root { --k-accept: #5cc277; --k-reject: #ef6b63; --k-defer: #f0b43c; --k-error: #a988e6; --k-bug: #c8ccd1; --k-drop: #8f98a2; --k-quarantine: #6aa5e8; --k-timeout: #ff9a4d; --k-gauge: #6aa5e8; --p50: #6aa5e8; --p95: #2c4f73; } }
.choices { display: flex; flex-wrap: wrap; gap: .4em 2em; margin: 0 0 .4em; }
.choice { display: flex; flex-wrap: wrap; gap: .35em; align-items: center; margin: 0; }
.choice .muted { margin-right: .3em; font-size: .9em; }
.choice a { padding: .15em .6em; border: 1px solid var(--line); border-radius: 999px; text-decoration: none; font-size: .9em; overflow-wrap: anywhere; }
.choice a.on { background: var(--accent); border-color: var(--accent); color: var(--bg); }
.gauges { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: .8em; margin: 1em 0; }
.card, .panel { border: 1px solid var(--line); border-radius: 6px; padding: .6em .9em .8em; background: var(--bg); }
.card h2, .panel h2 { margin: 0 0 .4em; font-size: 1em; }
.panel h3 { margin: 1em 0 .3em; font-size: .95em; color: var(--muted); font-weight: 600; }
.panel { margin: 0 0 1em; }
.grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 0 1em; }
.gauge .big { font-size: 1.9em; font-weight: 600; margin: 0; line-height: 1.2; }
.gauge p { margin: 0 0 .3em; font-size: .85em; }
.gauge .big.muted { font-size: 1.9em; }
.empty { margin: .6em 0; }
svg.chart { display: block; width: 100%; height: auto; margin: .2em 0; }
svg.chart text { font: 12px system-ui, -apple-system, "Segoe UI", sans-serif; fill: var(--fg); }
svg.chart text.axis { fill: var(--muted); font-size: 11px; }
svg.chart text.value { fill: var(--muted); }
svg.chart text.bad { fill: var(--bad); }
svg.chart line.gridline { stroke: var(--line); stroke-width: 1; }
svg.chart line.base, svg.chart line.tick { stroke: var(--muted); stroke-width: 1; }
svg.chart path.line { fill: none; stroke-width: 2; }
svg.spark { margin: .5em 0 .3em; }
ul.legend { list-style: none; display: flex; flex-wrap: wrap; gap: .3em 1.2em; padding: 0; margin: .3em 0 0; font-size: .88em; color: var(--muted); }
ul.legend b { color: var(--fg); font-weight: 600; }
.swatch { display: inline-block; width: .8em; height: .8em; border-radius: 2px; margin-right: .35em; vertical-align: -.05em; }
.k-accept, .k-deliver, .k-ok { fill: var(--k-accept); stroke: var(--k-accept); background: var(--k-accept); }
.k-reject { fill: var(--k-reject); stroke: var(--k-reject); background: var(--k-reject); }
.k-error { fill: var(--k-error); stroke: var(--k-error); background: var(--k-error); }
.k-defer, .k-tempfail, .k-failover { fill: var(--k-defer); stroke: var(--k-defer); background: var(--k-defer); }
.k-timeout { fill: var(--k-timeout); stroke: var(--k-timeout); background: var(--k-timeout); }
.k-bug { fill: var(--k-bug); stroke: var(--k-bug); background: var(--k-bug); }
.k-drop { fill: var(--k-drop); stroke: var(--k-drop); background: var(--k-drop); }
.k-quarantine, .k-sender { fill: var(--k-quarantine); stroke: var(--k-quarantine); background: var(--k-quarantine); }
.k-domain { fill: #3f8f8a; stroke: #3f8f8a; background: #3f8f8a; }
.k-gauge { fill: var(--k-gauge); background: var(--k-gauge); }
.p50 { fill: var(--p50); background: var(--p50); }
.p95 { fill: var(--p95); background: var(--p95); }
.c0 { fill: #2f6fb5; stroke: #2f6fb5; background: #2f6fb5; }
.c1 { fill: #d08a00; stroke: #d08a00; background: #d08a00; }
.c2 { fill: #2e8b45; stroke: #2e8b45; background: #2e8b45; }
.c3 { fill: #b5477e; stroke: #b5477e; background: #b5477e; }
.c4 { fill: #6a5acd; stroke: #6a5acd; background: #6a5acd; }
.c5 { fill: #3f8f8a; stroke: #3f8f8a; background: #3f8f8a; }
.c6 { fill: #a0522d; stroke: #a0522d; background: #a0522d; }
.c7 { fill: #708090; stroke: #708090; background: #708090; }
@media (max-width: 50em) { .gauges { grid-template-columns: repeat(2, minmax(0, 1fr)); } .grid { grid-template-columns: 1fr; } }
`;
