"""Any time range from the snapshot's history tiers, never from the warehouse: custom ranges on
sector pages, the pre-merger (old-unit) view and alert previews read here.

The snapshot holds the dataset's own buckets from ``tiers.recent_from`` (48 hours), hourly buckets
from ``tiers.hourly_from`` (35 days) and daily buckets for everything (see ``data_sources.poller``).
``history`` stitches them: each part of the range comes from the finest tier that holds it, and each
row says how long its bucket is. Unit codes stay as the warehouse wrote them unless ``crosswalk`` is
given, which maps old codes onto today's wards (rows with unknown codes are then left out).
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from config.datasets import Dataset
from data_sources.kpis import kpi_measure_agg
from data_sources.poller import BUCKET, DAY, ENTITY, UNIT, to_epoch
from data_sources.snapshots import Snapshot

BUCKET_SECONDS = "bucket_seconds"


def history(
    dataset: Dataset,
    snapshot: Snapshot,
    start: datetime,
    end: datetime,
    *,
    measures: list[str] | None = None,
    crosswalk: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Rollup rows with buckets starting in [start, end) (naive local times), finest tier first.

    Columns: ``bucket`` (epoch seconds of local wall time), ``bucket_seconds``, ``unit`` (raw code, or
    the current ward when ``crosswalk`` is given), then the measures (default: all of the dataset's).
    Tier boundaries are whole days and hours, so the parts never overlap and nothing is counted
    twice; buckets are whole, so the first one may start before ``start`` (a day holding it).
    """
    tiers = snapshot.meta.get("tiers") or {}
    recent_from = tiers.get("recent_from")
    hourly_from = tiers.get("hourly_from")
    hour = int(tiers.get("hour_seconds") or 3600)
    names = measures or [m.name for m in dataset.measures]
    first, last = to_epoch(start), to_epoch(end)
    parts = []
    if recent_from is None or hourly_from is None:
        return pd.DataFrame(columns=[BUCKET, BUCKET_SECONDS, UNIT, *names])
    spans = (
        ("daily", DAY, None, hourly_from),
        ("hourly", hour, hourly_from, recent_from),
        ("recent", dataset.bucket_seconds, recent_from, None),
    )
    for frame_name, size, lower, upper in spans:
        low = max(first - first % size, lower) if lower is not None else first - first % size
        high = min(last, upper) if upper is not None else last
        if low >= high:
            continue
        frame = snapshot.frame(frame_name)
        if frame.empty:
            continue
        frame = frame.loc[(frame[BUCKET] >= low) & (frame[BUCKET] < high)]
        present = [m for m in names if m in frame]
        frame = frame[[BUCKET, UNIT, *present]].drop(columns=[ENTITY], errors="ignore")
        parts.append(frame.assign(**{BUCKET_SECONDS: size}))
    if not parts:
        return pd.DataFrame(columns=[BUCKET, BUCKET_SECONDS, UNIT, *names])
    rows = pd.concat(parts, ignore_index=True)
    if crosswalk is not None:
        rows = rows.assign(**{UNIT: rows[UNIT].map(crosswalk)}).dropna(subset=[UNIT])
    how = {m: kpi_measure_agg(dataset, m) for m in names if m in rows}
    grouped = rows.groupby([BUCKET, BUCKET_SECONDS, UNIT], sort=True).agg(how).reset_index()
    return grouped
