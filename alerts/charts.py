"""Pictures of a rebalance proposal, for the weekly report and the review page.

A sales manager decides faster from a map and a bar chart than from a list of moves, so
these pure functions turn plain data (accounts, reps, the proposal's JSON form) into PNG
bytes. No Kafka, no database, no network: there is no tile server, so the map is the
accounts drawn on longitude/latitude axes with the aspect set to 1 / cos(mean latitude),
which keeps distances about right at the latitudes of one country.

- :func:`territory_map_png` -- accounts coloured by rep, rep home bases labelled; with a
  proposal, "Before" and "After" side by side with the moved accounts ringed and tied to
  their new rep's home.
- :func:`share_chart_png` -- each rep's share of potential before and after, against
  their fair share and its tolerance band.
- :func:`moves_curve_png` -- the trade-off: best imbalance reachable with at most M moves.
- :func:`travel_curve_png` -- its other end: least travel with every rep in band and at
  most M moves.
- :func:`apply_moves` and :func:`rep_colors` -- the helpers behind them, public so a
  report can describe the same assignment and use the same colours in its tables.

Figures are built as ``matplotlib.figure.Figure`` with an Agg canvas, never through
pyplot: no global figure registry, no backend switching, safe to call from worker
threads, and nothing to close afterwards.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypedDict

from matplotlib import colormaps
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Text
from matplotlib.ticker import MaxNLocator, PercentFormatter

from core.formatting import percent, share_percent, signed_percent

__all__ = [
    "MapAccount",
    "MapRep",
    "apply_moves",
    "rep_colors",
    "territory_map_png",
    "share_chart_png",
    "moves_curve_png",
    "travel_curve_png",
]

DPI = 110
NO_REP_COLOR = "#9e9e9e"  # accounts without a (known) rep: neutral grey, never a rep's colour
MOVE_LINE_COLOR = "#555555"
BEFORE_COLOR = "#c4c4c4"
AFTER_COLOR = "#2b6cb0"
OUT_OF_BAND_COLOR = "#c0392b"
BAND_COLOR = "#2e8b57"


class _Literal(TypedDict):
    parse_math: bool
    usetex: bool


# Every text is drawn as written: ids come from the CRM, and with mathtext on, a rep id
# such as "$x^$" raises while drawing and "$\alpha$" turns into a Greek letter.
LITERAL: _Literal = {"parse_math": False, "usetex": False}


@dataclass(frozen=True)
class MapAccount:
    """One dot on the map."""

    account_id: str
    lat: float
    lon: float
    rep_id: str | None
    potential: float = 0.0


@dataclass(frozen=True)
class MapRep:
    """A rep's home base: a labelled marker on the map."""

    rep_id: str
    home_lat: float
    home_lon: float


# --------------------------------------------------------------------------- helpers


def apply_moves(accounts: Iterable[MapAccount], moves: Iterable[Mapping[str, Any]]) -> list[MapAccount]:
    """The accounts with each move's ``to_rep`` as their rep, in the same order.

    Moves naming an account that is not in ``accounts`` are ignored: a map may show only
    part of the company (one region), and the proposal still covers all of it.

    >>> a = [MapAccount("a1", 50.0, 8.0, "R1"), MapAccount("a2", 51.0, 9.0, "R1")]
    >>> [x.rep_id for x in apply_moves(a, [{"account_id": "a2", "from_rep": "R1", "to_rep": "R2"}])]
    ['R1', 'R2']
    """
    new_rep = {str(m["account_id"]): m["to_rep"] for m in moves}
    return [replace(a, rep_id=new_rep[a.account_id]) if a.account_id in new_rep else a for a in accounts]


def rep_colors(rep_ids: Iterable[str | None]) -> dict[str, tuple[float, float, float, float]]:
    """A colour per rep id, assigned by sorted id so the same company gets the same
    colours in every chart and every week.

    tab10 up to 9 reps, tab20 up to 18, both without their greys: grey is kept for
    accounts without a rep and for the move lines. Beyond 18 reps the colours repeat
    and the labelled home bases are what tells reps apart.
    """
    ids = sorted({r for r in rep_ids if r is not None})
    palette = _TAB10_NO_GREY if len(ids) <= len(_TAB10_NO_GREY) else _TAB20_NO_GREY
    return {rep_id: palette[i % len(palette)] for i, rep_id in enumerate(ids)}


