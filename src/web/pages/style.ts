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
`;
