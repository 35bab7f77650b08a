"""The KPI dashboard page: one HTML document with inline SVG charts, no script and no CDN.

Rendered on the server from the same report as GET /api/kpis, so what the page shows and what Power BI
reads cannot disagree. Every text that came from data is escaped.
"""
from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

# One colour per chart, so a screenshot check can tell that each chart drew (tests/http/test_measurement.py,
# tests/http/test_learning_http.py).
THROUGHPUT, SUCCESS, EFFECT, ROI, LEARNING = "#2e7d32", "#0078d4", "#c42b1c", "#ca5010", "#8764b8"
W, ROW = 640, 26


def _bars(items: Sequence[tuple[str, float, str]], colour: str, unit: str, top: float) -> str:
    """Horizontal bars: (label, value, shown text)."""
    h = ROW * len(items) + 10
    out = [f'<svg width="{W}" height="{h}" role="img" shape-rendering="crispEdges">']
    for i, (label, value, shown) in enumerate(items):
        y = 5 + i * ROW
        width = 0 if top <= 0 else max(2, int((W - 440) * max(value, 0) / top))
        out.append(f'<text x="0" y="{y + 16}" font-size="12">{escape(label)}</text>'
                   f'<rect x="220" y="{y + 3}" width="{width}" height="18" fill="{colour}"/>'
                   f'<text x="{226 + width}" y="{y + 16}" font-size="12">{escape(shown)}{escape(unit)}</text>')
    out.append("</svg>")
    return "".join(out)


def _columns(days: Sequence[tuple[str, int]]) -> str:
    """Vertical bars per day (throughput)."""
    top = max((n for _, n in days), default=0) or 1
    h, base = 170, 140
    step = (W - 40) / max(len(days), 1)
    out = [f'<svg width="{W}" height="{h}" role="img" shape-rendering="crispEdges">',
           f'<line x1="30" y1="{base}" x2="{W}" y2="{base}" stroke="#888"/>']
    for i, (day, n) in enumerate(days):
        x, bar = 34 + i * step, int(120 * n / top)
        out.append(f'<rect x="{x:.0f}" y="{base - bar}" width="{max(step - 6, 3):.0f}" height="{bar}" '
                   f'fill="{THROUGHPUT}"><title>{escape(day)}: {n}</title></rect>')
        if i % 2 == 0:
            out.append(f'<text x="{x:.0f}" y="{base + 16}" font-size="10">{escape(day[5:])}</text>')
    out.append(f'<text x="0" y="14" font-size="11">{top}</text></svg>')
    return "".join(out)


def _forest(rows: Sequence[dict[str, Any]]) -> str:
    """Treated − control per action version and KPI: the dot is the difference, the bar its 95% CI."""
    ok = [r for r in rows if r["status"] == "ok"]
    if not ok:
        return "<p>No action version has enough cases with outcomes in both cohorts yet.</p>"
    reach = max(max(abs(r["ci"]["low"]), abs(r["ci"]["high"])) for r in ok) or 1.0
    left, right = 300, W - 20
    mid = (left + right) / 2

    def x(v: float) -> float:
        return mid + (right - left) / 2 * v / reach

    h = ROW * len(ok) + 30
    out = [f'<svg width="{W}" height="{h}" role="img">',
           f'<line x1="{mid}" y1="0" x2="{mid}" y2="{h - 20}" stroke="#555" stroke-dasharray="4 3"/>',
           f'<text x="{mid - 4}" y="{h - 6}" font-size="11">0</text>',
           f'<text x="{left}" y="{h - 6}" font-size="11">{-reach:.2g}</text>',
           f'<text x="{right - 24}" y="{h - 6}" font-size="11">{reach:.2g}</text>']
    for i, r in enumerate(ok):
        y = 14 + i * ROW
        label = f"{r['actionId']} v{r['actionVersion']} · {r['metric']}"
        lo, hi = x(r["ci"]["low"]), x(r["ci"]["high"])
        out.append(f'<text x="0" y="{y + 4}" font-size="12">{escape(label)}</text>'
                   f'<rect x="{lo:.1f}" y="{y - 3}" width="{max(hi - lo, 2):.1f}" height="6" fill="{EFFECT}" '
                   f'shape-rendering="crispEdges"/>'
                   f'<circle cx="{x(r["difference"]):.1f}" cy="{y}" r="6" fill="{EFFECT}"/>')
    out.append("</svg>")
    return "".join(out)


