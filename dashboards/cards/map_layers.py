"""Map layers over the ward choropleth: entity markers coloured by category, row points, density.

Pure functions from DataFrames to plotly traces, as plain dicts (a refresh patches them into the
browser's figure; building ``graph_objects`` would validate thousands of points on every tick).
Colours come from functions registered in ``COLOURS`` by key (a page spec names the key), so a
new classification is one entry, without touching the map card. Air stations use the Vietnamese
AQI of Decision 1459/QĐ-TCMT as ``data_sources.aqi`` computes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_sources import aqi
from layouts.i18n import format_number, t

NO_DATA_COLOUR = "#8c959f"


@dataclass(frozen=True)
class Category:
    """One class of a colour scale: catalogue key suffix and colour."""

    key: str
    colour: str


ColourFunction = Callable[[pd.DataFrame], list[Category | None]]
"""Rows (with ``value`` and the entity's attributes) -> the category of each row (None: no data); the rows
are shared by every request of a snapshot version: read them, never modify them."""


def _banded(values: pd.Series, bounds: list[float], categories: list[Category]) -> list[Category | None]:
    """Category by the first upper bound a value stays under; the last category above all bounds."""
    out: list[Category | None] = []
    for value in values:
        if value is None or pd.isna(value):
            out.append(None)
            continue
        index = int(np.searchsorted(bounds, float(value), side="right"))
        out.append(categories[min(index, len(categories) - 1)])
    return out


CONGESTION = [
    Category("congestion.free", "#2da44e"),
    Category("congestion.busy", "#d4a72c"),
    Category("congestion.slow", "#e36209"),
    Category("congestion.jammed", "#cf222e"),
]
CONGESTION_BOUNDS = [1.25, 1.67, 2.5]
"""Congestion index = free-flow speed / current speed: under 1.25 flows freely, 2.5 and more is jammed."""


def congestion_colours(rows: pd.DataFrame) -> list[Category | None]:
    """Road segments by congestion index."""
    return _banded(rows["value"], CONGESTION_BOUNDS, CONGESTION)


OCCUPANCY = [
    Category("occupancy.normal", "#2da44e"),
    Category("occupancy.high", "#d4a72c"),
    Category("occupancy.over90", "#cf222e"),
]


def occupancy_colours(rows: pd.DataFrame) -> list[Category | None]:
    """Facilities by bed occupancy (%): under 75, 75 to 90, above 90."""
    return _banded(rows["value"], [75.0, 90.0 + 1e-9], OCCUPANCY)


def aqi_colours(rows: pd.DataFrame) -> list[Category | None]:
    """Stations by the band of their VN_AQI now (Decision 1459/QĐ-TCMT: ``data_sources.aqi``)."""
    out: list[Category | None] = []
    for value in rows["value"]:
        band = aqi.category(None if value is None or pd.isna(value) else float(value))
        out.append(Category(f"aqi.{band.id}", band.colour) if band else None)
    return out


FLOOD = [
    Category("flood.normal", "#1f6feb"),
    Category("flood.level1", "#d4a72c"),
    Category("flood.level2", "#e36209"),
    Category("flood.level3", "#cf222e"),
]


def flood_colours(rows: pd.DataFrame) -> list[Category | None]:
    """Gauges by the highest of their own alert levels I/II/III their latest water level reaches."""
    if "value" not in rows:
        return [None] * len(rows)
    levels = pd.to_numeric(rows["value"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    reached = np.zeros(len(rows), dtype="int64")
    for name in ("alert_level_1", "alert_level_2", "alert_level_3"):
        if name in rows:
            bound = pd.to_numeric(rows[name], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
            with np.errstate(invalid="ignore"):
                reached += (levels >= bound) & ~np.isnan(bound)
    return [None if np.isnan(level) else FLOOD[count] for level, count in zip(levels, reached, strict=True)]


COLOURS: dict[str, ColourFunction] = {
    "congestion": congestion_colours,
    "occupancy": occupancy_colours,
    "aqi": aqi_colours,
    "flood_level": flood_colours,
}
"""Colour functions by the key a page spec names (``Markers.colour``)."""

KIND_COLOURS = ("#cf222e", "#1f6feb", "#e36209", "#8250df", "#0a7e8c", "#59636e")


def category_label(category: Category | None, lang: str) -> str:
    """The category's name in the interface language."""
    return t(f"legend.{category.key}", lang) if category else t("legend.no_data", lang)


def entity_trace(
    rows: pd.DataFrame,
    categories: list[Category | None],
    *,
    name: str,
    value_label: str,
    unit: str,
    decimals: int,
    lang: str,
) -> dict:
    """One marker per entity: colour by category, hover with name, value and category."""
    colours = [c.colour if c else NO_DATA_COLOUR for c in categories]
    text = [
        f"<b>{entity}</b><br>{value_label}: {format_number(value, lang, decimals)}{(' ' + unit) if unit else ''}"
        f"<br>{category_label(category, lang)}"
        for entity, value, category in zip(rows["name"], rows["value"], categories, strict=True)
    ]
    return {
        "type": "scattermap",
        "lat": rows["lat"].astype(float).tolist(),
        "lon": rows["lon"].astype(float).tolist(),
        "mode": "markers",
        "marker": {"size": 13, "color": colours, "opacity": 0.95},
        "text": text,
        "hoverinfo": "text",
        "customdata": [
            [w if isinstance(w, str) else None, str(e)] for w, e in zip(rows["ward"], rows["entity"], strict=True)
        ],
        "name": name,
        "showlegend": False,
    }


def point_kind_colours(values: pd.Series) -> dict[str, str]:
    """A stable colour per distinct value (incident kind) in sorted order."""
    kinds = sorted({str(v) for v in values.dropna()})
    return {kind: KIND_COLOURS[i % len(KIND_COLOURS)] for i, kind in enumerate(kinds)}


def points_trace(
    points: pd.DataFrame,
    *,
    name: str,
    lat: str,
    lon: str,
    ward: str,
    colour_by: str | None,
    label: Callable[[str], str],
    lang: str,
    event_time: str,
) -> dict:
    """One marker per row (open incidents), coloured by ``colour_by`` when given."""
    colours = point_kind_colours(points[colour_by]) if colour_by and colour_by in points else {}
    marker_colours = [colours.get(str(v), KIND_COLOURS[0]) for v in points[colour_by]] if colours else KIND_COLOURS[0]
    text = []
    for _, row in points.iterrows():
        parts = [f"<b>{label(str(row[colour_by]))}</b>" if colour_by and colour_by in row else f"<b>{name}</b>"]
        if event_time in row and row[event_time]:
            parts.append(str(row[event_time]).replace("T", " ")[:16])
        text.append("<br>".join(parts))
    return {
        "type": "scattermap",
        "lat": points[lat].astype(float).tolist() if not points.empty else [],
        "lon": points[lon].astype(float).tolist() if not points.empty else [],
        "mode": "markers",
        "marker": {"size": 11, "color": marker_colours, "opacity": 0.9},
        "text": text,
        "hoverinfo": "text",
        "customdata": [[w, None] for w in points[ward]] if not points.empty else [],
        "name": name,
        "showlegend": False,
    }


def density_trace(points: pd.DataFrame, *, name: str, lat: str, lon: str) -> dict:
    """A heat layer of row positions (density of open reports)."""
    return {
        "type": "densitymap",
        "lat": points[lat].astype(float).tolist() if not points.empty else [],
        "lon": points[lon].astype(float).tolist() if not points.empty else [],
        "radius": 14,
        "opacity": 0.75,
        "colorscale": "Inferno",
        "reversescale": True,
        "showscale": False,
        "hoverinfo": "skip",
        "name": name,
    }
