"""KPI figures from snapshot frames: pure functions, the same for tiles, cards, maps and tests.

Time windows are whole buckets of the frame they read, in Asia/Ho_Chi_Minh local time:
``today`` starts at local midnight, ``24h`` reads the fine buckets of the last 48 hours,
``7d``/``30d`` read hourly rollups, ``all`` reads daily rollups. Rows whose unit code is neither a
current ward nor a pre-2025 one are left out of every figure (they are counted on Data health).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from config.datasets import Dataset, Kpi
from data_sources.clock import local_midnight
from data_sources.poller import BUCKET, ENTITY, UNIT, to_epoch
from data_sources.snapshots import Snapshot

WARD = "ward"
WINDOW_FRAMES = {"today": "recent", "24h": "recent", "7d": "hourly", "30d": "hourly", "all": "daily"}
WINDOW_SECONDS = {"24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
LATEST_HORIZON_FACTOR = 3
"""A sensor's latest bucket counts as "now" while it is at most this many expected intervals old."""


@dataclass(frozen=True)
class KpiFigure:
    """A KPI value with what a tile needs around it."""

    kpi: Kpi
    value: float | None
    entity: str | None = None


def window_start(window: str, now: datetime, bucket_seconds: int) -> int | None:
    """First bucket (epoch seconds of local wall time) inside ``window`` ending at ``now``."""
    if window in ("all", "latest"):
        return None
    if window == "today":
        return to_epoch(local_midnight(now))
    start = to_epoch(now) - WINDOW_SECONDS[window]
    return start - start % bucket_seconds


def window_frame(window: str) -> str:
    """Which snapshot frame serves a window."""
    return WINDOW_FRAMES.get(window, "recent")


def frame_bucket_seconds(dataset: Dataset, frame_name: str) -> int:
    """Bucket size of a snapshot frame."""
    return {"recent": dataset.bucket_seconds, "hourly": 3600, "daily": 86400}[frame_name]


def with_wards(frame: pd.DataFrame, crosswalk: dict[str, str]) -> pd.DataFrame:
    """Add the current ward of each row's unit code; unknown codes get NA."""
    if frame.empty:
        return frame.assign(**{WARD: pd.Series(dtype="string")})
    return frame.assign(**{WARD: frame[UNIT].map(crosswalk).astype("string")})


def _select(
    frame: pd.DataFrame, crosswalk: dict[str, str], wards: frozenset[str] | None, start: int | None
) -> pd.DataFrame:
    frame = with_wards(frame, crosswalk)
    frame = frame.loc[frame[WARD].notna()]
    if wards is not None:
        frame = frame.loc[frame[WARD].isin(wards)]
    if start is not None and BUCKET in frame:
        frame = frame.loc[frame[BUCKET] >= start]
    return frame


def _ratio(numerator: float, denominator: float, scale: float) -> float | None:
    if denominator is None or denominator == 0 or pd.isna(denominator):
        return None
    return float(numerator) / float(denominator) * scale


