"""Data quality per dataset and per ward: the checks, the rules the poller applies, and pure read-time
figures for the Data health page.

Checks (each named like the rollup measure that counts it, so one name travels from SQL to screen):

=================  ============  ======================================================================
check              dimension     a row is bad when
=================  ============  ======================================================================
_missing_<col>     completeness  a ``required`` column or the watermark is NULL
_missing_<time>    completeness  the event time is NULL: the row has no bucket, so it is counted apart
                                 from the rollups (per unit, whole table) and shown in every window
_missing_unit      completeness  the ward code is NULL (counted at read time from the rollup)
_sentinel_<col>    validity      a ``valid.*`` column holds a "no value" sentinel such as -999
_invalid_<col>     validity      a ``valid.*`` column is outside its range (sentinels excepted)
_outside_area      validity      latitude/longitude lie outside the province: outside its outline (the
                                 union of the official ward boundaries, widened by ``OUTLINE_MARGIN_M``);
                                 without official boundaries, outside the wards' bounding box
_unknown_unit      validity      the ward code is neither a current nor a pre-2025 code of the province
_duplicates        uniqueness    a second row with the same ``natural_key`` (the first one counts)
_late              timeliness    the row arrived after the late window (reported, and still counted)
=================  ============  ======================================================================

Bad values never reach a KPI: out-of-range values and sentinels are left out of every measure,
duplicate copies out of every measure, rows with unknown or missing codes out of every ward figure.
Rows with points outside the province still count for their ward code (the code, not the point,
places them) but are listed. Pre-2025 codes are not errors: they map through the crosswalk.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely

from config.datasets import Dataset
from data_sources.sql import DUPLICATES, OUTSIDE, ROWS, Bounds, missing_measure

log = logging.getLogger(__name__)

MISSING_UNIT = "_missing_unit"
UNKNOWN_UNIT = "_unknown_unit"
LATE = "_late"
DIMENSIONS = ("completeness", "validity", "uniqueness", "timeliness")
BOUNDS_MARGIN_DEGREES = 0.02
"""Added around the ward coverage's bounding box (about 2 km) so edge-of-province points pass; used
only with the approximate wards (no official boundaries), whose outline is invented."""
OUTLINE_MARGIN_M = 200.0
"""Tolerance around the province outline: the outline is the union of the *simplified* ward coverage
(``boundaries_tolerance_m``, 60 m by default, moves no edge further than that) rounded to 1e-5 degree
(about 1 m); 200 m covers both with room for a phone's GPS error at the border. With a coarser
simplification the margin is twice the tolerance."""
NO_WARD = ""
"""Ward label of rows whose code is missing."""

__all__ = [
    "DIMENSIONS",
    "DUPLICATES",
    "LATE",
    "MISSING_UNIT",
    "NO_WARD",
    "OUTLINE_MARGIN_M",
    "OUTSIDE",
    "ProvinceArea",
    "UNKNOWN_UNIT",
    "QualityRules",
    "check_catalogue",
    "province_area",
    "province_bounds",
    "province_rules",
    "quality_by_ward",
    "scoped_examples",
    "undated_check",
]


@dataclass(frozen=True, eq=False)
class ProvinceArea:
    """Where a point may lie: the province outline widened by ``margin_m`` (WGS84, prepared), and the
    outline's bounding box, which SQL checks first (a point outside the box is outside)."""

    outline: shapely.Geometry
    bounds: Bounds
    margin_m: float

    def outside(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """True for each point outside the widened outline (vectorised; the outline is prepared)."""
        return ~shapely.contains_xy(self.outline, np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))


@dataclass(frozen=True)
class QualityRules:
    """What the poller needs to know about the province to check rows: its extent and its codes."""

    bounds: Bounds | None = None
    known_units: frozenset[str] | None = None
    """Current and pre-2025 codes of the province (the crosswalk's keys); None skips the check."""
    area: ProvinceArea | None = None
    """The province outline: points inside ``bounds`` are checked against it (None: the box only)."""


