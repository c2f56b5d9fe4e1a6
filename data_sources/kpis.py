"""KPI figures from snapshot frames: pure functions, the same for tiles, cards, maps and tests.

Time windows are whole buckets of the frame they read, in Asia/Ho_Chi_Minh local time:
``today`` starts at local midnight, ``24h`` reads the fine buckets of the last 48 hours,
``7d``/``30d`` read hourly rollups, ``all`` reads daily rollups. Rows whose unit code is neither a
current ward nor a pre-2025 one are left out of every figure (they are counted on Data health).

Kinds (docs/configuration.md has the configuration side):

- ``sum``, ``ratio``, ``mean``: additive measures over the window; ``state``, ``state_ratio``: the
  current-state counts of the last poll; ``latest_ratio``, ``latest_max``: each entity's newest
  bucket that is recent enough to be "now" (``LATEST_HORIZON_FACTOR``).
- ``median``: the exact median of a declared duration (processing days, hours to resolve) over the
  records whose end falls in the window; the poller keeps every such record's duration for 35 days
  (frame ``durations``), so any ward selection and window gets an exact median, not an estimate.
- ``versus``: a figure now and its baseline. ``same_hour_last_week``: the hourly rollup of the hour
  holding ``now`` (so far; the previous hour while the current one has no rows) against the same
  clock hour 7 days earlier. ``same_time_7d_mean``: today from midnight up to the hour of ``now``
  against the mean of the same span on each of the 7 previous days. ``KpiFigure.value`` is the
  current figure, ``baseline`` the comparison and ``change`` the relative change in percent.
- ``entity_max``, ``entity_count``: one value per entity "now" (a ratio or a measure of its newest
  bucket, or the VN_AQI of an air station, ``station_aqi``), then the largest with its entity, or how
  many entities are above/below a threshold: a number, or an attribute of each entity's reference
  row (``@alert_level_1``). ``entity_values`` gives the per-entity values for map markers.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from config.datasets import Dataset, Kpi
from data_sources import aqi
from data_sources.admin_units import REFORM_EPOCH
from data_sources.clock import local_midnight
from data_sources.poller import BUCKET, DURATION_END, DURATION_NAME, DURATION_VALUE, ENTITY, UNIT, to_epoch
from data_sources.snapshots import Snapshot

WARD = "ward"
WINDOW_FRAMES = {"today": "recent", "24h": "recent", "7d": "hourly", "30d": "hourly", "all": "daily"}
WINDOW_SECONDS = {"24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
LATEST_HORIZON_FACTOR = 3
"""A sensor's latest bucket counts as "now" while it is at most this many expected intervals old."""


HOUR = 3600
DAY = 86400
WEEK = 7 * DAY
THRESHOLD_OPERATORS = {"gt": operator.gt, "ge": operator.ge, "lt": operator.lt, "le": operator.le}


@dataclass(frozen=True)
class KpiFigure:
    """A KPI value with what a tile needs around it.

    ``entity``: the entity of an ``entity_max``/``latest_max`` value (the worst station);
    ``entities``: those counted by ``entity_count``; ``baseline``/``change`` (percent): ``versus``.
    """

    kpi: Kpi
    value: float | None
    entity: str | None = None
    baseline: float | None = None
    change: float | None = None
    entities: tuple[str, ...] = ()


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
    """Add the current ward of each row's unit code; unknown codes get NA. A code that changed meaning
    in 2025 (``Crosswalk.pre_reform``) is read by the row's bucket: before 1 July 2025, its old ward."""
    if frame.empty:
        return frame.assign(**{WARD: pd.Series(dtype="string")})
    wards = frame[UNIT].map(crosswalk).astype("string")
    dated = getattr(crosswalk, "pre_reform", None)
    if dated and BUCKET in frame:
        before = frame[UNIT].map(dated).astype("string")
        wards = before.where((frame[BUCKET].to_numpy() < REFORM_EPOCH) & before.notna().to_numpy(), wards)
    return frame.assign(**{WARD: wards})


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
    if kpi.kind == "median":
        return _median(dataset, kpi, snapshot, now, crosswalk, wards, window)
    if kpi.kind == "versus":
        return _versus(dataset, kpi, snapshot, now, crosswalk, wards)
    if kpi.kind in ("entity_max", "entity_count"):
        return _entity_kpi(dataset, kpi, snapshot, now, crosswalk, wards)
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


# --- medians -------------------------------------------------------------------------------------
def duration_values(
    dataset: Dataset,
    duration_name: str,
    snapshot: Snapshot,
    now: datetime,
    crosswalk: dict[str, str],
    *,
    window: str,
    wards: frozenset[str] | None = None,
) -> pd.Series:
    """Durations (in the declaration's time unit) of the records that ended inside the window."""
    frame = snapshot.frame("durations")
    if frame.empty:
        return pd.Series(dtype="float64")
    frame = _select(frame.loc[frame[DURATION_NAME] == duration_name], crosswalk, wards, None)
    return durations_in_window(dataset, frame, now, window)