def _latest_rows(dataset: Dataset, frame: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """Per entity (or overall) the rows of its newest bucket that is recent enough to be "now"."""
    if frame.empty:
        return frame
    horizon = to_epoch(now) - LATEST_HORIZON_FACTOR * max(dataset.expected_seconds, dataset.bucket_seconds)
    frame = frame.loc[frame[BUCKET] >= horizon]
    if frame.empty:
        return frame
    if ENTITY in frame:
        newest = frame.groupby(ENTITY)[BUCKET].transform("max")
        return frame.loc[frame[BUCKET] == newest]
    return frame.loc[frame[BUCKET] == frame[BUCKET].max()]


def compute_kpi(
    dataset: Dataset,
    kpi: Kpi,
    snapshot: Snapshot,
    now: datetime,
    crosswalk: dict[str, str],
    *,
    wards: frozenset[str] | None = None,
    window: str | None = None,
) -> KpiFigure:
    """The value of one KPI over the snapshot, optionally for some wards and another window."""
    window = window or kpi.window
    if kpi.kind in ("state", "state_ratio"):
        frame = _select(snapshot.frame("state"), crosswalk, wards, None)
        sums = [frame[m].sum() if m in frame else 0.0 for m in kpi.measures]
        value = float(sums[0]) * kpi.scale if kpi.kind == "state" else _ratio(sums[0], sums[1], kpi.scale)
        return KpiFigure(kpi, value)
    if kpi.kind in ("latest_ratio", "latest_max"):
        frame = _latest_rows(dataset, _select(snapshot.frame("recent"), crosswalk, wards, None), now)
        if frame.empty:
            return KpiFigure(kpi, None)
        if kpi.kind == "latest_ratio":
            return KpiFigure(kpi, _ratio(frame[kpi.measures[0]].sum(), frame[kpi.measures[1]].sum(), kpi.scale))
        keys = [ENTITY] if ENTITY in frame else [BUCKET]
        grouped = frame.groupby(keys)[list(kpi.measures)].agg(
            "sum" if len(kpi.measures) == 2 else kpi_measure_agg(dataset, kpi.measures[0])
        )
        values = grouped[kpi.measures[0]] / grouped[kpi.measures[1]] if len(kpi.measures) == 2 else grouped.iloc[:, 0]
        values = values.replace([np.inf, -np.inf], np.nan).dropna()
        if values.empty:
            return KpiFigure(kpi, None)
        top = values.idxmax()
        return KpiFigure(kpi, float(values.max()) * kpi.scale, str(top) if ENTITY in frame else None)
    frame_name = window_frame(window)
    start = window_start(window, now, frame_bucket_seconds(dataset, frame_name))
    frame = _select(snapshot.frame(frame_name), crosswalk, wards, start)
    sums = [frame[m].sum() if m in frame else 0.0 for m in kpi.measures]
    if kpi.kind == "sum":
        return KpiFigure(kpi, float(sums[0]) * kpi.scale)
    return KpiFigure(kpi, _ratio(sums[0], sums[1], kpi.scale))


def kpi_measure_agg(dataset: Dataset, measure_name: str) -> str:
    """How a measure combines across rows: sum for count/sum, else min/max."""
    for measure in dataset.measures:
        if measure.name == measure_name:
            return "sum" if measure.agg in ("count", "sum") else measure.agg
    raise KeyError(f"dataset {dataset.id!r} has no measure {measure_name!r}")


def kpi_by_ward(
    dataset: Dataset,
    kpi: Kpi,
    snapshot: Snapshot,
    now: datetime,
    crosswalk: dict[str, str],
    ward_codes: list[str],
    *,
    window: str | None = None,
) -> pd.Series:
    """The KPI for every current ward (NaN where there is no data)."""
    values = {
        code: compute_kpi(dataset, kpi, snapshot, now, crosswalk, wards=frozenset([code]), window=window).value
        for code in ward_codes
    }
    return pd.Series(values, dtype="float64", name=kpi.id)


def measure_series(
    dataset: Dataset,
    measures: list[str],
    snapshot: Snapshot,
    now: datetime,
    crosswalk: dict[str, str],
    *,
    window: str,
    wards: frozenset[str] | None = None,
) -> pd.DataFrame:
    """Measures summed per bucket over the window, with a ``time`` column (naive local datetimes)."""
    frame_name = window_frame(window)
    size = frame_bucket_seconds(dataset, frame_name)
    start = window_start(window, now, size)
    frame = _select(snapshot.frame(frame_name), crosswalk, wards, start)
    present = [m for m in measures if m in frame]
    if frame.empty or not present:
        return pd.DataFrame(columns=["time", *measures])
    grouped = frame.groupby(BUCKET)[present].agg({m: kpi_measure_agg(dataset, m) for m in present})
    end = to_epoch(now)
    first = start if start is not None else int(grouped.index.min())
    full_index = pd.RangeIndex(first - first % size, end + 1, size)
    grouped = grouped.reindex(full_index, fill_value=0.0)
    grouped.index.name = BUCKET
    result = grouped.reset_index()
    result.insert(0, "time", pd.to_datetime(result[BUCKET], unit="s"))
    return result.drop(columns=[BUCKET])