def province_area(geojson: dict[str, Any], margin_m: float = OUTLINE_MARGIN_M) -> ProvinceArea:
    """The union of a ward layer's polygons (GeoJSON, WGS84) widened by ``margin_m`` metres.

    The buffer is drawn in the outline's UTM zone; the result is prepared, so testing 10,000 points
    costs a few milliseconds (``bench/poll.py`` prints the figure).
    """
    import geopandas

    shapes = [shapely.geometry.shape(feature["geometry"]) for feature in geojson["features"]]
    if not shapes:
        raise ValueError("no ward polygons to draw the province outline from")
    union = geopandas.GeoSeries([shapely.union_all(shapes)], crs="EPSG:4326")
    metric = union.estimate_utm_crs()
    widened = union.to_crs(metric).buffer(margin_m, quad_segs=2).to_crs("EPSG:4326").iloc[0]
    shapely.prepare(widened)
    west, south, east, north = widened.bounds
    return ProvinceArea(widened, Bounds(south, west, north, east), margin_m)


def province_rules(
    units: pd.DataFrame,
    boundaries_path: str | Path | None,
    known_units: frozenset[str] | None,
    *,
    tolerance_m: float = 60,
    code_field: str = "code",
    cache_dir: str | Path | None = None,
) -> QualityRules:
    """The poller's rules for a province: with official boundaries, the outline of the ward layer the
    maps draw (read from the boundary cache when it is there); without, the approximate wards' box."""
    if boundaries_path is None:
        return QualityRules(bounds=province_bounds(units, None), known_units=known_units)
    from data_sources.geo import prepare_ward_layer

    layer = prepare_ward_layer(
        units, boundaries_path, tolerance_m=tolerance_m, code_field=code_field, cache_dir=cache_dir
    )
    area = province_area(layer.geojson, max(OUTLINE_MARGIN_M, 2 * tolerance_m))
    return QualityRules(bounds=area.bounds, known_units=known_units, area=area)


def province_bounds(units: pd.DataFrame, boundaries_path: str | Path | None) -> Bounds:
    """The bounding box of the province's ward coverage (official boundaries when configured, else
    the approximate polygons drawn from the registry), widened by ``BOUNDS_MARGIN_DEGREES``."""
    from data_sources.geo import approximate_wards, load_boundaries

    shapes = approximate_wards(units) if boundaries_path is None else load_boundaries(boundaries_path)
    west, south, east, north = shapes.to_crs("EPSG:4326").total_bounds
    margin = BOUNDS_MARGIN_DEGREES
    return Bounds(float(south) - margin, float(west) - margin, float(north) + margin, float(east) + margin)


def check_catalogue(dataset: Dataset, rollup_checks: list[str]) -> dict[str, dict[str, Any]]:
    """Every check that applies to ``dataset``: its dimension and the column it is about. Checks
    counted outside the rollups, over the whole table rather than a time window, say ``total``."""
    checks: dict[str, dict[str, Any]] = {
        undated_check(dataset): {"dimension": "completeness", "column": dataset.event_time, "total": True}
    }
    for name in rollup_checks:
        if name == ROWS:
            continue
        if name.startswith("_missing_"):
            checks[name] = {"dimension": "completeness", "column": name.removeprefix("_missing_")}
        elif name.startswith("_sentinel_"):
            checks[name] = {"dimension": "validity", "column": name.removeprefix("_sentinel_")}
        elif name.startswith("_invalid_"):
            checks[name] = {"dimension": "validity", "column": name.removeprefix("_invalid_")}
        elif name == OUTSIDE:
            checks[name] = {"dimension": "validity", "column": f"{dataset.latitude}, {dataset.longitude}"}
        elif name == DUPLICATES:
            checks[name] = {"dimension": "uniqueness", "column": ", ".join(dataset.natural_key)}
    if dataset.unit not in dataset.required:  # else the required-column check counts these rows already
        checks[MISSING_UNIT] = {"dimension": "completeness", "column": dataset.unit}
    checks[UNKNOWN_UNIT] = {"dimension": "validity", "column": dataset.unit}
    checks[LATE] = {"dimension": "timeliness", "column": dataset.watermark, "total": True}
    return checks


def undated_check(dataset: Dataset) -> str:
    """The check counting rows whose event time is NULL (named like the other missing-value checks)."""
    return missing_measure(dataset.event_time)


