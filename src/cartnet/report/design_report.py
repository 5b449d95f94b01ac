"""The network design report: one offline HTML page (plotly.js inlined once).

Sections: the solver's verdict (status, objective, bound, gap, time), the chosen
sites on a map with the allocation as flow lines, the cost per therapy by kind,
line use per site and day, the service-level iterations when targets were set,
and, when the design was simulated, the twin's figures beside the model's with
the figures where the two disagree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cartnet.design.model import DesignInput
from cartnet.design.service_level import ServiceLevelResult
from cartnet.design.solve import DesignResult
from cartnet.design.twin_check import TwinCheck, design_networks
from cartnet.report.html import Figures, esc
from cartnet.report.maps import Flow, plotly_network_map

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .6em;
text-align:right}th:first-child,td:first-child{text-align:left}.warn{color:#a33}
.note{color:#555;font-size:.9em}
"""


def _num(x: Any, digits: int = 1) -> str:
    if x is None:
        return "–"
    if isinstance(x, dict):
        x = x.get("mean")
        if x is None:
            return "–"
    return f"{float(x):,.{digits}f}"


def _verdict(d: DesignInput, r: DesignResult) -> str:
    rows = [
        ("status", r.status + (f" ({r.solver_status})" if r.solver_status else "")),
        ("method", r.method),
        ("objective", f"{r.objective_kind}: {_num(r.objective, 2)}"),
        ("bound", _num(r.bound, 2)),
        ("gap", "–" if r.gap is None else f"{100 * r.gap:.4f} %"),
        ("seconds", f"{r.seconds:.2f}"),
        ("patients over the horizon", f"{r.patients:g} in {r.horizon_days} days"),
        ("cost per therapy", f"{_num(r.cost_per_therapy.get('total'), 0)} {r.currency}"),
        ("mean vein-to-vein (model)", f"{_num(r.mean_v2v_days, 2)} d (cap {d.v2v_cap_days} d)"),
    ]
    body = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in rows)
    parts = [f"<h2>Solver verdict</h2><table>{body}</table>"]
    for e in r.explanation:
        parts.append(f'<p class="warn">{esc(e)}</p>')
    if d.assumption:
        parts.append(f'<p class="note">Assumptions: {esc(d.assumption)}</p>')
    return "\n".join(parts)


def _sites_table(r: DesignResult) -> str:
    head = "<tr><th>site</th><th>size</th><th>lines</th><th>patients</th><th>utilization</th>"
    head += "<th>peak window use</th><th>fixed cost</th></tr>"
    body = "".join(
        f"<tr><td>{esc(s.name)}{' (existing)' if s.must_open else ''}</td>"
        f"<td>{esc(s.size_label)}</td><td>{s.lines}</td><td>{s.patients:,.1f}</td>"
        f"<td>{100 * s.utilization:.1f} %</td><td>{100 * s.peak_window_share:.1f} %</td>"
        f"<td>{s.fixed_cost:,.0f}</td></tr>"
        for s in r.sites
    )
    return f"<h2>Chosen sites</h2><table>{head}{body}</table>"


def _map(d: DesignInput, r: DesignResult, check: TwinCheck | None, figures: Figures) -> str:
    if check is not None and check.networks:
        net = list(check.networks.values())[-1]
    else:
        try:
            net = design_networks(d, r)[-1][1]
        except (ValueError, KeyError) as e:
            return f'<h2>Map</h2><p class="warn">No map: {esc(e)}</p>'
    centers = {c.id: c for c in d.centers}
    sites = {c.id: c for c in d.candidates}
    flows = [
        Flow(
            centers[f["center"]].lon,
            centers[f["center"]].lat,
            sites[f["site"]].lon,
            sites[f["site"]].lat,
            f["patients"],
            f"{f['center']} → {f['site']}: {f['patients']:.1f} patients "
            f"({f['out_mode']} out, {f['back_mode']} back)",
        )
        for f in r.flows
    ]
    fig = plotly_network_map(net, title=f"{d.name}: chosen sites and allocation", flows=flows)
    return "<h2>Chosen sites on the map</h2>" + figures.html(fig)


def _costs(r: DesignResult, figures: Figures) -> str:
    import plotly.graph_objects as go

    kinds = [k for k in r.cost_per_therapy if k != "total"]
    fig = go.Figure(
        go.Bar(x=kinds, y=[r.cost_per_therapy[k] for k in kinds], marker_color="#34495e")
    )
    fig.update_layout(
        title=f"Cost per therapy by kind ({r.currency}); total "
        f"{r.cost_per_therapy.get('total', 0):,.0f}",
        height=380,
        margin={"l": 50, "r": 10, "t": 50, "b": 40},
    )
    return "<h2>Cost breakdown</h2>" + figures.html(fig)


def _utilization(r: DesignResult, figures: Figures) -> str:
    import plotly.graph_objects as go

    fig = go.Figure()
    for s in r.sites:
        fig.add_trace(
            go.Scatter(
                y=[b / s.lines for b in s.busy_lines_daily],
                mode="lines",
                name=f"{s.name} ({s.lines} lines)",
            )
        )
    fig.update_layout(
        title="Rolling-window line use per site and day (1 = every line busy)",
        xaxis_title="day",
        yaxis={"tickformat": ".0%"},
        height=400,
        margin={"l": 50, "r": 10, "t": 50, "b": 40},
    )
    return "<h2>Utilization</h2>" + figures.html(fig)


