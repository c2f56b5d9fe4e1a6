"""Figures for a sector page's view, from snapshot frames: pure functions beside ``data_sources.kpis``.

``data_sources.kpis`` computes one KPI over a named window for one set of wards. A sector page also
needs: a custom range of whole Asia/Ho_Chi_Minh days, every ward's value at once (map and league
table: one grouped pass instead of one pass per ward), series lines that are ratios per bucket,
and each entity's (sensor, facility, station, gauge) latest value for map markers. Every function
here agrees with ``compute_kpi`` on what it shares with it (tests compare them).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from config.datasets import Dataset, Kpi
from data_sources.kpis import (
    LATEST_HORIZON_FACTOR,
    WARD,
    KpiFigure,
    compute_kpi,
    frame_bucket_seconds,
    kpi_measure_agg,
    window_frame,
    window_start,
    with_wards,
)
from data_sources.poller import BUCKET, ENTITY, HOURLY_SECONDS, to_epoch
from data_sources.snapshots import Snapshot

Span = tuple[int, int]
"""[start, end) in epoch seconds of local wall time (how snapshot buckets are keyed)."""

WINDOWED_KINDS = ("sum", "ratio", "mean")
"""KPI kinds that add up over a time range (state and latest kinds are "now")."""

FINE_SPAN_SECONDS = 3 * 86400
"""Custom ranges up to this long are drawn per hour (while hourly rollups cover them), longer ones per day."""

DRAW_SECONDS = {"24h": None, "7d": 3 * 3600, "30d": 86400, "all": 86400}
"""Bucket a series is drawn at per window (None: the frame's own); a ward's hourly counts over 30
days are mostly zeros and spikes, its daily counts read as a trend."""


def day_span(start: date, end: date) -> Span:
    """The local days ``start``..``end`` (both included) as a bucket span."""
    first = datetime.combine(start, datetime.min.time())
    after = datetime.combine(end + timedelta(days=1), datetime.min.time())
    return to_epoch(first), to_epoch(after)


def restrict(snapshot: Snapshot, frame_name: str, span: Span) -> Snapshot:
    """A copy of ``snapshot`` whose ``frame_name`` frame keeps only the buckets inside ``span``."""
    frame = snapshot.frames.get(frame_name)
    if frame is None or frame.empty:
        return snapshot
    kept = frame.loc[(frame[BUCKET] >= span[0]) & (frame[BUCKET] < span[1])]
    return replace(snapshot, frames={**snapshot.frames, frame_name: kept})


def view_kpi(
    dataset: Dataset,
    kpi: Kpi,
    snapshot: Snapshot,
    now: datetime,
    crosswalk: dict[str, str],
    *,
    wards: frozenset[str] | None,
    window: str,
    span: Span | None = None,
) -> KpiFigure:
    """A KPI over a named window, or over a custom day span (daily rollups) for windowed kinds."""
    if span is not None and kpi.kind in WINDOWED_KINDS:
        return compute_kpi(dataset, kpi, restrict(snapshot, "daily", span), now, crosswalk, wards=wards, window="all")
    return compute_kpi(dataset, kpi, snapshot, now, crosswalk, wards=wards, window=window)


def _ratio(numerator: pd.Series, denominator: pd.Series, scale: float) -> pd.Series:
    values = numerator.astype("float64") / denominator.astype("float64").where(denominator != 0)
    return values.replace([np.inf, -np.inf], np.nan) * scale


def _latest_per_ward(dataset: Dataset, frame: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """Per ward (and entity) the rows of the newest bucket recent enough to be "now"."""
    horizon = to_epoch(now) - LATEST_HORIZON_FACTOR * max(dataset.expected_seconds, dataset.bucket_seconds)
    frame = frame.loc[frame[BUCKET] >= horizon]
    if frame.empty:
        return frame
    keys = [WARD, ENTITY] if ENTITY in frame else [WARD]
    newest = frame.groupby(keys, observed=True)[BUCKET].transform("max")
    return frame.loc[frame[BUCKET] == newest]


def kpi_per_ward(
    dataset: Dataset,
    kpi: Kpi,
    snapshot: Snapshot,
    now: datetime,
    crosswalk: dict[str, str],
    ward_codes: list[str],
    *,
    window: str,
    span: Span | None = None,
) -> pd.Series:
    """The KPI of every ward in ``ward_codes`` in one grouped pass (NaN where there is no data).

    Equal to ``compute_kpi(..., wards={code})`` for each ward (``kpis.kpi_by_ward``), without
    re-reading the frame once per ward.
    """
    index = pd.Index(ward_codes, dtype="object")
    empty = pd.Series(np.nan, index=index, dtype="float64", name=kpi.id)
    if kpi.kind in ("state", "state_ratio"):
        frame = with_wards(snapshot.frame("state"), crosswalk)
        frame = frame.loc[frame[WARD].notna()] if not frame.empty else frame
        sums = frame.groupby(WARD)[[m for m in kpi.measures if m in frame]].sum() if not frame.empty else None
        if sums is None or sums.empty:
            return empty.fillna(0.0) if kpi.kind == "state" else empty
        sums = sums.reindex(index.astype("string"))
        sums.index = index
        if kpi.kind == "state":
            first = sums[kpi.measures[0]] if kpi.measures[0] in sums else pd.Series(0.0, index=index)
            return (first.fillna(0.0) * kpi.scale).rename(kpi.id)
        if any(m not in sums for m in kpi.measures):
            return empty
        return _ratio(sums[kpi.measures[0]].fillna(0), sums[kpi.measures[1]].fillna(0), kpi.scale).rename(kpi.id)
    if kpi.kind in ("latest_ratio", "latest_max"):
        frame = with_wards(snapshot.frame("recent"), crosswalk)
        if frame.empty:
            return empty
        frame = _latest_per_ward(dataset, frame.loc[frame[WARD].notna()], now)
        if frame.empty:
            return empty
        if kpi.kind == "latest_ratio":
            sums = frame.groupby(WARD)[list(kpi.measures)].sum()
            values = _ratio(sums[kpi.measures[0]], sums[kpi.measures[1]], kpi.scale)
        else:
            keys = [WARD, ENTITY] if ENTITY in frame else [WARD, BUCKET]
            how = "sum" if len(kpi.measures) == 2 else kpi_measure_agg(dataset, kpi.measures[0])
            grouped = frame.groupby(keys)[list(kpi.measures)].agg(how)
            per = grouped.iloc[:, 0] / grouped.iloc[:, 1] if len(kpi.measures) == 2 else grouped.iloc[:, 0]
            per = per.replace([np.inf, -np.inf], np.nan).dropna()
            values = per.groupby(level=0).max() * kpi.scale
        values.index = values.index.astype("object")
        return values.reindex(index).astype("float64").rename(kpi.id)
    if span is not None:
        frame_name, start = "daily", None
        snapshot = restrict(snapshot, "daily", span)
    else:
        frame_name = window_frame(window)
        start = window_start(window, now, frame_bucket_seconds(dataset, frame_name))
    frame = with_wards(snapshot.frame(frame_name), crosswalk)
    if frame.empty:
        return empty.fillna(0.0) if kpi.kind == "sum" else empty
    frame = frame.loc[frame[WARD].notna()]
    if start is not None:
        frame = frame.loc[frame[BUCKET] >= start]
    present = [m for m in kpi.measures if m in frame]
    sums = frame.groupby(WARD)[present].sum()
    sums.index = sums.index.astype("object")
    sums = sums.reindex(index)
    if kpi.kind == "sum":
        first = sums[kpi.measures[0]] if kpi.measures[0] in sums else pd.Series(0.0, index=index)
        return (first.fillna(0.0) * kpi.scale).rename(kpi.id)
    if len(present) < 2:
        return empty
    return _ratio(sums[kpi.measures[0]].fillna(0), sums[kpi.measures[1]].fillna(0), kpi.scale).rename(kpi.id)


def series_frame(
    dataset: Dataset,
    measures: list[str],
    snapshot: Snapshot,
    now: datetime,
    crosswalk: dict[str, str],
    *,
    wards: frozenset[str] | None,
    window: str,
    span: Span | None = None,
) -> pd.DataFrame:
    """Measures per bucket over a named window or a custom span, with a ``time`` column.

    Named windows read the frame ``data_sources.kpis`` reads for them; a custom span is drawn per
    hour when short and inside the hourly rollups, else per day. Buckets without rows are zeros.
    """
    if span is None:
        frame_name = window_frame(window)
        size = frame_bucket_seconds(dataset, frame_name)
        first = window_start(window, now, size)
        last = to_epoch(now)
        size = max(size, DRAW_SECONDS.get(window) or size)
    else:
        fine = span[1] - span[0] <= FINE_SPAN_SECONDS and span[0] >= to_epoch(now) - HOURLY_SECONDS
        frame_name = "hourly" if fine else "daily"
        size = frame_bucket_seconds(dataset, frame_name)
        first, last = span[0], span[1] - 1
    frame = with_wards(snapshot.frame(frame_name), crosswalk)
    present = [m for m in measures if m in frame]
    if frame.empty or not present:
        return pd.DataFrame(columns=["time", *measures])
    frame = frame.loc[frame[WARD].notna()]
    if wards is not None:
        frame = frame.loc[frame[WARD].isin(wards)]
    frame = frame.loc[(frame[BUCKET] >= first) & (frame[BUCKET] <= last)]
    drawn = frame[BUCKET] - frame[BUCKET] % size
    grouped = frame.groupby(drawn)[present].agg({m: kpi_measure_agg(dataset, m) for m in present})
    full_index = pd.RangeIndex(first - first % size, last + 1, size)
    grouped = grouped.reindex(full_index, fill_value=0.0)
    result = grouped.reset_index(names=BUCKET)
    result.insert(0, "time", pd.to_datetime(result[BUCKET], unit="s"))
    return result.drop(columns=[BUCKET])


def line_values(series: pd.DataFrame, measure: str, over: str | None, scale: float = 1.0) -> pd.Series:
    """One series line: the measure per bucket, or measure / over per bucket (NaN where over is 0)."""
    if measure not in series:
        return pd.Series(np.nan, index=series.index, dtype="float64")
    values = series[measure].astype("float64")
    if over is not None:
        if over not in series:
            return pd.Series(np.nan, index=series.index, dtype="float64")
        values = _ratio(values, series[over], 1.0)
    return values * scale


def entity_latest(
    dataset: Dataset,
    value: str,
    snapshot: Snapshot,
    now: datetime,
    crosswalk: dict[str, str],
    *,
    wards: frozenset[str] | None = None,
) -> pd.DataFrame:
    """Each entity of the reference table with its place, ward and latest value.

    ``value`` is a ``latest_ratio``/``latest_max`` KPI id (evaluated per entity, so a station's
    marker shows the figure the "worst station" tile picks from) or a measure name. Entities with no
    reading recent enough to be "now" keep a NaN value (drawn as "no data", not left out).
    """
    entities = snapshot.frame("entities")
    if entities.empty or "lat" not in entities or "lon" not in entities:
        return pd.DataFrame(columns=["entity", "name", "lat", "lon", WARD, "value"])
    entities = entities.dropna(subset=["lat", "lon"]).copy()
    entities[WARD] = entities["unit"].astype("string").map(crosswalk) if "unit" in entities else pd.NA
    if wards is not None:
        entities = entities.loc[entities[WARD].isin(wards)]
    kpi = next((k for k in dataset.kpis if k.id == value), None)
    measures = list(kpi.measures) if kpi is not None else [value]
    scale = kpi.scale if kpi is not None else 1.0
    recent = snapshot.frame("recent")
    values = pd.Series(dtype="float64")
    if not recent.empty and ENTITY in recent and all(m in recent for m in measures):
        horizon = to_epoch(now) - LATEST_HORIZON_FACTOR * max(dataset.expected_seconds, dataset.bucket_seconds)
        recent = recent.loc[recent[BUCKET] >= horizon]
        if not recent.empty:
            newest = recent.groupby(ENTITY)[BUCKET].transform("max")
            latest = recent.loc[recent[BUCKET] == newest]
            how = {m: kpi_measure_agg(dataset, m) for m in measures}
            grouped = latest.groupby(ENTITY)[measures].agg(how)
            values = grouped.iloc[:, 0] if len(measures) == 1 else _ratio(grouped.iloc[:, 0], grouped.iloc[:, 1], 1.0)
            values = values * scale
            values.index = values.index.astype("string")
    entities["value"] = entities["entity"].astype("string").map(values).astype("float64")
    return entities.reset_index(drop=True)