def _listed_colors(name: str) -> Sequence[Any]:
    """The colours of a qualitative colormap, e.g. tab10 (the registry types it as any Colormap)."""
    cmap = colormaps[name]
    assert isinstance(cmap, ListedColormap) and isinstance(cmap.colors, (list, tuple)), name
    return cmap.colors


_TAB10_NO_GREY = [c for i, c in enumerate(_listed_colors("tab10")) if i != 7]
_TAB20_NO_GREY = [c for i, c in enumerate(_listed_colors("tab20")) if i not in (14, 15)]


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)  # attaches itself to the figure; no pyplot involved
    # Legend entries and tick labels take no text properties when made: make them literal here.
    for text in fig.findobj(Text):
        text.set_parse_math(False)
        text.set_usetex(False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _finite(*values: object) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


# --------------------------------------------------------------------------- map


def territory_map_png(
    accounts: Sequence[MapAccount],
    reps: Sequence[MapRep],
    proposal: Mapping[str, Any] | None = None,
    *,
    title: str | None = None,
) -> bytes:
    """A PNG map of the territories: "Before" and "After" side by side when a proposal
    is given, one "Territories" panel otherwise.

    Each account is a dot in its rep's colour, sized by the square root of its
    potential (so a few large customers do not hide the rest); home bases are large
    labelled markers. Moved accounts carry a black ring on both panels (in the old
    rep's colour on "Before", the new rep's on "After"), and on "After" a thin line to
    their new rep's home. Rep colours are :func:`rep_colors` of every rep id shown.
    """
    accounts = [a for a in accounts if _finite(a.lat, a.lon)]
    reps = [r for r in reps if _finite(r.home_lat, r.home_lon)]
    moves = list(proposal.get("moves") or []) if proposal is not None else []
    after = apply_moves(accounts, moves)
    colors = rep_colors([r.rep_id for r in reps] + [a.rep_id for a in accounts] + [a.rep_id for a in after])
    xlim, ylim, aspect = _map_extent(accounts, reps)

    panels: list[tuple[str, list[MapAccount]]]
    if proposal is None:
        panels = [("Territories", accounts)]
    else:
        moved_ids = {str(m["account_id"]) for m in moves}
        n_moved = sum(a.account_id in moved_ids for a in accounts)
        before_label = "Before"
        if "imbalance_before" in proposal:
            before_label += f" (imbalance {percent(proposal['imbalance_before'])})"
        after_label = f"After: {n_moved} move{'s' if n_moved != 1 else ''}"
        if proposal.get("status") in ("infeasible", "unknown"):
            # The After panel then equals Before; say why rather than show "0 moves".
            after_label = f"After: no balanced assignment found ({proposal['status']})"
        elif "imbalance_after" in proposal:
            after_label += f", imbalance {percent(proposal['imbalance_after'])}"
        panels = [(before_label, accounts), (after_label, after)]

    # Size the figure from the data's shape so the aspect-locked panels fill it instead
    # of floating in white space: about 5.4 in of panel width each, height to match.
    panel_w = 5.4 if len(panels) == 2 else 7.0
    data_ratio = (ylim[1] - ylim[0]) * aspect / max(xlim[1] - xlim[0], 1e-9)
    panel_h = min(max(panel_w * data_ratio, 3.0), 7.5)
    if data_ratio > 0 and panel_h < panel_w * data_ratio:
        panel_w = max(panel_h / data_ratio, 3.0)  # tall country: narrow the panel instead
    legend_rows = math.ceil((len(colors) + 2) / _legend_columns(len(colors) + 2, len(panels)))
    fig = Figure(figsize=(panel_w * len(panels) + 1.2, panel_h + 1.1 + 0.22 * legend_rows), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]

    # Display points per degree on the planned panel, for placing the home labels.
    pts_x = panel_w * 72 / max(xlim[1] - xlim[0], 1e-9)
    pts_per_deg = (pts_x, pts_x * aspect)

    potentials = [max(a.potential, 0.0) for a in accounts if _finite(a.potential)]
    p_max = max(potentials, default=0.0)
    homes = {r.rep_id: r for r in reps}

    located = [(a.lat, a.lon) for a in accounts] + [(r.home_lat, r.home_lon) for r in reps]
    borders = _borders(located)
    for ax, (label, shown) in zip(axes, panels):
        # Moves are drawn on both panels: ringed on "Before" to show who gives accounts
        # away, ringed and tied to the new home on "After" to show who receives them.
        is_after = proposal is not None and shown is after
        _draw_borders(ax, borders)
        _draw_areas(ax, shown, colors)
        _draw_territories(
            ax, shown, reps, colors, p_max, moved=moves, homes=homes, is_after=is_after, pts_per_deg=pts_per_deg
        )
        for shock in (proposal or {}).get("shocks") or []:
            _draw_shock(ax, shock)
        ax.set_title(label, fontsize=12, **LITERAL)
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_aspect(aspect, adjustable="box")
        if borders:  # a map: water, land, borders; degrees would only clutter it
            ax.set_facecolor(WATER_COLOR)
            ax.set_xticks([])
            ax.set_yticks([])
        else:  # no borders known here: keep the degrees as the only frame of reference
            ax.set_xlabel("longitude")
            ax.set_ylabel("latitude")
            ax.tick_params(labelsize=8)
            ax.grid(True, color="#e6e6e6", linewidth=0.6)
            ax.set_axisbelow(True)

    if borders:
        fig.text(0.995, 0.005, "Boundaries: Natural Earth, US Census Bureau", ha="right", va="bottom", fontsize=6,
                 color="#7b8794")  # fmt: skip
    if title is None and proposal is not None:
        title = f"Proposal {proposal.get('proposal_id', '')}".strip()
    if title:
        fig.suptitle(title, fontsize=13, fontweight="bold", **LITERAL)

    fig.legend(
        handles=_map_legend_handles(colors, with_moves=proposal is not None),
        loc="outside lower center",
        ncols=_legend_columns(len(colors) + 2, len(panels)),
        fontsize=9,
        frameon=False,
        handletextpad=0.3,
        columnspacing=1.2,
    )
    return _png(fig)


#: The map's background outside every country, and each border level's line.
WATER_COLOR = "#dbe9f6"
_BORDER_STYLE: dict[str, dict[str, Any]] = {
    "country": {"color": "#52606d", "linewidth": 0.9},
    "admin1": {"color": "#7b8794", "linewidth": 0.6},
    "admin2": {"color": "#bcccdc", "linewidth": 0.3},
}


def _borders(located: Sequence[tuple[float, float]]) -> list[tuple[str, Any]]:
    """(level, shapely geometry) of the boundaries around the points; none if unavailable."""
    from alerts.boundaries import boundaries_near  # shapely and the boundary data: only for maps
    from shapely.geometry import shape

    points = [(lat, lon) for lat, lon in located if _finite(lat, lon)]
    try:
        features = boundaries_near(points)["features"]
    except (OSError, ValueError, KeyError):  # a damaged or missing data file: the map without borders
        return []
    return [(str(f["properties"].get("level")), shape(f["geometry"])) for f in features]


def _polygons(geometry: Any) -> list[Any]:
    return list(getattr(geometry, "geoms", [geometry]))


def _draw_borders(ax: Axes, borders: Sequence[tuple[str, Any]]) -> None:
    """Countries as land on water, then admin1 and admin2 lines, under everything else."""
    for level, geometry in borders:
        style = _BORDER_STYLE.get(level, _BORDER_STYLE["admin1"])
        for polygon in _polygons(geometry):
            x, y = polygon.exterior.xy
            if level == "country":
                ax.fill(x, y, color="#f5f7fa", zorder=0)
            ax.plot(x, y, zorder=0.5, **style)


def _draw_areas(ax: Axes, shown: Sequence[MapAccount], colors: Mapping[str, Any]) -> None:
    """Each territory's area (alerts.boundaries.territory_areas) in its rep's colour."""
    from alerts.boundaries import territory_areas

    areas = territory_areas((a.rep_id, a.lat, a.lon) for a in shown if a.rep_id is not None)
    for rep_id, area in areas.items():
        for polygon in _polygons(area):
            x, y = polygon.exterior.xy
            color = colors.get(rep_id, NO_REP_COLOR)
            ax.fill(x, y, color=color, alpha=0.13, zorder=0.8, linewidth=0)
            ax.plot(x, y, color=color, linewidth=0.8, alpha=0.8, zorder=0.9)


def _draw_shock(ax: Axes, shock: Mapping[str, Any]) -> None:
    """The area a shock hit: a dashed circle holding its accounts, labelled with its size."""
    try:
        lat, lon = (float(v) for v in shock["centre"])
        radius_km = max(float(shock.get("radius_km") or 0.0), 5.0)
    except (KeyError, TypeError, ValueError):
        return
    if not _finite(lat, lon, radius_km):
        return
    height = 2 * radius_km / 111.2
    width = height / max(math.cos(math.radians(lat)), 0.05)
    color = "#b2182b" if shock.get("direction") == "drop" else "#2166ac"
    ax.add_patch(Ellipse((lon, lat), width, height, fill=False, linestyle="--", linewidth=1.6, edgecolor=color))
    size = shock.get("size")
    label = f"{str(shock.get('kind', 'shock')).replace('_', ' ')} {percent(size)}" if _finite(size) else "shock"
    ax.annotate(label, (lon, lat + height / 2), ha="center", va="bottom", fontsize=8, color=color, **LITERAL)


def _map_extent(
    accounts: Sequence[MapAccount], reps: Sequence[MapRep]
) -> tuple[tuple[float, float], tuple[float, float], float]:
    """x and y limits with a margin, and the y/x aspect 1 / cos(mean latitude)."""
    lons = [a.lon for a in accounts] + [r.home_lon for r in reps]
    lats = [a.lat for a in accounts] + [r.home_lat for r in reps]
    if not lons:
        return (-1.0, 1.0), (-1.0, 1.0), 1.0
    x0, x1, y0, y1 = min(lons), max(lons), min(lats), max(lats)
    # A margin so edge dots and home labels are not clipped; at least 0.2 degrees so a
    # single city still shows as an area, not a point.
    mx = max((x1 - x0) * 0.06, 0.2)
    my = max((y1 - y0) * 0.06, 0.2)
    mean_lat = (y0 + y1) / 2
    # Near the poles cos -> 0; cap the stretch so the picture stays a picture.
    aspect = 1.0 / max(math.cos(math.radians(mean_lat)), 0.2)
    return (x0 - mx, x1 + mx), (y0 - my, y1 + my), aspect


def _legend_columns(entries: int, panels: int) -> int:
    return max(1, min(entries, 6 * panels))


def _dot_sizes(accounts: Sequence[MapAccount], p_max: float) -> list[float]:
    # Area in points^2; sqrt keeps a 100x bigger customer only 10x bigger on screen.
    # Fewer accounts get bigger dots: 60 dots may be large, 5000 must not merge into
    # one blot.
    scale = min(max(math.sqrt(600 / max(len(accounts), 1)), 0.35), 2.0)
    if p_max <= 0:
        return [14.0 * scale] * len(accounts)
    return [
        scale * (6.0 + 60.0 * math.sqrt(max(a.potential, 0.0) / p_max)) if _finite(a.potential) else 6.0 * scale
        for a in accounts
    ]


def _draw_territories(
    ax: Axes,
    shown: Sequence[MapAccount],
    reps: Sequence[MapRep],
    colors: Mapping[str, Any],
    p_max: float,
    *,
    moved: Sequence[Mapping[str, Any]],
    homes: Mapping[str, MapRep],
    is_after: bool,
    pts_per_deg: tuple[float, float],
) -> None:
    moved_ids = {str(m["account_id"]) for m in moved}
    face = [colors.get(a.rep_id, NO_REP_COLOR) if a.rep_id is not None else NO_REP_COLOR for a in shown]
    sizes = _dot_sizes(shown, p_max)

    # Lines first (lowest), so dots and home markers sit on top of them.
    for a in shown:
        home = homes.get(a.rep_id) if is_after and a.account_id in moved_ids and a.rep_id is not None else None
        if home is not None:
            ax.plot(
                [a.lon, home.home_lon],
                [a.lat, home.home_lat],
                color=MOVE_LINE_COLOR,
                linewidth=0.8,
                alpha=0.7,
                zorder=1,
            )

    still = [i for i, a in enumerate(shown) if a.account_id not in moved_ids]
    ax.scatter(
        [shown[i].lon for i in still],
        [shown[i].lat for i in still],
        s=[sizes[i] for i in still],
        c=[face[i] for i in still] or None,
        alpha=0.75,
        linewidths=0,
        zorder=2,
    )
    ringed = [i for i, a in enumerate(shown) if a.account_id in moved_ids]
    if ringed:
        # Moved dots a bit larger and opaque with a black ring: the eye finds them first.
        ax.scatter(
            [shown[i].lon for i in ringed],
            [shown[i].lat for i in ringed],
            s=[sizes[i] * 1.6 + 12 for i in ringed],
            c=[face[i] for i in ringed],
            edgecolors="black",
            linewidths=1.2 if is_after else 0.8,
            zorder=3,
        )

    for rep in reps:
        ax.scatter(
            [rep.home_lon],
            [rep.home_lat],
            s=190,
            marker="*",
            c=[colors.get(rep.rep_id, NO_REP_COLOR)],
            edgecolors="black",
            linewidths=0.9,
            zorder=4,
        )
    for rep, (dx, dy, ha, va) in zip(reps, _label_offsets(reps, pts_per_deg)):
        ax.annotate(
            rep.rep_id,
            (rep.home_lon, rep.home_lat),
            xytext=(dx, dy),
            textcoords="offset points",
            ha=ha,
            va=va,
            fontsize=_LABEL_FONT,
            fontweight="bold",
            zorder=5,
            # A white halo keeps the label readable over a cloud of dots.
            path_effects=[patheffects.withStroke(linewidth=3, foreground="white")],
            **LITERAL,
        )


_LABEL_FONT = 9.0
# Candidate label positions around a home star, in points: (dx, dy, ha, va). Right
# first (how maps are usually labelled), then the other sides, then further out.
_LABEL_SLOTS = [
    (8.0, 0.0, "left", "center"),
    (-8.0, 0.0, "right", "center"),
    (0.0, 8.0, "center", "bottom"),
    (0.0, -8.0, "center", "top"),
    (6.0, 6.0, "left", "bottom"),
    (6.0, -6.0, "left", "top"),
    (-6.0, 6.0, "right", "bottom"),
    (-6.0, -6.0, "right", "top"),
    (0.0, 18.0, "center", "bottom"),
    (0.0, -18.0, "center", "top"),
    (18.0, 0.0, "left", "center"),
    (-18.0, 0.0, "right", "center"),
]


def _label_offsets(reps: Sequence[MapRep], pts_per_deg: tuple[float, float]) -> list[tuple[float, float, str, str]]:
    """Where to put each home's label so that labels of nearby reps do not print over
    each other or over a star: greedy, each label takes the first free slot around its
    star (or the least crowded one). Sizes are estimated in points from the planned
    panel size, not measured, which is close enough for bold 9 pt ids."""
    kx, ky = pts_per_deg
    centres = [(r.home_lon * kx, r.home_lat * ky) for r in reps]
    star = 7.0  # half the star's size in points
    taken: list[tuple[float, float, float, float]] = [(x - star, y - star, x + star, y + star) for x, y in centres]
    out = []
    for i, r in enumerate(reps):
        w, h = 0.68 * _LABEL_FONT * len(r.rep_id) + 2, 1.25 * _LABEL_FONT
        x, y = centres[i]
        best, best_cost, best_box = _LABEL_SLOTS[0], math.inf, (x, y, x, y)
        for slot in _LABEL_SLOTS:
            dx, dy, ha, va = slot
            x0 = x + dx - (w if ha == "right" else w / 2 if ha == "center" else 0)
            y0 = y + dy - (h if va == "top" else h / 2 if va == "center" else 0)
            box = (x0, y0, x0 + w, y0 + h)
            cost = sum(_overlap(box, t) for j, t in enumerate(taken) if j != i)
            if cost < best_cost:
                best, best_cost, best_box = slot, cost, box
            if cost == 0:
                break
        taken.append(best_box)
        out.append(best)
    return out


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def _map_legend_handles(colors: Mapping[str, Any], *, with_moves: bool) -> list[Any]:
    handles: list[Any] = [
        Line2D([], [], marker="o", linestyle="", markersize=7, markerfacecolor=c, markeredgewidth=0, label=rep_id)
        for rep_id, c in colors.items()
    ]
    handles.append(
        Line2D(
            [],
            [],
            marker="*",
            linestyle="",
            markersize=12,
            markerfacecolor="white",
            markeredgecolor="black",
            label="home base",
        )
    )
    if with_moves:
        handles.append(
            Line2D(
                [],
                [],
                marker="o",
                linestyle="-",
                color=MOVE_LINE_COLOR,
                linewidth=0.8,
                markersize=7,
                markerfacecolor="white",
                markeredgecolor="black",
                markeredgewidth=1.2,
                label="moved (line to new rep)",
            )
        )
    return handles


# --------------------------------------------------------------------------- shares


def share_chart_png(proposal: Mapping[str, Any]) -> bytes:
    """A PNG bar chart: each rep's share of potential before (grey) and after (blue),
    their fair share (black tick) and the band fair × (1 ± tolerance) shaded green.
    A bar outside its band is outlined red and its deviation printed in red."""
    before = {b["rep_id"]: b for b in proposal.get("before") or []}
    after = {b["rep_id"]: b for b in proposal.get("after") or []}
    rep_ids = list(before) + [r for r in after if r not in before]  # the rebalancer's order
    tolerance = float(proposal.get("tolerance") or 0.0)
    n = len(rep_ids)

    # Rows get thinner for big teams so 50 reps still fit on a report page.
    row_h = 0.55 if n <= 12 else max(0.3, 0.55 * 12 / n)
    fig = Figure(figsize=(9.0, 1.6 + row_h * max(n, 1)), layout="constrained")
    ax = fig.add_subplot()
    bar_h = 0.36
    x_max = 0.0
    for i, rep_id in enumerate(rep_ids):
        ref = before.get(rep_id) or after[rep_id]
        fair = float(ref["fair_share"])
        lo, hi = fair * (1 - tolerance), fair * (1 + tolerance)
        ax.fill_betweenx([i - 0.46, i + 0.46], lo, hi, color=BAND_COLOR, alpha=0.16, linewidth=0, zorder=0)
        ax.plot([fair, fair], [i - 0.46, i + 0.46], color="black", linewidth=1.6, zorder=3)
        x_max = max(x_max, hi)
        rows = ((before.get(rep_id), -bar_h / 2, BEFORE_COLOR), (after.get(rep_id), bar_h / 2, AFTER_COLOR))
        for row, offset, color in rows:
            if row is None:
                continue
            share = float(row["share"])
            x_max = max(x_max, share)
            # The solver checks bands on integer-scaled potentials (error ~1e-9 of the
            # total); a hair's breadth must not paint an in-band rep red.
            outside = not (lo - 1e-6 <= share <= hi + 1e-6)
            ax.barh(
                i + offset,
                share,
                height=bar_h,
                color=color,
                zorder=2,
                edgecolor=OUT_OF_BAND_COLOR if outside else "none",
                linewidth=1.4 if outside else 0,
            )
            # The deviation next to the bar: the number a manager would quote.
            ax.annotate(
                f"{share_percent(share)}  ({signed_percent(row['deviation'])})",
                (share, i + offset),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
                color=OUT_OF_BAND_COLOR if outside else "#333333",
                zorder=4,
                path_effects=[patheffects.withStroke(linewidth=2.5, foreground="white")],
            )

    ax.set_yticks(range(n), [str(r) for r in rep_ids], fontsize=10, **LITERAL)
    ax.set_ylim(max(n, 1) - 0.5, -0.5)  # first rep on top, as in the proposal
    ax.set_xlim(0, x_max * 1.3 if x_max > 0 else 1.0)  # room for the value labels
    # Whole percent, except for big teams whose shares are all a few percent.
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=1 if x_max < 0.1 else 0))
    ax.set_xlabel("share of total potential   (in brackets: deviation from fair share)")
    ax.grid(True, axis="x", color="#e6e6e6", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)

    moves = len(proposal.get("moves") or [])
    before_pct, after_pct = (
        percent(proposal.get("imbalance_before", 0.0)),
        percent(proposal.get("imbalance_after", 0.0)),
    )
    head = f"imbalance {before_pct} -> {after_pct}, {moves} move{'s' if moves != 1 else ''}"
    status = proposal.get("status")
    if status in ("infeasible", "unknown"):
        head += f" (no balanced assignment found: {status})"
    pid = proposal.get("proposal_id")
    ax.set_title(f"{pid}: {head}" if pid else head, fontsize=12, loc="left", **LITERAL)

    fig.legend(
        handles=[
            Patch(color=BEFORE_COLOR, label="before"),
            Patch(color=AFTER_COLOR, label="after"),
            Line2D([], [], color="black", linewidth=1.6, label="fair share"),
            Patch(color=BAND_COLOR, alpha=0.25, label=f"band ±{percent(tolerance)}"),
            Patch(facecolor="white", edgecolor=OUT_OF_BAND_COLOR, linewidth=1.4, label="outside band"),
        ],
        loc="outside lower center",
        ncols=5,
        fontsize=9,
        frameon=False,
    )
    return _png(fig)