def _twin(check: TwinCheck | None) -> str:
    if check is None:
        return '<h2>Simulated check</h2><p class="note">Not simulated (run with --simulate N).</p>'
    labels = [v["label"] for v in check.document["variants"]]
    head = "<tr><th>figure</th><th>model</th>" + "".join(f"<th>{esc(x)}</th>" for x in labels)
    head += "</tr>"
    body = ""
    for row in check.rows:
        cells = "".join(f"<td>{_num(row.get(x))}</td>" for x in labels)
        body += f"<tr><td>{esc(row['figure'])}</td><td>{_num(row['model'])}</td>{cells}</tr>"
    util = "".join(
        f"<tr><td>{esc(u['site'])}</td><td>{_num(u['model'] and 100 * u['model'])} %</td>"
        f"<td>{_num(u['twin'] and 100 * u['twin'])} %</td></tr>"
        for u in check.utilization
    )
    n = check.document["replications"]
    return (
        f"<h2>Simulated check</h2><p class='note'>Mean over {n} replications of the twin "
        "(random arrivals, durations, failures, losses); the model's figure where it has one."
        f"</p><table>{head}{body}</table><table><tr><th>site</th><th>model utilization</th>"
        f"<th>twin utilization</th></tr>{util}</table>"
    )


def _flags(check: TwinCheck | None) -> str:
    if check is None:
        return ""
    if not check.flags:
        return "<p class='note'>The twin agrees with the model on every figure the model gives.</p>"
    head = "<tr><th>figure</th><th>model</th><th>twin mean</th><th>95 % interval</th>"
    head += "<th>tolerance</th></tr>"
    body = "".join(
        f"<tr><td>{esc(f['figure'])}</td><td>{_num(f['model'], 2)}</td>"
        f"<td>{_num(f['twin'], 2)}</td><td>{_num(f['ci_low'], 2)} – {_num(f['ci_high'], 2)}</td>"
        f"<td>± {_num(f['tolerance'], 2)}</td></tr>"
        for f in check.flags
    )
    return (
        "<h3 class='warn'>Where the twin contradicts the model</h3><p class='note'>The model "
        "plans no slot wait and no loss; a figure is flagged when the model's value lies "
        f"outside the twin's interval widened by the tolerance.</p><table>{head}{body}</table>"
    )


def _loop(loop: ServiceLevelResult | None) -> str:
    if loop is None:
        return ""
    targets = [t.text for t in loop.targets]
    head = "<tr><th>#</th><th>utilization caps (≥ safety lines)</th><th>lines</th>"
    head += "<th>cost per therapy</th>"
    head += "".join(f"<th>{esc(t)} (mean [95 % CI])</th>" for t in targets) + "<th>met</th></tr>"
    body = ""
    for it in loop.iterations:
        caps = it.caps_text()
        lines = ", ".join(f"{k} {v}" for k, v in it.lines.items())
        cells = ""
        for t in targets:
            e = it.figures.get(t) or {}
            cells += (
                f"<td>{_num(e.get('mean'), 2)} [{_num(e.get('ci_low'), 2)}, "
                f"{_num(e.get('ci_high'), 2)}]</td>"
            )
        body += (
            f"<tr><td>{it.number}</td><td>{esc(caps)}</td><td>{esc(lines)}</td>"
            f"<td>{_num(it.cost_per_therapy, 0)}</td>{cells}"
            f"<td>{'yes' if it.met else 'no'}</td></tr>"
        )
    for it in loop.iterations:
        for note in it.notes:
            body += (
                f"<tr><td colspan='99' class='warn'>after {it.number}: {esc(note)}; "
                "undone</td></tr>"
            )
    verdict = "met" if loop.met else "NOT MET"
    cls = "note" if loop.met else "warn"
    return (
        f"<h2>Service level: {esc(', '.join(targets))}</h2>"
        f"<p class='{cls}'><b>{verdict}</b>: {esc(loop.reason)}</p>"
        "<p class='note'>Each iteration solves the design with the utilization caps shown "
        "and runs the twin on the same random numbers; a target is met when the upper end "
        f"of the twin's 95 % interval is within it.</p><table>{head}{body}</table>"
    )


def write_design_report(
    design: DesignInput,
    result: DesignResult,
    check: TwinCheck | None,
    out: Path,
    loop: ServiceLevelResult | None = None,
) -> Path:
    """Write the report to ``out`` (.html) and return the path."""
    if out.suffix.lower() != ".html":
        raise ValueError(f"{out}: the report is an .html file")
    figures = Figures()
    sections = [_verdict(design, result)]
    if result.sites:
        sections += [
            _sites_table(result),
            _map(design, result, check, figures),
            _costs(result, figures),
            _utilization(result, figures),
        ]
    sections.append(_loop(loop))
    sections.append(_twin(check))
    sections.append(_flags(check))
    page = (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>cartnet design: {esc(design.name)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>Network design: {esc(design.name)}</h1>"
        f"<p class='note'>{esc(design.description)}</p>" + "\n".join(sections) + "</body></html>\n"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