def _table(rows: Sequence[dict[str, Any]]) -> str:
    head = ("<tr><th>action</th><th>KPI</th><th>treated n / mean</th><th>control n / mean</th>"
            "<th>difference [95% CI]</th><th>p</th><th>verdict</th></tr>")
    body = []
    for r in rows:
        diff = (f"{r['difference']:+.3g} [{r['ci']['low']:.3g}, {r['ci']['high']:.3g}]" if r["status"] == "ok"
                else escape(r.get("reason", "")))
        body.append(f"<tr><td>{escape(r['actionId'])} v{r['actionVersion']}</td><td>{escape(r['metric'])}</td>"
                    f"<td>{r['treated']['n']} / {r['treated']['mean']}</td>"
                    f"<td>{r['control']['n']} / {r['control']['mean']}</td><td>{diff}</td>"
                    f"<td>{r.get('pValue', '')}</td><td>{escape(r['verdict'].replace('_', ' '))}</td></tr>")
    return f"<table>{head}{''.join(body)}</table>"


def _commitments(week: dict[str, Any]) -> str:
    """This week's committed groups and cases: owner, and how many are done, in flight, stuck."""
    if not week["items"]:
        return "<p>Nothing is committed for this week yet (POST /api/backlog/commitments).</p>"
    head = "<tr><th>committed</th><th>owner</th><th>done</th><th>in flight</th><th>stuck</th></tr>"
    body = []
    for i in week["items"]:
        what = (f"{i['processArea']} · {i['deviationPattern']}" if i["kind"] == "group"
                else f"case {i['opportunityId'][:8]} ({i['processArea']} · {i['deviationPattern']})")
        c = i["counts"]
        body.append(f"<tr><td>{escape(what)}</td><td>{escape(i['owner'])}</td><td>{c['done']}</td>"
                    f"<td>{c['inFlight']}</td><td>{c['stuck']}</td></tr>")
    return f"<table>{head}{''.join(body)}</table>"


def _money(d: dict[str, Any], currency: str) -> str:
    """A value with its interval, the interval only where it is one (a counted figure is exact: no "[74, 74]")."""
    if d.get("value") is None:
        return "—"
    shown = f"{d['value']:,.0f} {currency}"
    low, high = d.get("low"), d.get("high")
    if low is not None and high is not None and round(low) != round(high):
        shown += f" [{low:,.0f}, {high:,.0f}]"
    return shown


def _term(t: dict[str, Any], currency: str) -> str:
    """One ROI term as what it is: measured with its CI, counted (exact), or why it has no value."""
    basis = t["basis"]
    if basis == "measured":
        text = f"{_money(t, currency)} (measured, 95% CI)"
    elif basis == "counted":
        text = f"{t['value']:,.0f} {currency} (counted)"
    elif basis == "no_effect":
        span = (f"; the interval allows {t['low']:,.0f} to {t['high']:,.0f} {currency}"
                if t.get("low") is not None and t.get("high") is not None else "")
        text = f"no value: no effect told apart from zero{span}"
    elif basis == "projected" and t.get("value") is not None:
        text = f"{_money(t, currency)} (projected, not measured)"
    else:
        text = f"{basis.replace('_', ' ')}: {t.get('why') or ''}"
    if t.get("value") is not None and not t["inTotal"]:
        text += " — shown, not in the total"
    return escape(text)


