"""Figures for a sector page's view, from snapshot frames: pure functions beside ``data_sources.kpis``.

``data_sources.kpis.compute_kpi`` computes one KPI over a named window for one set of wards. A sector
page computes a dozen figures per refresh, so this module reads the snapshot the same way with
three differences: each frame's rows are mapped to their current ward once per snapshot version
(``ward_frames``) instead of once per figure; every ward's value comes from one grouped pass (map
and league table); and a custom range of whole Asia/Ho_Chi_Minh days reads the daily rollups. It
also gives series lines that are ratios per bucket and each entity's (sensor, facility, station,
gauge) latest value for map markers. The tests hold every figure here equal to ``compute_kpi``.
"""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from config.datasets import WINDOWS, Dataset, Kpi
from data_sources.kpis import (
    LATEST_HORIZON_FACTOR,
    WARD,
    KpiFigure,
    compute_kpi,
    entity_values,
    frame_bucket_seconds,
    kpi_by_ward,
    kpi_measure_agg,
    window_frame,
    window_start,
    with_wards,
)
from data_sources.poller import BUCKET, ENTITY, HOURLY_SECONDS, UNIT, to_epoch
from data_sources.snapshots import Snapshot

Span = tuple[int, int]
"""[start, end) in epoch seconds of local wall time (how snapshot buckets are keyed)."""

WINDOWED_KINDS = ("sum", "ratio", "mean")
"""KPI kinds that add up over a time range (state and latest kinds are "now")."""

ENTITY_KINDS = ("entity_max", "entity_count")
"""Kinds whose per-entity value comes from ``kpis.entity_values`` (the station AQI among them)."""

GROUPED_KINDS = (*WINDOWED_KINDS, "state", "state_ratio", "latest_ratio", "latest_max")
"""Kinds computed here in one grouped pass; the others (median, versus, entity_*) go to ``kpis``."""

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


class WardFrames:
    """A snapshot's frames with each row's current ward (rows of unknown units left out), read-only.

    Each frame is mapped on first use: a refresh over the last 7 days never maps the daily rollups.
    """

    def __init__(self, snapshot: Snapshot, crosswalk: dict[str, str]) -> None:
        self.snapshot = snapshot
        self.crosswalk = crosswalk
        self._frames: dict[str, pd.DataFrame] = {}
        self._lock = threading.Lock()

    def frame(self, name: str) -> pd.DataFrame:
        """One frame (shared: never modify it), empty when the poller did not produce it."""
        found = self._frames.get(name)
        if found is not None:
            return found
        frame = self.snapshot.frames.get(name, pd.DataFrame())
        if UNIT in frame and name != "entities":
            mapped = with_wards(frame, self.crosswalk)
            frame = mapped.loc[mapped[WARD].notna()].reset_index(drop=True)
        with self._lock:
            self._frames[name] = frame
        return frame


_PREPARED: dict[str, WardFrames] = {}
_PREPARED_LOCK = threading.Lock()


def ward_frames(snapshot: Snapshot, crosswalk: dict[str, str]) -> WardFrames:
    """The snapshot's ward-mapped frames, built once per snapshot object (one kept per dataset)."""
    cached = _PREPARED.get(snapshot.dataset)
    if cached is not None and cached.snapshot is snapshot and cached.crosswalk is crosswalk:
        return cached
    prepared = WardFrames(snapshot, crosswalk)
    with _PREPARED_LOCK:
        _PREPARED[snapshot.dataset] = prepared
    return prepared


def _ratio(numerator: pd.Series, denominator: pd.Series, scale: float) -> pd.Series:
    values = numerator.astype("float64") / denominator.astype("float64").where(denominator != 0)
    return values.replace([np.inf, -np.inf], np.nan) * scale


def _scalar_ratio(numerator: float, denominator: float, scale: float) -> float | None:
    if denominator is None or denominator == 0 or pd.isna(denominator):
        return None
    return float(numerator) / float(denominator) * scale


def _in_wards(frame: pd.DataFrame, wards: frozenset[str] | None) -> pd.DataFrame:
    if wards is None or frame.empty:
        return frame
    return frame.loc[frame[WARD].isin(wards)]


def _horizon(dataset: Dataset, now: datetime) -> int:
    """Oldest bucket that still counts as "now" for latest values."""
    return to_epoch(now) - LATEST_HORIZON_FACTOR * max(dataset.expected_seconds, dataset.bucket_seconds)