# --------------------------------------------------------------------------- curve


def moves_curve_png(
    curve: Sequence[Mapping[str, Any]], *, tolerance: float | None = None, title: str | None = None
) -> bytes:
    """A PNG step chart of the trade-off "best imbalance reachable with at most M
    moves", from points ``{"moves": int, "imbalance": float}`` (any order).

    Steps are drawn post-wise: between two computed points the best known imbalance
    is the one at the smaller move count, because more moves can only help. With
    ``tolerance`` the target is drawn as a dashed line.
    """
    points = sorted((int(p["moves"]), float(p["imbalance"])) for p in curve)
    fig = Figure(figsize=(8.0, 4.2), layout="constrained")
    ax = fig.add_subplot()
    if points:
        _step_curve(ax, points, [percent(v) for _, v in points])
        ys = [v for _, v in points]
        y_top = max(ys + [tolerance or 0.0])
        ax.set_ylim(0, y_top * 1.15 if y_top > 0 else 0.1)
    if tolerance is not None:
        ax.axhline(tolerance, color=BAND_COLOR, linestyle="--", linewidth=1.2, zorder=1)
        ax.annotate(
            f"target ±{percent(tolerance)}",
            (1.0, tolerance),
            xycoords=("axes fraction", "data"),
            xytext=(-4, 4),
            textcoords="offset points",
            ha="right",
            fontsize=8,
            color=BAND_COLOR,
        )
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    _finish_curve(
        ax, "imbalance (largest deviation from fair share)", title or "Best imbalance reachable with at most M moves"
    )
    return _png(fig)