def _roi(items: Sequence[dict[str, Any]]) -> str:
    """Per action version: the total (bar) from the terms it adds, each term with its basis, and the projection."""
    valued = [e for e in items if e.get("roi")]
    if not valued:
        return "<p>No ROI parameters in the policy for the measured action versions.</p>"
    bars = [(f"{e['actionId']} v{e['actionVersion']}", e["roi"]["total"]["value"],
             _money(e["roi"]["total"], e["roi"]["currency"]))
            for e in valued if e["roi"]["total"]["value"] is not None]
    top = max((abs(v) for _, v, _ in bars), default=0.0)
    out = [_bars(bars, ROI, "", top) if bars else "<p>No term has a value yet.</p>",
           "<table><tr><th>action</th><th>term</th><th>value</th><th>how</th></tr>"]
    for e in valued:
        r = e["roi"]
        who = f"{escape(e['actionId'])} v{e['actionVersion']}"
        for t in r["terms"]:
            out.append(f"<tr><td>{who}</td><td>{escape(t['label'])}</td><td>{_term(t, r['currency'])}</td>"
                       f"<td>{escape(t.get('formula') or '')}</td></tr>")
        a = r["annualized"]
        days = r["period"].get("days")
        span = f"{days:g} day{'s' if days != 1 else ''}" if days is not None else f"{r['period']['weeks']:g} weeks"
        out.append(f"<tr><td>{who}</td><td><b>total</b> ({span})</td>"
                   f"<td>{escape(_money(r['total'], r['currency']))} {escape(r['total'].get('label') or '')}</td>"
                   f"<td>{escape(a['label'])}: "
                   f"{escape(_money(a, r['currency']))} a year</td></tr>")
    out.append("</table>")
    return "".join(out)


def _ratios(items: Sequence[dict[str, Any]]) -> str:
    """Measured ÷ expected per action version and KPI: the dot is the ratio, the bar its 95% CI, 1 = as expected."""
    cal = [i for i in items if i.get("calibration")]
    if not cal:
        return "<p>No action version has a measured effect on a KPI the miners named yet.</p>"
    low = min(-0.5, *(max(i["calibration"]["ratio"]["low"], -3.0) for i in cal))
    high = max(2.0, *(min(i["calibration"]["ratio"]["high"], 5.0) for i in cal))
    left, right = 350, W - 20  # room for a 56-character label at 11 px

    def x(v: float) -> float:
        return left + (right - left) * (min(max(v, low), high) - low) / (high - low)

    h = ROW * len(cal) + 30
    out = [f'<svg width="{W}" height="{h}" role="img">',
           f'<line x1="{x(1):.1f}" y1="0" x2="{x(1):.1f}" y2="{h - 20}" stroke="#555" stroke-dasharray="4 3"/>',
           f'<line x1="{x(0):.1f}" y1="0" x2="{x(0):.1f}" y2="{h - 20}" stroke="#bbb"/>',
           f'<text x="{x(1) - 30:.1f}" y="{h - 6}" font-size="11">1 = as expected</text>',
           f'<text x="{x(0) - 3:.1f}" y="{h - 6}" font-size="11">0</text>']
    for n, i in enumerate(cal):
        y, r = 14 + n * ROW, i["calibration"]["ratio"]
        label = f"{i['actionId']} v{i['actionVersion']} · {i['deviationPattern']} · {i['metric']}"
        lo, hi = x(r["low"]), x(r["high"])
        out.append(f'<text x="0" y="{y + 4}" font-size="11">{escape(label[:56])}</text>'
                   f'<rect x="{lo:.1f}" y="{y - 3}" width="{max(hi - lo, 2):.1f}" height="6" fill="{LEARNING}" '
                   f'shape-rendering="crispEdges"/><circle cx="{x(r["value"]):.1f}" cy="{y}" r="6" '
                   f'fill="{LEARNING}"><title>{escape(i["calibration"]["text"])}</title></circle>')
    out.append("</svg>")
    return "".join(out)


def _change(d: dict[str, Any] | None, key: str) -> str:
    return "—" if not d or d.get(key) is None else f"{d[key]:+.3g}"