def _windowed_rows(
    dataset: Dataset, prepared: WardFrames, now: datetime, window: str, span: Span | None
) -> pd.DataFrame:
    """Rows of the frame serving ``window`` (or the daily rows inside ``span``)."""
    if span is not None:
        frame = prepared.frame("daily")
        if frame.empty:
            return frame
        return frame.loc[(frame[BUCKET] >= span[0]) & (frame[BUCKET] < span[1])]
    frame_name = window_frame(window)
    frame = prepared.frame(frame_name)
    start = window_start(window, now, frame_bucket_seconds(dataset, frame_name))
    if start is None or frame.empty:
        return frame
    return frame.loc[frame[BUCKET] >= start]


def _named(kpi: Kpi, window: str, span: Span | None) -> str:
    """The named window a ``kpis`` figure uses: the page's, or the KPI's own under a custom span."""
    return kpi.window if span is not None or window not in WINDOWS else window


def kpi_value(
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
    """The KPI over some wards: ``compute_kpi``'s figure, or over a custom day span for windowed kinds."""
    if kpi.kind not in GROUPED_KINDS:  # their own window or "now": a custom span does not apply
        return compute_kpi(dataset, kpi, snapshot, now, crosswalk, wards=wards, window=_named(kpi, window, span))
    prepared = ward_frames(snapshot, crosswalk)
    if kpi.kind in ("state", "state_ratio"):
        frame = _in_wards(prepared.frame("state"), wards)
        sums = [float(frame[m].sum()) if m in frame else 0.0 for m in kpi.measures]
        value = sums[0] * kpi.scale if kpi.kind == "state" else _scalar_ratio(sums[0], sums[1], kpi.scale)
        return KpiFigure(kpi, value)
    if kpi.kind in ("latest_ratio", "latest_max"):
        frame = _in_wards(prepared.frame("recent"), wards)
        if frame.empty:
            return KpiFigure(kpi, None)
        frame = frame.loc[frame[BUCKET] >= _horizon(dataset, now)]
        if frame.empty:
            return KpiFigure(kpi, None)
        if ENTITY in frame:
            frame = frame.loc[frame[BUCKET] == frame.groupby(ENTITY)[BUCKET].transform("max")]
        else:
            frame = frame.loc[frame[BUCKET] == frame[BUCKET].max()]
        if kpi.kind == "latest_ratio":
            return KpiFigure(kpi, _scalar_ratio(frame[kpi.measures[0]].sum(), frame[kpi.measures[1]].sum(), kpi.scale))
        keys = [ENTITY] if ENTITY in frame else [BUCKET]
        how = "sum" if len(kpi.measures) == 2 else kpi_measure_agg(dataset, kpi.measures[0])
        grouped = frame.groupby(keys)[list(kpi.measures)].agg(how)
        values = grouped.iloc[:, 0] / grouped.iloc[:, 1] if len(kpi.measures) == 2 else grouped.iloc[:, 0]
        values = values.replace([np.inf, -np.inf], np.nan).dropna()
        if values.empty:
            return KpiFigure(kpi, None)
        top = values.idxmax()
        return KpiFigure(kpi, float(values.max()) * kpi.scale, str(top) if ENTITY in frame else None)
    use_span = span if kpi.kind in WINDOWED_KINDS else None
    frame = _in_wards(_windowed_rows(dataset, prepared, now, window, use_span), wards)
    sums = [float(frame[m].sum()) if m in frame else 0.0 for m in kpi.measures]
    if kpi.kind == "sum":
        return KpiFigure(kpi, sums[0] * kpi.scale)
    return KpiFigure(kpi, _scalar_ratio(sums[0], sums[1], kpi.scale))


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
    if kpi.kind not in GROUPED_KINDS:
        return kpi_by_ward(dataset, kpi, snapshot, now, crosswalk, ward_codes, window=_named(kpi, window, span))
    prepared = ward_frames(snapshot, crosswalk)
    index = pd.Index(ward_codes, dtype="object")
    empty = pd.Series(np.nan, index=index, dtype="float64", name=kpi.id)

    def by_ward(frame: pd.DataFrame, columns: list[str], how="sum") -> pd.DataFrame:
        grouped = frame.groupby(WARD)[columns].agg(how)
        grouped.index = grouped.index.astype("object")
        return grouped.reindex(index)

    def count_or_ratio(frame: pd.DataFrame, additive: bool) -> pd.Series:
        """Per ward: the first measure summed (0 where absent), or the ratio of the two sums."""
        present = [m for m in kpi.measures if m in frame]
        if frame.empty or not present:
            return empty.fillna(0.0) if additive else empty
        sums = by_ward(frame, present)
        if additive:
            return (sums[kpi.measures[0]].fillna(0.0) * kpi.scale).rename(kpi.id)
        if len(present) < 2:
            return empty
        return _ratio(sums[kpi.measures[0]].fillna(0), sums[kpi.measures[1]].fillna(0), kpi.scale).rename(kpi.id)

    if kpi.kind in ("state", "state_ratio"):
        return count_or_ratio(prepared.frame("state"), kpi.kind == "state")
    if kpi.kind in ("latest_ratio", "latest_max"):
        frame = prepared.frame("recent")
        if frame.empty:
            return empty
        frame = frame.loc[frame[BUCKET] >= _horizon(dataset, now)]
        if frame.empty:
            return empty
        keys = [WARD, ENTITY] if ENTITY in frame else [WARD]
        frame = frame.loc[frame[BUCKET] == frame.groupby(keys)[BUCKET].transform("max")]
        if kpi.kind == "latest_ratio":
            sums = by_ward(frame, list(kpi.measures))
            return _ratio(sums[kpi.measures[0]], sums[kpi.measures[1]], kpi.scale).rename(kpi.id)
        keys = [WARD, ENTITY] if ENTITY in frame else [WARD, BUCKET]
        how = "sum" if len(kpi.measures) == 2 else kpi_measure_agg(dataset, kpi.measures[0])
        grouped = frame.groupby(keys)[list(kpi.measures)].agg(how)
        per = grouped.iloc[:, 0] / grouped.iloc[:, 1] if len(kpi.measures) == 2 else grouped.iloc[:, 0]
        per = per.replace([np.inf, -np.inf], np.nan).dropna()
        values = per.groupby(level=0).max() * kpi.scale
        values.index = values.index.astype("object")
        return values.reindex(index).astype("float64").rename(kpi.id)
    return count_or_ratio(_windowed_rows(dataset, prepared, now, window, span), kpi.kind == "sum")


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

    Named windows read the frame ``data_sources.kpis`` reads for them, drawn at ``DRAW_SECONDS``; a
    custom span is drawn per hour when short and inside the hourly rollups, else per day. Buckets
    without rows are zeros.
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
    frame = _in_wards(ward_frames(snapshot, crosswalk).frame(frame_name), wards)
    present = [m for m in measures if m in frame]
    if frame.empty or not present:
        return pd.DataFrame(columns=["time", *measures])
    if first is None:
        first = int(frame[BUCKET].min())
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
    entities = snapshot.frames.get("entities")
    if entities is None or entities.empty or "lat" not in entities or "lon" not in entities:
        return pd.DataFrame(columns=["entity", "name", "lat", "lon", WARD, "value"])
    entities = entities.dropna(subset=["lat", "lon"]).copy()
    entities[WARD] = entities[UNIT].astype("string").map(crosswalk) if UNIT in entities else pd.NA
    if wards is not None:
        entities = entities.loc[entities[WARD].isin(wards)]
    kpi = next((k for k in dataset.kpis if k.id == value), None)
    if kpi is not None and kpi.kind in ENTITY_KINDS:  # e.g. each station's VN_AQI, each gauge's level
        found = entity_values(dataset, kpi, snapshot, now, crosswalk, wards=wards)
        by_entity = found.set_index(found["entity"].astype("string"))["value"] if not found.empty else None
        entities["value"] = (
            entities["entity"].astype("string").map(by_entity).astype("float64") if by_entity is not None else np.nan
        )
        return entities.reset_index(drop=True)
    measures = list(kpi.measures) if kpi is not None else [value]
    scale = kpi.scale if kpi is not None else 1.0
    recent = snapshot.frames.get("recent")
    values = pd.Series(dtype="float64")
    if recent is not None and not recent.empty and ENTITY in recent and all(m in recent for m in measures):
        recent = recent.loc[recent[BUCKET] >= _horizon(dataset, now)]
        if not recent.empty:
            latest = recent.loc[recent[BUCKET] == recent.groupby(ENTITY)[BUCKET].transform("max")]
            how = {m: kpi_measure_agg(dataset, m) for m in measures}
            grouped = latest.groupby(ENTITY)[measures].agg(how)
            values = grouped.iloc[:, 0] if len(measures) == 1 else _ratio(grouped.iloc[:, 0], grouped.iloc[:, 1], 1.0)
            values = values * scale
            values.index = values.index.astype("string")
    entities["value"] = entities["entity"].astype("string").map(values).astype("float64")
    return entities.reset_index(drop=True)