def travel_curve_png(curve: Sequence[Mapping[str, Any]], *, title: str | None = None) -> bytes:
    """A PNG step chart of "least total travel with every rep in band and at most M moves",
    from points ``{"moves": int, "travel_km": float}`` (any order; ``trade_off_curve(...,
    kind="travel")`` as dicts), each labelled with the km it saves over the previous point.

    Steps are drawn post-wise, as in :func:`moves_curve_png`: a larger budget can always
    keep a smaller one's answer, so travel never rises to the right.
    """
    points = sorted((int(p["moves"]), float(p["travel_km"])) for p in curve)
    fig = Figure(figsize=(8.0, 4.2), layout="constrained")
    ax = fig.add_subplot()
    if points:
        # The first point says its travel, the others what they save: the number a manager
        # weighs against the extra moves.
        labels = [f"{v:,.0f} km" if k == 0 else f"-{points[k - 1][1] - v:,.0f} km" for k, (_, v) in enumerate(points)]
        _step_curve(ax, points, labels)
        ys = [v for _, v in points]
        low, high = min(ys), max(ys)
        pad = (high - low) * 0.15 if high > low else max(high * 0.05, 1.0)
        ax.set_ylim(max(0.0, low - pad), high + pad)
    _finish_curve(
        ax,
        "total travel, km x travel factor (straight line)",
        title or "Least travel with every rep in band, at most M moves",
    )
    return _png(fig)


