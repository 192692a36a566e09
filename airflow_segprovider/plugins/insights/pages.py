"""The HTML pages: each embeds its view's data as Plotly traces and lets Plotly draw them.

No chart code of our own: a page holds a ``<div>`` per chart and the traces and layout as JSON, and one line
calls ``Plotly.newPlot`` for each. ``plotly.min.js`` comes from the ``plotly`` wheel, served by the app.
Every text from the warehouse or the project is HTML-escaped; JSON is embedded with ``<`` escaped.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_segprovider.plugins.insights.urls import URL_PREFIX

if TYPE_CHECKING:
    from airflow_segprovider.plugins.insights.access import DagTarget

VIEW_TITLES = {"segments": "Segments", "overlap": "Overlap", "syncs": "Syncs", "gates": "Gates", "drift": "Drift",
               "customer": "Customer lookup"}
_STYLE = """body{font-family:system-ui,sans-serif;margin:16px;color:#1a202c}nav a{margin-right:12px}
table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #cbd5e0;padding:3px 8px;font-size:13px;text-align:left}
.rule{white-space:pre;font-family:monospace;font-size:12px;background:#f7fafc;padding:8px}
.row{display:flex;gap:16px;align-items:flex-start}.chart{min-width:620px;height:320px}
.stale{background:#fefcbf;padding:6px}.note{color:#4a5568;font-size:13px}.fail{color:#c53030}.ok{color:#2f855a}"""


@functools.lru_cache(maxsize=1)
def plotly_js() -> bytes:
    """``plotly.min.js`` as the ``plotly`` wheel ships it (read once)."""
    from importlib.resources import files

    bundled = files("plotly") / "package_data" / "plotly.min.js"
    if bundled.is_file():
        return bundled.read_bytes()
    from plotly.offline import get_plotlyjs

    return get_plotlyjs().encode()


def _json(value: Any) -> str:
    return json.dumps(value, default=str).replace("<", "\\u003c")


def _page(title: str, body: str, charts: list[tuple[str, list[dict[str, Any]], dict[str, Any]]] = ()) -> str:
    script = ""
    if charts:
        specs = _json([{"id": cid, "data": data, "layout": {"margin": {"t": 40, "b": 40}, **layout}}
                       for cid, data, layout in charts])
        script = (f'<script src="{URL_PREFIX}/static/plotly.min.js"></script>'
                  f'<script id="charts" type="application/json">{specs}</script>'
                  "<script>for (const c of JSON.parse(document.getElementById('charts').textContent)) "
                  "Plotly.newPlot(c.id, c.data, c.layout, {responsive: true, displaylogo: false});</script>")
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f'<link rel="icon" href="data:,"><style>{_STYLE}</style></head><body>{body}{script}</body></html>')


def _nav(dag_id: str, current: str) -> str:
    links = [f'<a href="{URL_PREFIX}/dags/{quote(dag_id)}/{view}"' + (' aria-current="page"' if view == current else "")
             + f">{title}</a>" for view, title in VIEW_TITLES.items()]
    return f'<nav><a href="{URL_PREFIX}/dags/{quote(dag_id)}"><b>{escape(dag_id)}</b></a> {"".join(links)}</nav>'


def _table(rows: list[dict[str, Any]], columns: list[str], table_id: str = "") -> str:
    if not rows:
        return '<p class="note">none</p>'
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{escape(_text(row.get(c)))}</td>" for c in columns) + "</tr>"
                   for row in rows)
    return f'<table id="{table_id}"><tr>{head}</tr>{body}</table>'


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


def index_page(dags: list[dict[str, Any]]) -> str:
    items = "".join(f'<li><a href="{URL_PREFIX}/dags/{quote(d["dag_id"])}">{escape(d["dag_id"])}</a> '
                    f'<span class="note">{escape(", ".join(d["tags"]))}</span></li>' for d in dags)
    return _page("Segments", "<h2>Segments DAGs</h2>" + (f"<ul>{items}</ul>" if items else
                                                         '<p class="note">No segments DAG you may read.</p>'))


def not_segments_page(dag_id: str, message: str) -> str:
    return _page(f"{dag_id}: segments", f'<h3>Segment insights</h3><p id="not-segments">{escape(message)}</p>')


def message_page(dag_id: str, view: str, message: str) -> str:
    return _page(f"{dag_id}: {view}", _nav(dag_id, view) + f'<p id="message" class="stale">{escape(message)}</p>')


def overview_page(target: DagTarget, run_id: str | None) -> str:
    run = f"?run_id={quote(run_id)}" if run_id else ""
    links = "".join(f'<li><a href="{URL_PREFIX}/dags/{quote(target.dag_id)}/{view}{run if view == "gates" else ""}">'
                    f"{title}</a></li>" for view, title in VIEW_TITLES.items())
    facts = (f"model <b>{escape(target.model or '?')}</b>, project <b>{escape(target.project_name or 'unknown')}</b>"
             f", warehouse connection <code>{escape(target.warehouse_conn_id)}</code>")
    if target.project_path is None:
        facts += ('<br><span class="note">The project folder is not known to the API server: set '
                  "[segprovider] insights_projects to show rules and explain customers.</span>")
    return _page(f"{target.dag_id}: segments", _nav(target.dag_id, "") + f"<p>{facts}</p>"
                 + (f"<p>Run <code>{escape(run_id)}</code>: see its gate results.</p>" if run_id else "")
                 + f"<ul>{links}</ul>")


def _freshness(answer: dict[str, Any]) -> str:
    if answer.get("message"):
        return f'<p id="message" class="stale">{escape(answer["message"])}</p>'
    read_at = answer.get("read_at")
    if read_at is None:
        return ""
    when = dt.datetime.fromtimestamp(read_at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if answer.get("stale"):
        age = max(0, int(dt.datetime.now(dt.UTC).timestamp() - read_at))
        return (f'<p id="freshness" class="stale">A task is writing the warehouse: showing data read at {when} '
                f"({age} s ago).</p>")
    return f'<p id="freshness" class="note">Read at {when}.</p>'


def view_page(view: str, answer: dict[str, Any]) -> str:
    """The page of ``view`` for the answer of :func:`~.app.read_view`."""
    data = answer.get("data") or {}
    body, charts = _VIEWS[view](answer["dag_id"], data) if answer.get("data") is not None else ("", [])
    return _page(f"{answer['dag_id']}: {VIEW_TITLES[view]}", _nav(answer["dag_id"], view)
                 + f"<h2>{VIEW_TITLES[view]}</h2>" + _freshness(answer) + body, charts)


def _segments(dag_id: str, data: dict[str, Any]) -> tuple[str, list]:
    segments = data["segments"]
    sizes = [{"type": "scatter", "mode": "lines+markers", "name": s["segment"],
              "x": [p["as_of"] for p in s["snapshots"]], "y": [p["members"] for p in s["snapshots"]]}
             for s in segments]
    charts: list = [("chart-sizes", sizes, {"title": {"text": "Members per segment"}})]
    parts = ['<div id="chart-sizes" class="chart"></div>']
    for i, s in enumerate(segments):
        x = [p["as_of"] for p in s["snapshots"]]
        traces = [{"type": "scatter", "mode": "lines+markers", "name": "members", "x": x,
                   "y": [p["members"] for p in s["snapshots"]]},
                  {"type": "bar", "name": "added", "x": x, "y": [p["added"] or 0 for p in s["snapshots"]],
                   "yaxis": "y2"},
                  {"type": "bar", "name": "removed", "x": x, "y": [-(p["removed"] or 0) for p in s["snapshots"]],
                   "yaxis": "y2"}]
        # a split segment's arms over time (written by each evaluation beside the snapshot)
        traces += [{"type": "scatter", "mode": "lines+markers", "name": f"arm {arm}", "x": [p["as_of"] for p in points],
                    "y": [p["members"] for p in points], "line": {"dash": "dot"}}
                   for arm, points in sorted(s.get("arms", {}).items())]
        charts.append((f"chart-segment-{i}", traces, {
            "title": {"text": s["segment"]}, "barmode": "relative",
            "yaxis2": {"overlaying": "y", "side": "right", "title": {"text": "added / removed"}}}))
        extra = [f"priority group {s['priority_group']}" + (f", yields to {', '.join(s['higher_priority'])}"
                                                             if s["higher_priority"] else "")] \
            if s["priority_group"] else []
        arms = ", ".join(f"{a['arm']} {a['percent']:g}%" for a in s["split"])
        extra += [f"split: {arms}"] if arms else []
        rule = "\n".join(s["rule"]) or "(rule not known: project folder not configured)"
        parts.append(f'<h3>{escape(s["segment"])}</h3><p class="note">{escape(s["description"])}</p>'
                     f'<div class="row"><div id="chart-segment-{i}" class="chart" data-name="{escape(s["segment"])}">'
                     f'</div><div><div class="rule">{escape(rule)}</div><p class="note">{escape("; ".join(extra))}'
                     "</p></div></div>")
    return "".join(parts), charts


def _overlap(dag_id: str, data: dict[str, Any]) -> tuple[str, list]:
    options = "".join(f'<option value="{escape(d)}"' + (" selected" if d == data["as_of"] else "")
                      + f">{escape(d)}</option>" for d in data["as_of_dates"])
    form = (f'<form method="get"><label>as_of <select name="as_of" onchange="this.form.submit()">{options}'
            "</select></label></form>")
    heat = [{"type": "heatmap", "z": data["matrix"], "x": data["segments"], "y": data["segments"],
             "texttemplate": "%{z}", "colorscale": "Blues"}]
    groups = "".join(f"<li>{escape(g['group'])}: {escape(' > '.join(g['segments']))}</li>"
                     for g in data["priority_groups"])
    charts: list = [("chart-overlap", heat, {"title": {"text": f"Overlap at {data['as_of']}"}})]
    removals = data.get("removals") or []
    removed = ""
    if removals:
        lower = list(dict.fromkeys(r["segment"] for r in removals))
        takers = list(dict.fromkeys(r["taken_by"] for r in removals))
        counts = {(r["segment"], r["taken_by"]): r["customers"] for r in removals}
        charts.append(("chart-removals", [{"type": "bar", "name": f"taken by {taker}", "x": lower,
                                           "y": [counts.get((segment, taker)) for segment in lower]}
                                          for taker in takers],
                       {"title": {"text": f"Removed by priority at {data['as_of']}"}, "barmode": "stack"}))
        removed = ('<p class="note">Customers each segment\'s own rule and consent admitted whom a higher-priority '
                   'segment of its group took instead.</p><div id="chart-removals" class="chart"></div>'
                   + _table(removals, ["priority_group", "segment", "taken_by", "customers"], "removals"))
    elif groups:
        removed = ('<p class="note" id="no-removals">No priority-group counts for this as_of: they are written by '
                   "evaluations of this version on (evaluate the as_of again to add them).</p>")
    body = (form + '<p class="note">Members shared by each pair of segments at this as_of (diagonal: the '
            'segment\'s size).</p><div id="chart-overlap" class="chart" style="height:520px"></div>'
            + (f"<h3>Priority groups</h3><p class=\"note\">A customer in several segments of a group is kept only in "
               f"the highest (so their overlap above is zero).</p><ul>{groups}</ul>{removed}" if groups else ""))
    return body, charts


def _syncs(dag_id: str, data: dict[str, Any]) -> tuple[str, list]:
    parts, charts = [], []
    for i, (sync_id, runs) in enumerate(sorted(data["syncs"].items())):
        x = [r["as_of"] for r in runs]
        traces = [{"type": "bar", "name": name, "x": x, "y": [r[name] or 0 for r in runs]}
                  for name in ("added", "removed", "rejected", "suppressed")]
        traces.append({"type": "scatter", "mode": "lines+markers", "name": "duration (s)", "x": x,
                       "y": [r["duration_s"] for r in runs], "yaxis": "y2"})
        charts.append((f"chart-sync-{i}", traces, {
            "title": {"text": f"{sync_id} ({runs[-1]['destination']})"}, "barmode": "group",
            "yaxis2": {"overlaying": "y", "side": "right", "title": {"text": "seconds"}}}))
        parts.append(f'<div id="chart-sync-{i}" class="chart" data-name="{escape(sync_id)}"></div>')
    parts.append("<h3>Rejected records</h3>" + _table(
        data["rejected"], ["sync_id", "customer_key", "operation", "error_code", "message", "attempts", "last_seen"],
        "rejected"))
    return "".join(parts) or '<p class="note">No sync has run yet.</p>', charts


def _gates(dag_id: str, data: dict[str, Any]) -> tuple[str, list]:
    rows = []
    for g in data["gates"]:
        failed = "; ".join(f"{f['expectation']}" + (f" on {f['column']}" if f["column"] else "")
                           + f" observed {_text(f['observed_value'])}"
                           + (f" ({f['unexpected_count']} rows)" if f["unexpected_count"] else "")
                           + (f" [{f['batch']}]" if f["batch"] else "") for f in g["failed"])
        docs = (f'<a href="{URL_PREFIX}/dags/{quote(dag_id)}/docs/{quote(g["docs"])}" target="_blank">Data Docs</a>'
                if g["docs"] else "")
        stats = g["statistics"]
        verdict = '<span class="ok">passed</span>' if g["success"] else '<span class="fail">FAILED</span>'
        rows.append(f"<tr><td>{escape(g['run'])}</td><td>{escape(g['task_id'])}</td><td>{escape(str(g['gate']))}"
                    f"</td><td>{escape(str(g['as_of']))}</td><td>{verdict}</td>"
                    f"<td>{stats.get('successful_expectations', '')}/{stats.get('evaluated_expectations', '')}</td>"
                    f"<td>{escape(failed)}</td><td>{docs}</td></tr>")
    by_gate: dict[str, list[dict[str, Any]]] = {}
    for g in sorted(data["gates"], key=lambda g: (str(g["as_of"]), g["written_at"])):
        by_gate.setdefault(str(g["gate"]), []).append(g)
    traces = [{"type": "scatter", "mode": "markers", "name": gate, "x": [g["as_of"] for g in items],
               "y": [g["statistics"].get("success_percent", 0) for g in items]} for gate, items in by_gate.items()]
    head = "".join(f"<th>{h}</th>" for h in ("run", "task", "gate", "as_of", "verdict", "held",
                                             "failed expectations (observed)", "docs"))
    body = (f'<div id="chart-gates" class="chart"></div><table id="gates"><tr>{head}</tr>{"".join(rows)}</table>'
            if rows else f'<p class="note">No gate results under {escape(data["docs_root"])}.</p>')
    return body, [("chart-gates", traces, {"title": {"text": "Expectations held (%)"}})] if rows else []


def _drift(dag_id: str, data: dict[str, Any]) -> tuple[str, list]:
    parts, charts = [], []
    counts: dict[str, list[dict[str, Any]]] = {}
    for row in data["counts"]:
        if row["phase"] == "after":
            counts.setdefault(row["sync_id"], []).append(row)
    for i, (sync_id, rows) in enumerate(sorted(counts.items())):
        x = [r["as_of"] for r in rows]
        charts.append((f"chart-counts-{i}", [
            {"type": "scatter", "mode": "lines+markers", "name": "central (snapshot)", "x": x,
             "y": [r["central"] for r in rows]},
            {"type": "scatter", "mode": "lines+markers", "name": f"{rows[0]['destination']} reports", "x": x,
             "y": [r["reported_count"] for r in rows]}], {"title": {"text": f"{sync_id}: central vs destination"}}))
        parts.append(f'<div id="chart-counts-{i}" class="chart" data-name="{escape(sync_id)}"></div>')
    findings: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in data["reports"]:
        if row["expected"] is not None:
            findings.setdefault((row["kind"], row["name"], row["destination"]), []).append(row)
    for i, ((kind, name, destination), rows) in enumerate(sorted(findings.items())):
        x = [r["checked_at"] for r in rows]
        band = [round((r["expected"] or 0) * (r["tolerance"] or 0)) for r in rows]
        charts.append((f"chart-drift-{i}", [
            {"type": "scatter", "mode": "markers", "name": "expected (with tolerance)", "x": x,
             "y": [r["expected"] for r in rows], "error_y": {"type": "data", "array": band, "visible": True}},
            {"type": "scatter", "mode": "markers", "name": f"{destination} reports", "x": x,
             "y": [r["reported"] for r in rows]}], {"title": {"text": f"{kind} {name} @ {destination}"}}))
        parts.append(f'<div id="chart-drift-{i}" class="chart" data-name="{escape(name)}"></div>')
    if data["reconcile"]:
        by_segment: dict[str, list[dict[str, Any]]] = {}
        for row in data["reconcile"]:
            by_segment.setdefault(row["segment"], []).append(row)
        traces = [{"type": "bar", "name": f"{segment} {what}", "x": [r["as_of"] for r in rows],
                   "y": [r[what] or 0 for r in rows]}
                  for segment, rows in sorted(by_segment.items()) for what in ("conflicts", "applied_changes")]
        charts.append(("chart-reconcile", traces, {"title": {"text": "Reconcile decisions"}}))
        parts.append('<div id="chart-reconcile" class="chart"></div>')
    parts.append("<h3>Findings</h3>" + _table(data["reports"], ["checked_at", "kind", "name", "destination", "expected",
                                                                 "reported", "drift", "tolerance", "status", "detail"],
                                             "findings"))
    return "".join(parts), charts


def _customer(dag_id: str, data: dict[str, Any]) -> tuple[str, list]:
    options = "".join(f'<option value="{escape(s)}"' + (" selected" if s == data.get("segment") else "")
                      + f">{escape(s)}</option>" for s in data["segments"])
    form = (f'<form method="get" id="lookup"><label>segment <select name="segment">{options}</select></label> '
            f'<label>customer <input name="customer" value="{escape(data.get("customer") or "")}"></label> '
            '<label>as_of <input name="as_of" placeholder="latest"></label> <button type="submit">Explain</button>'
            "</form>")
    if not data.get("customer"):
        return form, []
    explanation = data.get("explanation") or {}
    text = explanation.get("error") or "\n".join(explanation.get("lines") or []) or "(no segment chosen)"
    history = data["history"]
    body = (form + f'<h3>Why</h3><div id="explanation" class="rule">{escape(text)}</div>'
            + "<h3>Memberships over time</h3>" + _table(history["memberships"], ["segment", "arm", "since", "until"],
                                                         "memberships")
            + '<p class="note">until: the as_of that removed the customer (empty: still a member).</p>'
            + "<h3>Sent to destinations</h3>" + _table(history["sync_log"], ["logged_at", "sync_id", "action",
                                                                              "status", "error_code", "message"],
                                                        "sync-log"))
    return body, []


_VIEWS = {"segments": _segments, "overlap": _overlap, "syncs": _syncs, "gates": _gates, "drift": _drift,
          "customer": _customer}
