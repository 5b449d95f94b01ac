"""The report of a twin run: one offline HTML page and PNGs of its main figures.

Everything is drawn from the run document (schema ``cartnet.twin-run/1``, see
:mod:`cartnet.twin.results`); the networks only place centers and sites on the
flow maps and name things. The page holds plotly.js once, inlined, and no
external URL, so it opens without a network connection; the PNGs come from
matplotlib (Agg) and can go into slides.

The page, top to bottom: headline, KPI tables, vein-to-vein and time-to-treatment
distributions, line utilization per site and week, backlog over time, patients
lost per year, flow maps, and the settings behind the run.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from cartnet.network.model import Network
from cartnet.report.html import Figures, esc
from cartnet.report.maps import Flow, plotly_network_map, render_network_map
from cartnet.report.twin_summary import (
    CLIPPED,
    CLIPPED_NOTE,
    FLAG_NOTE,
    Document,
    KpiTable,
    RunContext,
    cell,
    headlines,
    interval,
    kpi_tables,
)
from cartnet.twin.results import SCHEMA

WARMUP_SHADE = "#9e9e9e"
HEAT_SCALE = "YlOrRd"
PNG_DPI = 110

CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#222;
 max-width:1280px;margin:0 auto;padding:16px 28px 48px;line-height:1.45;background:#fff}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #e3e3e3;padding-bottom:.2em;
 margin-top:2.2em}h3{margin-bottom:.3em}.sub{color:#666;margin-top:0}
.headline{background:#f5f8fb;border-left:4px solid #1f77b4;padding:10px 18px;margin:12px 0}
.headline li{margin:.25em 0}.note{color:#555;font-size:.92em}
.scroll{overflow-x:auto}table{border-collapse:collapse;font-size:.86em;margin:6px 0 14px}
th,td{border-bottom:1px solid #e6e6e6;padding:4px 9px;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
thead th{background:#fafafa;border-bottom:2px solid #ccc}
td.sig{font-weight:600}.warn{color:#8a5300}code{background:#f3f3f3;padding:0 3px;border-radius:3px}
nav a{margin-right:12px}
"""


# -- public API ------------------------------------------------------------------------


def write_report(document: Document, networks: dict[str, Network], out: Path) -> list[Path]:
    """Write the HTML report to ``out`` and its PNGs next to it; return the files written.

    ``document`` is a run document from :func:`cartnet.twin.results.run_document`;
    ``networks`` maps each variant label to its network, scenario applied.
    """
    if document.get("schema") != SCHEMA:
        raise ValueError(f"not a {SCHEMA} document (schema {document.get('schema')!r})")
    if not document.get("variants"):
        raise ValueError("the run document has no variants")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    ctx = RunContext(document, networks)
    pngs = _write_figures(ctx, lambda name: _sibling(out, name))
    out.write_text(_html_page(ctx, {k: p.name for k, p in pngs.items()}), encoding="utf-8")
    return [out, *pngs.values()]


FIGURES = ("ttt", "utilization", "backlog", "lost", "flows")
"""The report's static figures, by name, in the order the report shows them."""


def write_figures(
    document: Document, networks: dict[str, Network], folder: Path
) -> dict[str, Path]:
    """Only the report's PNG figures, as ``folder/<name>.png`` (for pages that show them)."""
    folder.mkdir(parents=True, exist_ok=True)
    return _write_figures(RunContext(document, networks), lambda name: folder / f"{name}.png")


def _write_figures(ctx: RunContext, path: Callable[[str], Path]) -> dict[str, Path]:
    return {
        "ttt": _png_distributions(ctx, "ttt", path("ttt")),
        "utilization": _png_utilization(ctx, path("utilization")),
        "backlog": _png_backlog(ctx, path("backlog")),
        "lost": _png_lost(ctx, path("lost")),
        "flows": _png_flows(ctx, path("flows")),
    }