def _learning(rep: dict[str, Any]) -> str:
    """Expected vs measured with the ratio and factor, the verdicts (frozen, flagged) and the recent policy events."""
    head = ("<tr><th>action</th><th>pattern</th><th>KPI</th><th>expected</th><th>measured [95% CI]</th>"
            "<th>n treated / control</th><th>ratio [95% CI]</th><th>factor</th><th>verdict</th></tr>")
    body = []
    for i in rep["items"]:
        m, c, v = i["measured"], i["calibration"], i["verdict"]
        measured = (f"{m['difference']:+.3g} [{m['ci']['low']:.3g}, {m['ci']['high']:.3g}] "
                    f"({'cases acted on' if m['basis'] == 'acted' else 'intention to treat'})" if m
                    else escape(i.get("reason") or "not enough data"))
        ratio = (f"{c['ratio']['value']:.2f} [{c['ratio']['low']:.2f}, {c['ratio']['high']:.2f}]" if c else "—")
        body.append(f"<tr><td>{escape(i['actionId'])} v{i['actionVersion']}</td>"
                    f"<td>{escape(i['deviationPattern'])}</td><td>{escape(i['metric'])}"
                    f"{' (primary)' if i['primary'] else ''}</td><td>{_change(i['expected'], 'change')}</td>"
                    f"<td>{measured}</td><td>{i['n']['treated']} / {i['n']['control']}</td><td>{ratio}</td>"
                    f"<td>{'×' + format(c['factor'], '.2f') if c else '—'}</td>"
                    f"<td>{escape(v['verdict'].replace('_', ' ')) if v else ''}</td></tr>")
    stopped = [v for v in rep["verdicts"] if v["verdict"] in ("harmful", "null") or v["frozenByLearning"]]
    notes = "".join(f"<li>{escape(v['actionId'])} v{v['actionVersion']} · {escape(v['deviationPattern'])}: "
                    f"<b>{escape(v['verdict'])}</b>{' — frozen to approval' if v['frozen'] else ''}"
                    f"{' (a person lifted the harm freeze)' if v['lifted'] else ''}: {escape(v['why'])}</li>"
                    for v in stopped)
    events = "".join(f"<li>{escape(e.get('at', '')[:16])} {escape(e.get('kind', ''))}: "
                     f"{escape(str(e.get('reason') or ''))}"
                     f"</li>" for e in rep["policyEvents"][:10])
    return (f"{_ratios(rep['items'])}<table>{head}{''.join(body)}</table>"
            f"<h2>Frozen and flagged versions</h2>{f'<ul>{notes}</ul>' if notes else '<p>None.</p>'}"
            f"<h2>Recent policy events</h2>{f'<ul>{events}</ul>' if events else '<p>None yet.</p>'}")


def render(data: dict[str, Any]) -> str:
    """The whole page from the dashboard data (services/dashboard.py)."""
    rows = [{**m, "actionId": e["actionId"], "actionVersion": e["actionVersion"]}
            for e in data["kpis"]["items"] for m in e["metrics"]]
    success = [(f"{a} v{v}", rate * 100, f"{rate * 100:.0f}% of {n}") for (a, v), (rate, n) in data["success"].items()]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>closedloop · measured impact</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<style>
body {{ font: 14px system-ui, sans-serif; margin: 24px; color: #222; max-width: 1340px; }}
section {{ display: inline-block; vertical-align: top; width: 650px; margin: 0 12px 24px 0; }}
h1 {{ font-size: 20px; }} h2 {{ font-size: 15px; margin: 8px 0; }}
table {{ border-collapse: collapse; font-size: 12px; }} td, th {{ border: 1px solid #ddd; padding: 3px 6px; }}
.note {{ color: #555; font-size: 12px; }}
</style></head><body>
<h1>closedloop · measured impact</h1>
<p class="note">Generated {escape(data['kpis']['generatedAt'])}. Treated vs randomized control, intention to
treat; 95% confidence intervals; "not enough data" below {data['kpis']['minSamples']} cases per cohort.</p>
<section id="throughput"><h2>Throughput: actions verified per day (last {len(data['days'])} days)</h2>
{_columns(data['days'])}</section>
<section id="success"><h2>Success rate per action version</h2>
{_bars(success, SUCCESS, '', 100.0) if success else '<p>No finished executions yet.</p>'}</section>
<section id="effect"><h2>Treated − control per action version (dot) with 95% CI (bar)</h2>
{_forest(rows)}</section>
<section id="roi"><h2>ROI: each term with where its figure comes from</h2>
{_roi(data['kpis']['items'])}</section>
<section id="learning" style="width: 100%"><h2>Learning: measured ÷ expected per action version (dot) with 95% CI
(bar)</h2>{_learning(data['learning'])}</section>
<section id="commitments" style="width: 100%"><h2>This week's commitments
({escape(data['commitments']['week'])})</h2>{_commitments(data['commitments'])}</section>
<section id="table" style="width: 100%"><h2>All estimates</h2>{_table(rows)}</section>
</body></html>"""