def durations_in_window(dataset: Dataset, durations: pd.DataFrame, now: datetime, window: str) -> pd.Series:
    """The values of already selected duration rows (one name, some wards) that ended inside the window."""
    if durations.empty:
        return pd.Series(dtype="float64")
    start = window_start(window, now, frame_bucket_seconds(dataset, window_frame(window)))
    ends = durations[DURATION_END]
    inside = ends <= to_epoch(now)
    if start is not None:
        inside &= ends >= start
    return durations.loc[inside, DURATION_VALUE].astype("float64")


def median_figure(kpi: Kpi, values: pd.Series) -> KpiFigure:
    """The median KPI over some durations (None without any)."""
    if values.empty:
        return KpiFigure(kpi, None)
    return KpiFigure(kpi, float(np.median(values.to_numpy())) * kpi.scale)


def _median(
    dataset: Dataset,
    kpi: Kpi,
    snapshot: Snapshot,
    now: datetime,
    crosswalk: dict[str, str],
    wards: frozenset[str] | None,
    window: str,
) -> KpiFigure:
    values = duration_values(dataset, kpi.measures[0], snapshot, now, crosswalk, window=window, wards=wards)
    return median_figure(kpi, values)


# --- comparisons ---------------------------------------------------------------------------------
def versus_spans(kpi: Kpi, buckets: np.ndarray, now: datetime) -> tuple[tuple[int, int], list[tuple[int, int]]]:
    """The current span and the baseline spans as half-open ranges of hourly bucket starts (``buckets``: the
    bucket starts of the rows compared)."""
    now_epoch = to_epoch(now)
    hour = now_epoch - now_epoch % HOUR
    if kpi.baseline == "same_hour_last_week":
        if len(buckets) and not (buckets == hour).any():
            hour -= HOUR  # the hour has just begun: compare the last hour with data
        return (hour, hour + HOUR), [(hour - WEEK, hour - WEEK + HOUR)]
    midnight = to_epoch(local_midnight(now))
    current = (midnight, hour + HOUR)
    return current, [(midnight - k * DAY, hour + HOUR - k * DAY) for k in range(1, 8)]


def _versus(
    dataset: Dataset,
    kpi: Kpi,
    snapshot: Snapshot,
    now: datetime,
    crosswalk: dict[str, str],
    wards: frozenset[str] | None,
) -> KpiFigure:
    return versus_figure(dataset, kpi, _select(snapshot.frame("hourly"), crosswalk, wards, None), now)


def versus_figure(dataset: Dataset, kpi: Kpi, hourly: pd.DataFrame, now: datetime) -> KpiFigure:
    """A comparison KPI over already selected hourly rows (current wards, some of them)."""
    return versus_of_arrays(kpi, *versus_arrays(kpi, hourly), now)


def versus_arrays(kpi: Kpi, hourly: pd.DataFrame) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """What ``versus_of_arrays`` reads of hourly rows: their bucket starts and the KPI's measures (None: a
    measure the rows lack; without rows, no bucket and no measure)."""
    if hourly.empty:
        return np.array([], dtype="int64"), [None for _ in kpi.measures]
    columns = [hourly[m].to_numpy(dtype="float64", na_value=np.nan) if m in hourly else None for m in kpi.measures]
    return hourly[BUCKET].to_numpy(), columns


def versus_of_arrays(kpi: Kpi, buckets: np.ndarray, measures: list[np.ndarray | None], now: datetime) -> KpiFigure:
    """``versus_figure`` from the rows' bucket starts and measure values (None: a measure the rows lack);
    a span's sum skips missing values, as pandas sums do."""
    current, baselines = versus_spans(kpi, buckets, now)

    def figure(span: tuple[int, int]) -> float | None:
        inside = (buckets >= span[0]) & (buckets < span[1])
        if not inside.any():
            return None
        sums = [np.nansum(values[inside]) if values is not None else 0.0 for values in measures]
        if len(sums) == 1:
            return float(sums[0]) * kpi.scale
        return _ratio(sums[0], sums[1], kpi.scale)

    value = figure(current)
    if value is None and len(kpi.measures) == 1:
        value = 0.0  # nothing counted yet today is a count of zero
    figures = [figure(span) for span in baselines]
    if len(kpi.measures) == 1:
        figures = [0.0 if f is None else f for f in figures]
    known = [f for f in figures if f is not None]
    baseline = float(np.mean(known)) if known else None
    change = None
    if value is not None and baseline:
        change = (value - baseline) / baseline * 100
    return KpiFigure(kpi, value, baseline=baseline, change=change)