def ward_of(unit: Any, crosswalk: dict[str, str]) -> str | None:
    """The current ward a raw unit code belongs to; None for a missing or unknown code."""
    if unit is None or (isinstance(unit, float) and pd.isna(unit)) or unit is pd.NA:
        return None
    return crosswalk.get(str(unit))


def quality_by_ward(
    frame: pd.DataFrame,
    checks: dict[str, dict[str, Any]],
    crosswalk: dict[str, str],
    *,
    start: int | None = None,
    wards: frozenset[str] | None = None,
    late_by_unit: dict[str, int] | None = None,
    totals_by_unit: dict[str, dict[str, int]] | None = None,
) -> pd.DataFrame:
    """Rows and bad rows per check, one line per current ward (plus unknown and missing codes).

    ``frame`` is a rollup frame of the snapshot (recent, hourly or daily); ``start`` its first bucket.
    Lines are indexed by ward code; unknown codes keep their raw code, missing ones ``NO_WARD``, and
    both are left out when ``wards`` limits the view (they belong to no ward of the account).
    Checks counted apart from the rollups come per raw unit code, whatever the window: late arrivals
    (``late_by_unit``, the poller's running count) and ``totals_by_unit`` (check -> unit -> rows, e.g.
    rows without an event time).
    """
    columns = [ROWS, *checks]
    if frame.empty or "unit" not in frame:
        table = pd.DataFrame(columns=["ward", "unit_status", *columns])
    else:
        if start is not None:
            frame = frame.loc[frame["bucket"] >= start]
        units = frame["unit"].astype("object")
        ward = units.map(lambda u: ward_of(u, crosswalk))
        status = pd.Series("known", index=frame.index)
        status[ward.isna() & units.notna()] = "unknown"
        status[units.isna()] = "missing"
        label = ward.where(ward.notna(), units.where(units.notna(), NO_WARD))
        present = [c for c in columns if c in frame]
        table = frame[present].assign(ward=label.astype(str), unit_status=status)
        rows = frame[ROWS].fillna(0)
        table[UNKNOWN_UNIT] = rows.where(status == "unknown", 0)
        if MISSING_UNIT in checks:
            table[MISSING_UNIT] = rows.where(status == "missing", 0)
    table = table.reindex(columns=["ward", "unit_status", *columns], fill_value=0.0)
    table[LATE] = 0.0
    grouped = table.groupby(["ward", "unit_status"], dropna=False)[columns].sum().reset_index()
    apart = {LATE: late_by_unit or {}} | {c: counts for c, counts in (totals_by_unit or {}).items() if c in checks}
    for check, by_unit in apart.items():
        for unit, count in by_unit.items():
            grouped = _add_count(grouped, columns, check, unit, count, crosswalk)
    if wards is not None:
        grouped = grouped.loc[(grouped["unit_status"] == "known") & grouped["ward"].isin(wards)]
    return grouped.sort_values(["unit_status", "ward"]).reset_index(drop=True)


def _add_count(
    grouped: pd.DataFrame, columns: list[str], check: str, unit: str, count: int, crosswalk: dict[str, str]
) -> pd.DataFrame:
    """``grouped`` with ``count`` bad rows of ``check`` added to the line of raw code ``unit``."""
    ward = ward_of(unit or None, crosswalk)
    label = ward or (unit or NO_WARD)
    status = "known" if ward else ("unknown" if unit else "missing")
    match = (grouped["ward"] == label) & (grouped["unit_status"] == status)
    if match.any():
        grouped.loc[match, check] += count
        return grouped
    extra = {c: 0.0 for c in columns} | {"ward": label, "unit_status": status, check: float(count)}
    return pd.concat([grouped, pd.DataFrame([extra])], ignore_index=True)


def scoped_examples(
    examples: dict[str, list[dict[str, Any]]], crosswalk: dict[str, str], wards: frozenset[str] | None
) -> dict[str, list[dict[str, Any]]]:
    """Example rows with their current ward added; when ``wards`` is set, only those of these wards."""
    scoped: dict[str, list[dict[str, Any]]] = {}
    for check, rows in examples.items():
        kept = []
        for row in rows:
            ward = ward_of(row.get("unit"), crosswalk)
            if wards is not None and ward not in wards:
                continue
            kept.append(row | {"ward": ward})
        if kept:
            scoped[check] = kept
    return scoped