def _step_curve(ax: Axes, points: Sequence[tuple[int, float]], labels: Sequence[str]) -> None:
    """Points (moves, value) as a post-wise step line with dots; every point labelled when
    there are few, else only the first and last (labels of dense curves overprint)."""
    xs = [m for m, _ in points]
    ys = [v for _, v in points]
    ax.step(xs, ys, where="post", color=AFTER_COLOR, linewidth=2, zorder=2)
    ax.scatter(xs, ys, color=AFTER_COLOR, s=28, zorder=3)
    shown = range(len(points)) if len(points) <= 12 else (0, len(points) - 1)
    for k in shown:
        ax.annotate(
            labels[k],
            points[k],
            xytext=(3, 5),
            textcoords="offset points",
            fontsize=8,
            color="#333333",
            path_effects=[patheffects.withStroke(linewidth=2.5, foreground="white")],
        )
    ax.set_xlim(min(xs) - 0.5, max(xs) + max(1.0, (max(xs) - min(xs)) * 0.05))


def _finish_curve(ax: Axes, ylabel: str, title: str) -> None:
    """Whole-move ticks, labels, a light grid and the title of a curve against moves."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("at most M account moves")
    ax.set_ylabel(ylabel)
    ax.grid(True, color="#e6e6e6", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_title(title, fontsize=12, loc="left", **LITERAL)