# --- entities ------------------------------------------------------------------------------------
def station_aqi(
    dataset: Dataset, snapshot: Snapshot, now: datetime, crosswalk: dict[str, str], wards: frozenset[str] | None = None
) -> pd.DataFrame:
    """VN_AQI of every station now: entity, ward, value (the AQI), dominant, category, colour.

    c1 is the hour holding ``now``; hourly means are the rollup's sum/count of the pollutant (values
    outside their valid range are already left out). Stations without an index are left out.
    """
    return station_aqi_of(dataset, _select(snapshot.frame("recent"), crosswalk, wards, None), now)


AQI_COLUMNS = ["entity", "ward", "value", "dominant", "category", "colour"]


def station_aqi_of(dataset: Dataset, recent: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """``station_aqi`` over already selected fine rows (current wards, some of them).

    One grouped sum per station and hour, then the index per station from plain arrays.
    """
    if recent.empty or ENTITY not in recent:
        return pd.DataFrame(columns=AQI_COLUMNS)
    now_epoch = to_epoch(now)
    hour = now_epoch - now_epoch % HOUR
    hours = [hour - i * HOUR for i in range(aqi.NOWCAST_HOURS)]
    frame = recent.loc[recent[BUCKET].isin(hours)]
    if frame.empty:
        return pd.DataFrame(columns=AQI_COLUMNS)
    columns = list(dict.fromkeys(c for pair in dataset.aqi.values() for c in pair))
    sums = frame.groupby([ENTITY, BUCKET], sort=True)[columns].sum()
    wards = frame.groupby(ENTITY, sort=True)[WARD].nth(-1)  # each station's ward on its last row
    ward_of = dict(zip(frame.loc[wards.index, ENTITY].astype(str), wards, strict=True))
    position = {bucket: i for i, bucket in enumerate(hours)}
    values = sums.to_numpy(dtype="float64")
    index = {name: i for i, name in enumerate(columns)}
    rows = []
    stations = sums.index.get_level_values(0)
    buckets = sums.index.get_level_values(1)
    for entity, where in pd.Series(range(len(sums)), index=stations).groupby(level=0, sort=True):
        means: dict[str, list[float | None]] = {p: [None] * len(hours) for p in dataset.aqi}
        for row in where.to_numpy():
            slot = position[int(buckets[row])]
            for pollutant, (sum_name, count_name) in dataset.aqi.items():
                count = values[row, index[count_name]]
                if count > 0:
                    means[pollutant][slot] = float(values[row, index[sum_name]] / count)
        result = aqi.hourly_aqi(
            {p: v[0] for p, v in means.items() if p not in aqi.PARTICULATES},
            {p: v for p, v in means.items() if p in aqi.PARTICULATES},
        )
        if result.aqi is None:
            continue
        ward = ward_of[str(entity)]
        rows.append([str(entity), ward, float(result.aqi), result.dominant, result.category.id, result.category.colour])
    return pd.DataFrame(rows, columns=AQI_COLUMNS)


def entity_values(
    dataset: Dataset,
    kpi: Kpi,
    snapshot: Snapshot,
    now: datetime,
    crosswalk: dict[str, str],
    *,
    wards: frozenset[str] | None = None,
) -> pd.DataFrame:
    """One value per entity "now" for an entity KPI: entity, ward, value, plus the reference columns
    (name, lat, lon, attributes) when the snapshot has them. The value is unscaled."""
    recent = _select(snapshot.frame("recent"), crosswalk, wards, None)
    return entity_values_of(dataset, kpi, recent, snapshot.frames.get("entities"), now)


def entity_values_of(
    dataset: Dataset, kpi: Kpi, recent: pd.DataFrame, entities: pd.DataFrame | None, now: datetime
) -> pd.DataFrame:
    """``entity_values`` over already selected fine rows (current wards, some of them)."""
    if kpi.value == "aqi":
        values = station_aqi_of(dataset, recent, now)
    else:
        frame = _latest_rows(dataset, recent, now)
        if frame.empty or ENTITY not in frame:
            values = pd.DataFrame(columns=["entity", "ward", "value"])
        else:
            how = {m: kpi_measure_agg(dataset, m) for m in kpi.measures} | {WARD: "last"}
            grouped = frame.groupby(ENTITY).agg(how)
            if len(kpi.measures) == 2:
                denominator = grouped[kpi.measures[1]].replace(0, np.nan)
                value = grouped[kpi.measures[0]] / denominator
            else:
                value = grouped[kpi.measures[0]]
            values = pd.DataFrame(
                {"entity": grouped.index.astype(str), "ward": grouped[WARD].to_numpy(), "value": value.to_numpy()}
            ).dropna(subset=["value"])
    if entities is not None and not entities.empty:
        entities = entities.drop(columns=[c for c in (UNIT,) if c in entities]).astype({"entity": str})
        values = values.merge(entities, on="entity", how="left")
    return values.reset_index(drop=True)


def _entity_kpi(
    dataset: Dataset,
    kpi: Kpi,
    snapshot: Snapshot,
    now: datetime,
    crosswalk: dict[str, str],
    wards: frozenset[str] | None,
) -> KpiFigure:
    return entity_figure(kpi, entity_values(dataset, kpi, snapshot, now, crosswalk, wards=wards))


def entity_figure(kpi: Kpi, values: pd.DataFrame) -> KpiFigure:
    """An ``entity_max``/``entity_count`` KPI from the per-entity values (``entity_values``)."""
    if kpi.kind == "entity_max":
        if values.empty:
            return KpiFigure(kpi, None)
        top = values.sort_values(["value", "entity"], ascending=[False, True]).iloc[0]
        return KpiFigure(kpi, float(top["value"]) * kpi.scale, str(top["entity"]))
    attribute = kpi.threshold_attribute
    if attribute is not None:
        threshold = pd.to_numeric(values[attribute], errors="coerce") if attribute in values else np.nan
    else:
        threshold = kpi.threshold
    above = values.loc[THRESHOLD_OPERATORS[kpi.op](values["value"], threshold)] if not values.empty else values
    return KpiFigure(kpi, float(len(above)), entities=tuple(sorted(above["entity"].astype(str))))


CONGESTED_BELOW = 0.5
"""A segment is congested when its speed is below this share of its free-flow speed."""
SLOW_BELOW = 0.75


def congestion_class(speed_share: float | None) -> str | None:
    """'free', 'slow' or 'congested' for a segment's speed as a share of free flow (None: no data)."""
    if speed_share is None or pd.isna(speed_share):
        return None
    if speed_share < CONGESTED_BELOW:
        return "congested"
    return "slow" if speed_share < SLOW_BELOW else "free"


def alert_level(value: float | None, levels: tuple[float, ...]) -> int:
    """How many of the ascending ``levels`` (flood alert I/II/III) ``value`` has reached: 0..len(levels)."""
    if value is None or pd.isna(value):
        return 0
    return sum(value >= level for level in levels if not pd.isna(level))


def positions(
    snapshot: Snapshot,
    now: datetime,
    crosswalk: dict[str, str],
    *,
    wards: frozenset[str] | None = None,
    window: str | None = None,
) -> pd.DataFrame:
    """Rows of the dataset's ``positions`` (open reports, recent incidents): key, unit, time (epoch of
    the event time), lat, lon, the declared columns and ward; optionally only those of a window."""
    frame = snapshot.frame("positions")
    if frame.empty:
        return frame
    frame = _select(frame, crosswalk, wards, None)
    if window in WINDOW_SECONDS:
        frame = frame.loc[frame["time"] >= to_epoch(now) - WINDOW_SECONDS[window]]
    elif window == "today":
        frame = frame.loc[frame["time"] >= to_epoch(local_midnight(now))]
    return frame.reset_index(drop=True)


# --- breakdown by entity -------------------------------------------------------------------------
def kpi_by_entity(
    dataset: Dataset,
    kpi: Kpi,
    snapshot: Snapshot,
    now: datetime,
    crosswalk: dict[str, str],
    *,
    wards: frozenset[str] | None = None,
    window: str | None = None,
) -> pd.Series:
    """A sum/ratio/mean/state KPI per entity (e.g. per procedure), for datasets with ``by_entity``."""
    window = window or kpi.window
    if kpi.kind in ("state", "state_ratio"):
        frame = _select(snapshot.frame("state"), crosswalk, wards, None)
    elif kpi.kind in ("sum", "ratio", "mean"):
        start = window_start(window, now, HOUR)
        frame = _select(snapshot.frame("hourly_entity"), crosswalk, wards, start)
    else:
        raise ValueError(f"KPI {kpi.id!r} ({kpi.kind}) has no breakdown by entity")
    if frame.empty or ENTITY not in frame:
        return pd.Series(dtype="float64", name=kpi.id)
    sums = frame.groupby(ENTITY)[[m for m in kpi.measures if m in frame]].sum()
    if kpi.kind in ("sum", "state"):
        values = sums[kpi.measures[0]] * kpi.scale
    else:
        values = sums[kpi.measures[0]] / sums[kpi.measures[1]].replace(0, np.nan) * kpi.scale
    values.index = values.index.astype(str)
    return values.astype("float64").rename(kpi.id)
