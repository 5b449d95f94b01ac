"""World maps of a network: sites, treatment centers and the flows between them.

PNG and SVG come from matplotlib, HTML from plotly with plotly.js inlined: all
three open offline. The twin's report draws its flow map with the same code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cartnet.network.entities import OperatorKind, Site
from cartnet.network.model import Network
from cartnet.report.map_labels import Box, Label, place_labels
from cartnet.report.world import ATTRIBUTION, country_rings

FORMATS = (".png", ".svg", ".html")
LAND, COAST, SEA = "#e8e6df", "#b9b5a8", "#f4f8fb"
SITE_COLORS = {OperatorKind.OWNED: "#c0392b", OperatorKind.CONTRACT: "#8e44ad"}
MARKET_PALETTE = (
    "#1f77b4 #2ca02c #ff7f0e #17becf #bcbd22 #e377c2 #7f7f7f #8c564b #9467bd #d62728".split()
)


@dataclass(frozen=True)
class Flow:
    """Patients moving between a center and a site, drawn as a line of ``weight`` width."""

    lon1: float
    lat1: float
    lon2: float
    lat2: float
    weight: float
    label: str = ""


def _market_colors(network: Network) -> dict[str, str]:
    return {m.id: MARKET_PALETTE[i % len(MARKET_PALETTE)] for i, m in enumerate(network.markets)}


def render_network_map(
    network: Network,
    out: Path,
    *,
    title: str | None = None,
    flows: Sequence[Flow] = (),
) -> Path:
    """Write the map to ``out``; the suffix (.png, .svg, .html) chooses the format."""
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"map format {suffix or '(none)'} not supported; use {', '.join(FORMATS)}")
    title = title or _default_title(network)
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".html":
        figure = plotly_network_map(network, title=title, flows=flows)
        figure.write_html(out, include_plotlyjs=True, full_html=True)
    else:
        _matplotlib_map(network, out, title=title, flows=flows)
    return out


def _default_title(network: Network) -> str:
    scenario = f", scenario {network.applied_scenario}" if network.applied_scenario else ""
    return (
        f"{network.name}{scenario}: {len(network.sites)} sites, "
        f"{len(network.treatment_centers)} treatment centers"
    )


MAP_BOUNDS = (-180.0, -60.0, 180.0, 85.0)
"""Longitude and latitude shown: the inhabited world."""


def site_labels(
    network: Network, per_degree: float, char_width: float, line_height: float, radius: float
) -> list[tuple[Site, str, Label]]:
    """Each site with its label text and a place for it (units of ``per_degree``)."""
    sites = list(network.sites)
    points = [(s.lon * per_degree, s.lat * per_degree, f"{s.city} ({s.lines})") for s in sites]
    x0, y0, x1, y1 = (v * per_degree for v in MAP_BOUNDS)
    labels = place_labels(
        points,
        char_width=char_width,
        line_height=line_height,
        marker_radius=radius,
        bounds=Box(x0, y0, x1, y1),
    )
    return [(s, text, label) for s, (_, _, text), label in zip(sites, points, labels, strict=True)]


def _matplotlib_map(network: Network, out: Path, *, title: str, flows: Sequence[Flow]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    fig, ax = plt.subplots(figsize=(14, 7.2), dpi=110)
    ax.set_facecolor(SEA)
    ax.add_collection(
        PolyCollection(country_rings(), facecolors=LAND, edgecolors=COAST, linewidths=0.4)
    )
    top = max((f.weight for f in flows), default=1.0) or 1.0
    for f in flows:
        ax.plot(
            [f.lon1, f.lon2],
            [f.lat1, f.lat2],
            color="#34495e",
            alpha=0.35,
            linewidth=0.4 + 3.5 * f.weight / top,
            zorder=2,
        )
    colors = _market_colors(network)
    for market in network.markets:
        centers = network.centers_in(market.id)
        if centers:
            ax.scatter(
                [c.lon for c in centers],
                [c.lat for c in centers],
                s=[8 + 2 * sum(d.patients_per_year for d in c.demand) ** 0.8 for c in centers],
                color=colors[market.id],
                alpha=0.75,
                edgecolors="white",
                linewidths=0.4,
                label=f"centers {market.id} ({market.regulator.value})",
                zorder=3,
            )
    for kind, color in SITE_COLORS.items():
        sites = [s for s in network.sites if s.operator.kind is kind]
        if sites:
            ax.scatter(
                [s.lon for s in sites],
                [s.lat for s in sites],
                s=[60 + 14 * s.lines for s in sites],
                marker="*",
                color=color,
                edgecolors="black",
                linewidths=0.6,
                label=f"sites ({kind.value})",
                zorder=4,
            )
    ax.set_xlim(MAP_BOUNDS[0], MAP_BOUNDS[2])
    ax.set_ylim(MAP_BOUNDS[1], MAP_BOUNDS[3])
    ax.set_aspect("equal")
    fig.tight_layout()
    ax.apply_aspect()
    per_degree = ax.get_window_extent().width * 72 / fig.dpi / (MAP_BOUNDS[2] - MAP_BOUNDS[0])
    for s, text, label in site_labels(network, per_degree, 4.9, 12.0, 7.0):
        ax.annotate(
            text,
            (s.lon, s.lat),
            xytext=(label.dx, label.dy),
            textcoords="offset points",
            ha=label.align,
            va="center",
            fontsize=8,
            zorder=5,
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.75},
            arrowprops={"arrowstyle": "-", "color": "#555", "lw": 0.5} if label.leader else None,
        )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize=7, ncol=2, framealpha=0.9)
    ax.text(179, -59, ATTRIBUTION, ha="right", va="bottom", fontsize=6, color="#666")
    fig.savefig(out)
    plt.close(fig)


def plotly_network_map(network: Network, *, title: str, flows: Sequence[Flow] = ()):  # type: ignore[no-untyped-def]
    """An interactive map as a plotly figure (lon/lat plane, no geo tiles needed)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    xs: list[float | None] = []
    ys: list[float | None] = []
    for ring in country_rings():
        xs.extend(p[0] for p in ring)
        ys.extend(p[1] for p in ring)
        xs.append(None)
        ys.append(None)
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            fill="toself",
            fillcolor=LAND,
            line={"color": COAST, "width": 0.5},
            hoverinfo="skip",
            showlegend=False,
        )
    )
    top = max((f.weight for f in flows), default=1.0) or 1.0
    for f in flows:
        fig.add_trace(
            go.Scatter(
                x=[f.lon1, f.lon2],
                y=[f.lat1, f.lat2],
                mode="lines",
                line={"color": "rgba(52,73,94,0.4)", "width": 0.5 + 5 * f.weight / top},
                hovertext=f.label,
                hoverinfo="text",
                showlegend=False,
            )
        )
    colors = _market_colors(network)
    for market in network.markets:
        centers = network.centers_in(market.id)
        if not centers:
            continue
        fig.add_trace(
            go.Scatter(
                x=[c.lon for c in centers],
                y=[c.lat for c in centers],
                mode="markers",
                marker={
                    "size": [
                        4 + sum(d.patients_per_year for d in c.demand) ** 0.5 for c in centers
                    ],
                    "color": colors[market.id],
                    "line": {"color": "white", "width": 0.5},
                },
                name=f"centers {market.id} ({market.regulator.value})",
                hovertext=[
                    f"{c.name}, {c.city}<br>{sum(d.patients_per_year for d in c.demand):.0f} "
                    "patients/year"
                    for c in centers
                ],
                hoverinfo="text",
            )
        )
    for kind, color in SITE_COLORS.items():
        sites = [s for s in network.sites if s.operator.kind is kind]
        if sites:
            fig.add_trace(
                go.Scatter(
                    x=[s.lon for s in sites],
                    y=[s.lat for s in sites],
                    mode="markers",
                    marker={"symbol": "star", "size": 16, "color": color},
                    name=f"sites ({kind.value})",
                    hovertext=[
                        f"{s.name} ({s.operator.name}, {kind.value})<br>{s.lines} lines"
                        for s in sites
                    ],
                    hoverinfo="text",
                )
            )
    fig.update_layout(
        title=title,
        plot_bgcolor=SEA,
        height=620,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        xaxis={"range": [-180, 180], "visible": False},
        yaxis={"range": [-60, 85], "visible": False, "scaleanchor": "x"},
        annotations=[
            *_plotly_site_labels(network),
            {
                "text": ATTRIBUTION,
                "xref": "paper",
                "yref": "paper",
                "x": 1,
                "y": 0,
                "showarrow": False,
                "font": {"size": 9, "color": "#666"},
            },
        ],
    )
    return fig


def _plotly_site_labels(network: Network) -> list[dict[str, object]]:
    """Site labels as annotations, placed for a plot about 940 px wide (2.6 px a degree)."""
    annotations: list[dict[str, object]] = []
    for s, text, label in site_labels(network, 2.6, 6.4, 16.0, 8.0):
        common = {
            "x": s.lon,
            "y": s.lat,
            "xref": "x",
            "yref": "y",
            "text": text,
            "xanchor": label.align,
            "yanchor": "middle",
            "font": {"size": 11},
            "bgcolor": "rgba(255,255,255,0.75)",
        }
        if label.leader:
            common.update(
                showarrow=True, arrowhead=0, arrowwidth=0.8, arrowcolor="#555",
                ax=label.dx, ay=-label.dy,
            )  # fmt: skip
        else:
            common.update(showarrow=False, xshift=label.dx, yshift=label.dy)
        annotations.append(common)
    return annotations