def _sibling(out: Path, name: str) -> Path:
    return out.with_name(f"{out.stem}-{name}.png")


# -- reading the document --------------------------------------------------------------


# -- the HTML page ---------------------------------------------------------------------


def _html_page(ctx: RunContext, pngs: dict[str, str]) -> str:
    figures = Figures()
    sections = [
        _section_headline(ctx),
        _section_tables(ctx),
        _section_distributions(ctx, figures),
        _section_utilization(ctx, figures),
        _section_backlog(ctx, figures),
        _section_lost(ctx, figures),
        _section_flows(ctx, figures),
        _section_settings(ctx, pngs),
    ]
    doc = ctx.doc
    kind = "comparison" if ctx.differences else "simulation"
    title = f"cartnet twin {kind}: {doc.get('network', '')}"
    nav = " ".join(
        f'<a href="#{anchor}">{esc(name)}</a>'
        for anchor, name in (
            ("headline", "Headline"),
            ("kpis", "KPIs"),
            ("distributions", "Distributions"),
            ("utilization", "Utilization"),
            ("backlog", "Backlog"),
            ("lost", "Lost patients"),
            ("flows", "Flows"),
            ("settings", "Settings"),
        )
    )
    subtitle = (
        f"{len(ctx.variants)} variant{'s' if len(ctx.variants) != 1 else ''}, "
        f"{doc.get('replications')} replications, seed {doc.get('seed')}"
    )
    if ctx.start is not None:
        subtitle += f", run start {ctx.start.isoformat()}"
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f'<h1>{esc(title)}</h1>\n<p class="sub">{esc(subtitle)}</p>\n<nav>{nav}</nav>\n'
        + "\n".join(sections)
        + "\n</body>\n</html>\n"
    )


def _section_headline(ctx: RunContext) -> str:
    parts = ['<h2 id="headline">Headline</h2>', '<div class="headline">']
    for block in headlines(ctx):
        parts.append(f"<h3>{esc(block.title)}</h3><ul>")
        for group, figures in block.lines:
            items = [f"<b>{esc(f.text)}</b>" if f.significant else esc(f.text) for f in figures]
            parts.append(f"<li>{esc(group)}: {'; '.join(items)}.</li>")
        parts.append("</ul>")
    if ctx.differences:
        parts.append(
            '<p class="note">Differences are the variant minus the baseline, paired over '
            f"{esc(ctx.doc.get('replications'))} replications that share their random "
            "numbers; in bold where the 95% CI excludes zero.</p>"
        )
    parts.append(
        '<p class="note">These are model estimates, not observations: every figure rests on '
        f"the assumptions of the network file <code>{esc(ctx.doc.get('network', ''))}</code> "
        "(demand, capacities, durations, lanes, approvals) and on the twin settings listed "
        f"at the end. Patient counts cover the cohort enrolled between day {ctx.warmup:g} "
        f"(end of warm-up) and day {ctx.horizon:g}; per-year figures scale that cohort "
        "to a year.</p></div>"
    )
    return "\n".join(parts)


def _kpi_table(table: KpiTable) -> str:
    head = "".join(f"<th>{esc(g)}</th>" for g in table.groups)
    rows = []
    for name, figures in table.rows:
        sig = ' class="sig"'
        cells = "".join(f"<td{sig if f.significant else ''}>{esc(f.text)}</td>" for f in figures)
        rows.append(f"<tr><td>{esc(name)}</td>{cells}</tr>")
    caption = esc(table.caption)
    if not table.signed:
        scenario = table.scenario or "no scenario"
        caption += (
            f' <span class="note">(scenario: {esc(scenario)}; policy: {esc(table.policy)})</span>'
        )
    return (
        f'<h3>{caption}</h3><div class="scroll"><table><thead><tr><th>mean [95% CI]</th>'
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _section_tables(ctx: RunContext) -> str:
    parts = ['<h2 id="kpis">Key figures</h2>']
    parts += [_kpi_table(table) for table in kpi_tables(ctx)]
    parts.append(f'<p class="note">{esc(FLAG_NOTE)}</p>')
    if ctx.differences:
        parts.append(
            '<p class="note">Differences in shares are in percentage points (pp); bold: the '
            "95% CI excludes zero.</p>"
        )
    parts.append(_site_table(ctx))
    if CLIPPED in "".join(parts):
        parts.append(f'<p class="note">{esc(CLIPPED_NOTE)}</p>')
    return "\n".join(parts)


def _site_table(ctx: RunContext) -> str:
    head = "".join(f"<th>{esc(label)}</th>" for label in ctx.labels)
    head += "".join(f"<th>Δ {esc(d['variant'])}</th>" for d in ctx.differences)
    rows = []
    for sid in ctx.site_ids():
        key = f"site.{sid}.utilization"
        cells = [esc(cell(v["kpis"].get(key), "share")) for v in ctx.variants]
        cells += [esc(cell(d["kpis"].get(key), "share", signed=True)) for d in ctx.differences]
        name = ctx.site_name(ctx.labels[0], sid)
        rows.append(f"<tr><td>{esc(name)}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    key = "all.backlog.mean"
    cells = [esc(cell(v["kpis"].get(key), "count")) for v in ctx.variants]
    cells += [esc(cell(d["kpis"].get(key), "count", signed=True)) for d in ctx.differences]
    rows.append(
        "<tr><td>Backlog after warm-up, mean (orders)</td>"
        + "".join(f"<td>{c}</td>" for c in cells)
        + "</tr>"
    )
    return (
        '<h3>Line utilization after warm-up, and backlog</h3><div class="scroll"><table>'
        f"<thead><tr><th>site</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


# -- distributions ---------------------------------------------------------------------


FIGURE_TITLES = {
    "ttt": "Time to treatment (enrolment to infusion)",
    "v2v": "Vein-to-vein (apheresis to infusion)",
}


def _shares(ctx: RunContext, figure: str) -> dict[str, dict[str, np.ndarray]]:
    """Histogram shares per group, per variant label (groups without patients left out)."""
    result: dict[str, dict[str, np.ndarray]] = {}
    for group in ctx.groups:
        for v in ctx.variants:
            counts = np.asarray(v["histograms"].get(f"{group}.{figure}", []), dtype=float)
            total = counts.sum()
            if total > 0:
                result.setdefault(group, {})[v["label"]] = counts / total
    return result


def _day_limit(shares: dict[str, dict[str, np.ndarray]]) -> int:
    """The last day worth drawing: 99.5 % of every distribution, plus a little."""
    last = 10
    for by_label in shares.values():
        for s in by_label.values():
            cum = np.cumsum(s)
            last = max(last, int(np.searchsorted(cum, 0.995)) + 5)
            if s[-1] > 0:  # the overflow bin holds something
                last = len(s) - 1
    return last


def _grid(n: int) -> tuple[int, int]:
    cols = min(3, max(1, n))
    return math.ceil(n / cols), cols


def _section_distributions(ctx: RunContext, figures: Figures) -> str:
    from plotly.subplots import make_subplots

    parts = [
        '<h2 id="distributions">Vein-to-vein and time to treatment</h2>',
        '<p class="note">Share of treated patients of the cohort per 1-day bin, pooled over '
        f"replications; the last bin (day {ctx.hist_days}) holds every longer time.</p>",
    ]
    for figure in ("ttt", "v2v"):
        shares = _shares(ctx, figure)
        groups = [g for g in ctx.groups if g in shares]
        if not groups:
            parts.append(f"<p>No treated patients: no {esc(FIGURE_TITLES[figure])} data.</p>")
            continue
        rows, cols = _grid(len(groups))
        fig = make_subplots(
            rows=rows,
            cols=cols,
            subplot_titles=[ctx.group_name(g) for g in groups],
            horizontal_spacing=0.06,
            vertical_spacing=0.14 if rows > 1 else 0.1,
        )
        limit = _day_limit(shares)
        for i, group in enumerate(groups):
            row, col = i // cols + 1, i % cols + 1
            for label, s in shares[group].items():
                days = np.arange(min(limit, len(s) - 1) + 1)
                fig.add_scatter(
                    x=days,
                    y=np.round(s[: len(days)] * 100, 3),
                    mode="lines",
                    line={"color": ctx.colors[label], "width": 1.6, "shape": "hv"},
                    name=label,
                    legendgroup=label,
                    showlegend=i == 0,
                    hovertemplate=f"{esc(label)}<br>day %{{x}}: %{{y:.2f}}%<extra></extra>",
                    row=row,
                    col=col,
                )
            fig.update_xaxes(title_text="days" if row == rows else None, row=row, col=col)
            fig.update_yaxes(title_text="% of patients" if col == 1 else None, row=row, col=col)
        fig.update_layout(
            title=FIGURE_TITLES[figure],
            template="plotly_white",
            height=300 * rows + 130,
            margin={"l": 60, "r": 20, "t": 60, "b": 90},
            # Below the plots: above them it covered the title once the labels wrapped.
            legend={"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom", "x": 0},
        )
        parts.append(figures.html(fig))
    return "\n".join(parts)


# -- utilization and backlog -----------------------------------------------------------


def _utilization_matrix(ctx: RunContext, v: dict[str, Any]) -> tuple[list[str], np.ndarray]:
    weekly: dict[str, list[float]] = v.get("utilization_weekly") or {}
    sites = [s for s in ctx.site_ids() if s in weekly]
    width = max((len(weekly[s]) for s in sites), default=0)
    z = np.full((len(sites), width), np.nan)
    for i, s in enumerate(sites):
        z[i, : len(weekly[s])] = weekly[s]
    return sites, z


def _week_dates(ctx: RunContext, weeks: int) -> list[str]:
    if ctx.start is None:
        return ["" for _ in range(weeks)]
    return [(ctx.start + timedelta(days=7 * w)).isoformat() for w in range(weeks)]


def _section_utilization(ctx: RunContext, figures: Figures) -> str:
    from plotly.subplots import make_subplots

    matrices = [(v["label"], *_utilization_matrix(ctx, v)) for v in ctx.variants]
    matrices = [m for m in matrices if m[2].size]
    parts = [
        '<h2 id="utilization">Line utilization</h2>',
        '<p class="note">Share of line-days busy manufacturing, per site and week from the run '
        f"start, mean over replications; the grey band marks the warm-up ({ctx.warmup:g} days), "
        "which the statistics leave out.</p>",
    ]
    if not matrices:
        parts.append("<p>No utilization data in the run document.</p>")
        return "\n".join(parts)
    heights = [max(1, len(sites)) for _, sites, _ in matrices]
    fig = make_subplots(
        rows=len(matrices),
        cols=1,
        shared_xaxes=True,
        subplot_titles=[label for label, _, _ in matrices],
        row_heights=[h / sum(heights) for h in heights],
        vertical_spacing=min(0.12, 0.3 / len(matrices)),
    )
    for i, (label, sites, z) in enumerate(matrices):
        weeks = z.shape[1]
        dates = _week_dates(ctx, weeks)
        names = [ctx.site_name(label, s) for s in sites]
        fig.add_heatmap(
            z=np.round(z, 3),
            x=list(range(weeks)),
            y=names,
            zmin=0,
            zmax=1,
            colorscale=HEAT_SCALE,
            showscale=i == 0,
            colorbar={"title": {"text": "utilization"}, "tickformat": ".0%", "len": 0.8},
            customdata=[dates for _ in names],
            hovertemplate="%{y}, week %{x} (from %{customdata})<br>%{z:.0%}<extra></extra>",
            row=i + 1,
            col=1,
        )
        if ctx.warmup > 0:
            fig.add_vrect(
                x0=-0.5,
                x1=min(ctx.warmup / 7 - 0.5, weeks - 0.5),
                fillcolor=WARMUP_SHADE,
                opacity=0.45,
                line_width=0,
                row=i + 1,
                col=1,
                annotation_text="warm-up" if i == 0 else None,
                annotation_position="top left",
            )
    fig.update_xaxes(title_text="week from the run start", row=len(matrices), col=1)
    fig.update_layout(
        template="plotly_white",
        height=int(140 + sum(40 + 26 * h for h in heights)),
        margin={"l": 110, "r": 20, "t": 60, "b": 50},
    )
    parts.append(figures.html(fig))
    return "\n".join(parts)


def _section_backlog(ctx: RunContext, figures: Figures) -> str:
    import plotly.graph_objects as go

    fig = go.Figure()
    for v in ctx.variants:
        y = np.asarray(v.get("backlog_daily") or [], dtype=float)
        fig.add_scatter(
            x=np.arange(len(y)),
            y=y,
            mode="lines",
            name=v["label"],
            line={"color": ctx.colors[v["label"]], "width": 1.6},
            hovertemplate=f"{esc(v['label'])}<br>day %{{x}}: %{{y:.1f}} orders<extra></extra>",
        )
    if ctx.warmup > 0:
        fig.add_vrect(
            x0=0,
            x1=ctx.warmup,
            fillcolor=WARMUP_SHADE,
            opacity=0.25,
            line_width=0,
            annotation_text="warm-up",
            annotation_position="top left",
        )
    start = f" (day 0 = {ctx.start.isoformat()})" if ctx.start else ""
    fig.update_layout(
        template="plotly_white",
        height=420,
        title="Backlog: orders enrolled and not yet on a manufacturing line",
        xaxis_title=f"day from the run start{start}",
        yaxis_title="orders (mean over replications)",
        margin={"l": 60, "r": 20, "t": 60, "b": 50},
        legend={"orientation": "h", "y": -0.2},
    )
    return "\n".join(
        [
            '<h2 id="backlog">Backlog over time</h2>',
            '<p class="note">Orders waiting for a slot, or called and on their way to a line, '
            "at the start of each day; mean over replications.</p>",
            figures.html(fig),
        ]
    )


# -- lost patients ---------------------------------------------------------------------


def _lost_bars(ctx: RunContext) -> list[tuple[str, list[float], list[float], list[float]]]:
    """Per variant: means, and the distances down and up to the CI bounds, per group."""
    bars = []
    for v in ctx.variants:
        means, down, up = [], [], []
        for group in ctx.groups:
            e = v["kpis"].get(f"{group}.lost_per_year") or {}
            m = e.get("mean")
            means.append(math.nan if m is None else float(m))
            bounds = interval(e)
            down.append(0.0 if m is None or bounds is None else max(0.0, float(m) - bounds[0]))
            up.append(0.0 if m is None or bounds is None else max(0.0, bounds[1] - float(m)))
        bars.append((v["label"], means, down, up))
    return bars


def _section_lost(ctx: RunContext, figures: Figures) -> str:
    import plotly.graph_objects as go

    fig = go.Figure()
    names = [ctx.group_name(g) for g in ctx.groups]
    for label, means, down, up in _lost_bars(ctx):
        fig.add_bar(
            x=names,
            y=means,
            name=label,
            marker_color=ctx.colors[label],
            error_y={"type": "data", "array": up, "arrayminus": down, "visible": True},
            hovertemplate=f"{esc(label)}<br>%{{x}}: %{{y:.1f}} per year<extra></extra>",
        )
    fig.update_layout(
        template="plotly_white",
        barmode="group",
        height=420,
        title="Patients lost before infusion, per year (error bars: 95% CI)",
        yaxis_title="patients per year",
        margin={"l": 60, "r": 20, "t": 60, "b": 50},
        legend={"orientation": "h", "y": -0.15},
    )
    return "\n".join(['<h2 id="lost">Patients lost per year</h2>', figures.html(fig)])


# -- flows -----------------------------------------------------------------------------


def _flows(ctx: RunContext, net: Network, flows: list[dict[str, Any]]) -> list[Flow]:
    result = []
    for f in flows:
        try:
            _, lat1, lon1 = net.place(f["center"])
            _, lat2, lon2 = net.place(f["site"])
        except LookupError:
            continue
        n = float(f["patients_per_replication"])
        text = (
            f"{ctx.place_name(net, f['center'])} → {ctx.place_name(net, f['site'])}: "
            f"{n:.1f} patients per replication ({n / ctx.years:.1f} per year)"
        )
        result.append(Flow(lon1, lat1, lon2, lat2, n, text))
    return result


def _flow_sets(ctx: RunContext) -> list[tuple[str, Network, list[Flow]]]:
    """Flows per variant, on one scale of line widths across variants.

    The maps scale widths to the heaviest flow they draw; an invisible flow far
    outside the drawn area, as heavy as the heaviest of any variant, makes that
    scale the same on every map.
    """
    sets = []
    for v in ctx.variants:
        net = ctx.networks.get(v["label"])
        if net is not None:
            sets.append((v["label"], net, _flows(ctx, net, v.get("flows") or [])))
    top = max((f.weight for _, _, flows in sets for f in flows), default=0.0)
    return [
        (label, net, [*flows, Flow(-1000, -1000, -1000, -1000, top)] if top > 0 else flows)
        for label, net, flows in sets
    ]


def _flow_title(label: str) -> str:
    return f"{label}: patients from centers to sites (line width: patients of the cohort)"


def _section_flows(ctx: RunContext, figures: Figures) -> str:
    parts = [
        '<h2 id="flows">Flows from treatment centers to sites</h2>',
        '<p class="note">Line width: patients of the cohort per replication shipped from a '
        "center to a site, on one scale for every map; hover a line for the numbers.</p>",
    ]
    missing = [label for label in ctx.labels if label not in ctx.networks]
    for label, net, flows in _flow_sets(ctx):
        fig = plotly_network_map(net, title=_flow_title(label), flows=flows)
        parts.append(figures.html(fig))
    if missing:
        parts.append(f'<p class="warn">No network given for: {esc(", ".join(missing))}.</p>')
    return "\n".join(parts)


# -- settings --------------------------------------------------------------------------


def _section_settings(ctx: RunContext, pngs: dict[str, str]) -> str:
    doc = ctx.doc
    rows = [
        ("network", doc.get("network")),
        ("schema", doc.get("schema")),
        ("replications", doc.get("replications")),
        ("seed", doc.get("seed")),
        ("run start", ctx.start.isoformat() if ctx.start else "–"),
    ]
    if "wall_seconds" in doc:
        rows.append(("wall time (s)", doc["wall_seconds"]))
    events = sum(int(v.get("events") or 0) for v in ctx.variants)
    rows.append(("simulated events", f"{events:,}"))
    rows += [(k, "default" if val is None else val) for k, val in ctx.settings.items()]
    table = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in rows)
    variants = "".join(
        f"<tr><td>{esc(v['label'])}</td><td>{esc(v.get('scenario') or '–')}</td>"
        f"<td>{esc(v.get('policy'))}</td></tr>"
        for v in ctx.variants
    )
    warnings = doc.get("warnings") or []
    warning_html = (
        "<ul>" + "".join(f'<li class="warn">{esc(w)}</li>' for w in warnings) + "</ul>"
        if warnings
        else "<p>None.</p>"
    )
    files = ", ".join(f"<code>{esc(name)}</code>" for name in pngs.values())
    return (
        '<h2 id="settings">Settings</h2>'
        f'<div class="scroll"><table><tbody>{table}</tbody></table></div>'
        "<h3>Variants</h3><table><thead><tr><th>label</th><th>scenario</th><th>policy</th>"
        f"</tr></thead><tbody>{variants}</tbody></table>"
        f"<h3>Warnings</h3>{warning_html}"
        f'<p class="note">PNG copies of the main figures: {files}.</p>'
    )


# -- PNGs ------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=PNG_DPI, layout="constrained")


def _placeholder(out: Path, text: str) -> Path:
    """A small image saying why a figure is missing, so every promised PNG exists."""
    fig = _figure(8, 2)
    ax = fig.subplots()
    ax.text(0.5, 0.5, text, ha="center", va="center")
    ax.set_axis_off()
    fig.savefig(out)
    return out


def _png_distributions(ctx: RunContext, figure: str, out: Path) -> Path:
    shares = _shares(ctx, figure)
    groups = [g for g in ctx.groups if g in shares]
    if not groups:
        return _placeholder(out, f"{FIGURE_TITLES.get(figure, figure)}: no treated patients")
    rows, cols = _grid(len(groups))
    fig = _figure(4.6 * cols, 3.2 * rows + 0.6)
    axes = fig.subplots(rows, cols, squeeze=False)
    limit = _day_limit(shares)
    for i, ax in enumerate(axes.flat):
        if i >= len(groups):
            ax.set_visible(False)
            continue
        group = groups[i]
        for label, s in shares[group].items():
            n = min(limit, len(s) - 1) + 1
            ax.step(np.arange(n), s[:n] * 100, where="post", color=ctx.colors[label], label=label)
        ax.set_title(ctx.group_name(group))
        ax.set_xlim(0, limit)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        if i // cols == rows - 1:
            ax.set_xlabel("days")
        if i % cols == 0:
            ax.set_ylabel("% of treated patients")
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside upper right", fontsize=8, ncols=min(3, len(names)))
    fig.suptitle(FIGURE_TITLES.get(figure, figure), x=0.02, ha="left")
    fig.savefig(out)
    return out


def _png_utilization(ctx: RunContext, out: Path) -> Path:
    from matplotlib.colors import Normalize

    matrices = [(v["label"], *_utilization_matrix(ctx, v)) for v in ctx.variants]
    matrices = [m for m in matrices if m[2].size]
    if not matrices:
        return _placeholder(out, "Line utilization: no data in the run document")
    heights = [max(1, len(sites)) for _, sites, _ in matrices]
    fig = _figure(12, 1.2 + sum(0.75 + 0.32 * h for h in heights))
    axes = fig.subplots(len(matrices), 1, sharex=True, squeeze=False, height_ratios=heights)
    norm = Normalize(0, 1)
    image = None
    for ax, (label, sites, z) in zip(axes[:, 0], matrices, strict=True):
        image = ax.imshow(
            np.ma.masked_invalid(z), aspect="auto", cmap=HEAT_SCALE, norm=norm,
            interpolation="nearest", extent=(-0.5, z.shape[1] - 0.5, len(sites) - 0.5, -0.5),
        )  # fmt: skip
        ax.set_yticks(range(len(sites)), [ctx.site_name(label, s) for s in sites], fontsize=8)
        ax.set_title(label, loc="left", fontsize=10)
        if ctx.warmup > 0:
            ax.axvspan(
                -0.5, min(ctx.warmup / 7 - 0.5, z.shape[1] - 0.5),
                facecolor=WARMUP_SHADE, alpha=0.55, hatch="//", edgecolor="white", linewidth=0,
            )  # fmt: skip
            ax.axvline(ctx.warmup / 7 - 0.5, color="#333", lw=1, ls="--")
    axes[-1, 0].set_xlabel("week from the run start (hatched: warm-up)")
    if image is not None:
        bar = fig.colorbar(image, ax=axes[:, 0].tolist(), fraction=0.025, pad=0.01)
        bar.set_label("line utilization")
        bar.ax.yaxis.set_major_formatter(_percent_formatter())
    fig.suptitle("Line utilization per site and week (mean over replications)", x=0.02, ha="left")
    fig.savefig(out)
    return out


def _percent_formatter() -> Any:
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(xmax=1.0, decimals=0)


def _png_backlog(ctx: RunContext, out: Path) -> Path:
    fig = _figure(10, 4.4)
    ax = fig.subplots()
    for v in ctx.variants:
        y = np.asarray(v.get("backlog_daily") or [], dtype=float)
        ax.plot(np.arange(len(y)), y, color=ctx.colors[v["label"]], label=v["label"], lw=1.4)
    if ctx.warmup > 0:
        ax.axvspan(0, ctx.warmup, color=WARMUP_SHADE, alpha=0.25, lw=0, label="warm-up")
    start = f" (day 0 = {ctx.start.isoformat()})" if ctx.start else ""
    ax.set_xlabel(f"day from the run start{start}")
    ax.set_ylabel("orders (mean over replications)")
    ax.set_title("Backlog: orders enrolled and not yet on a manufacturing line", loc="left")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(out)
    return out


def _png_lost(ctx: RunContext, out: Path) -> Path:
    bars = _lost_bars(ctx)
    names = [ctx.group_name(g) for g in ctx.groups]
    fig = _figure(min(14.0, max(7.0, 0.45 * len(names) * len(bars) + 2)), 4.6)
    ax = fig.subplots()
    width = 0.8 / max(1, len(bars))
    x = np.arange(len(names))
    for i, (label, means, down, up) in enumerate(bars):
        ax.bar(
            x + (i - (len(bars) - 1) / 2) * width, np.nan_to_num(means), width,
            yerr=[down, up], capsize=3, color=ctx.colors[label], label=label,
            error_kw={"elinewidth": 1, "ecolor": "#333"},
        )  # fmt: skip
    ax.set_xticks(x, names)
    ax.set_ylabel("patients per year")
    ax.set_title("Patients lost before infusion, per year (95% CI)", loc="left")
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(out)
    return out


def _png_flows(ctx: RunContext, out: Path) -> Path:
    """One map per variant, stacked into one image."""
    from matplotlib.image import imread, imsave

    sets = _flow_sets(ctx)
    if not sets:
        return _placeholder(out, "Flows: no network to draw them on")
    with tempfile.TemporaryDirectory() as tmp:
        images = []
        for i, (label, net, flows) in enumerate(sets):
            path = render_network_map(
                net, Path(tmp) / f"map-{i}.png", title=_flow_title(label), flows=flows
            )
            images.append(_trim(_rgb(imread(path))))
    imsave(out, _stack(images))
    return out


def _rgb(image: np.ndarray) -> np.ndarray:
    """A float RGB array in 0..1 (PNGs may come as RGBA, grey or 8-bit)."""
    a = np.asarray(image)
    if a.dtype.kind in "ui":
        a = a / 255.0
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    return np.asarray(a[..., :3], dtype=float)


def _trim(image: np.ndarray, margin: int = 12) -> np.ndarray:
    """The image without its white border (the maps keep their aspect in a wider figure)."""
    ink = np.any(image < 0.97, axis=-1)
    rows, cols = np.flatnonzero(np.any(ink, axis=1)), np.flatnonzero(np.any(ink, axis=0))
    if not len(rows) or not len(cols):
        return image
    top, bottom = max(0, rows[0] - margin), min(image.shape[0], rows[-1] + 1 + margin)
    left, right = max(0, cols[0] - margin), min(image.shape[1], cols[-1] + 1 + margin)
    return image[top:bottom, left:right]


def _stack(images: Sequence[np.ndarray]) -> np.ndarray:
    """Images one below the other on white, centred."""
    width = max(a.shape[1] for a in images)
    parts = []
    for a in images:
        canvas = np.ones((a.shape[0], width, 3))
        left = (width - a.shape[1]) // 2
        canvas[:, left : left + a.shape[1]] = a
        parts.append(canvas)
    return np.concatenate(parts, axis=0)
