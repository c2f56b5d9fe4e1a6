"""KPI values per ward, per entity and for the province from integer-coded snapshot frames.

After a poll, hundreds of rules read a dozen KPIs of one snapshot per ward, per entity and for the
province. The frames are small (hundreds to thousands of rows), so what cost time in pandas was the
per-call overhead (a groupby, a string ``map`` of unit codes, a ``.loc``: 2–10 ms per KPI and
grouping). Here each frame is coded once per snapshot: rows of unknown unit codes left out, the
current ward and the entity of each row as small integers, buckets and measures as float64 arrays
(``CodedFrame``). Every KPI is then ``np.bincount`` sums (additive kinds), a per-key maximum (the
newest bucket of the "latest" kinds) or one sort (exact medians). The province value of an additive
kind is the sum of the per-ward sums; medians and "latest" kinds are computed over all rows again,
since neither is additive.

The numbers equal ``data_sources.kpis.compute_kpi`` for one ward, one entity's rows or the whole
province (``tests/test_alert_values.py`` checks every configured KPI and ward).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from config.datasets import Dataset, Kpi
from data_sources.admin_units import REFORM_EPOCH
from data_sources.alerts.model import HOURLY_ENTITY_WINDOWS
from data_sources.kpis import (
    HOUR,
    LATEST_HORIZON_FACTOR,
    frame_bucket_seconds,
    kpi_measure_agg,
    window_frame,
    window_start,
)
from data_sources.poller import BUCKET, DURATION_END, DURATION_NAME, DURATION_VALUE, ENTITY, UNIT, to_epoch
from data_sources.snapshots import Snapshot

PER_WARD = "ward"
PER_ENTITY = "entity"
PER_PROVINCE = "province"
ADDITIVE_KINDS = ("sum", "ratio", "mean", "state", "state_ratio")
LATEST_KINDS = ("latest_ratio", "latest_max")
GROUPED_KINDS = (*ADDITIVE_KINDS, *LATEST_KINDS, "median")
HOURLY_ENTITY = "hourly_entity"
"""The hourly rollup per entity (35 days) that ``by_entity`` datasets publish: per-entity previews replay it,
and per-entity values of 7d/30d KPIs read it."""


@dataclass
class CodedFrame:
    """A snapshot frame's rows of known wards: ward and entity codes, buckets, measures read on demand.

    ``ward`` indexes ``GroupedValues.ward_names``; ``entity`` indexes ``entity_names`` (sorted, -1 for a
    missing entity) and is None when the frame has no entity column.
    """

    source: pd.DataFrame
    rows: np.ndarray
    ward: np.ndarray
    bucket: np.ndarray | None
    entity: np.ndarray | None
    entity_names: list[str]
    _columns: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ward)

    def column(self, name: str) -> np.ndarray | None:
        """A measure as float64 (NaN for missing values); None when the frame lacks it."""
        if name not in self._columns:
            if name not in self.source:
                return None
            values = self.source[name].to_numpy(dtype="float64", na_value=np.nan)
            self._columns[name] = values[self.rows]
        return self._columns[name]

    def equals(self, name: str, value: str) -> np.ndarray:
        """True where the text column ``name`` holds ``value``."""
        key = f"{name}={value}"
        if key not in self._columns:
            if name in self.source:
                self._columns[key] = (self.source[name].to_numpy(dtype=object) == value)[self.rows]
            else:
                self._columns[key] = np.zeros(len(self), dtype=bool)
        return self._columns[key]


def code_frame(frame: pd.DataFrame, crosswalk: Mapping[str, str], ward_index: Mapping[str, int]) -> CodedFrame:
    """Code one frame: the current ward of each row as ``kpis.with_wards`` reads it (a code that changed
    meaning in 2025 read by the row's bucket), rows of unknown codes left out."""
    bucket_all = frame[BUCKET].to_numpy(dtype="int64") if BUCKET in frame and len(frame) else None
    if frame.empty or UNIT not in frame:
        empty = np.empty(0, dtype=np.int64)
        return CodedFrame(frame, empty, empty, None if bucket_all is None else empty, None, [])
    units, uniques = pd.factorize(frame[UNIT])
    current = np.array([ward_index.get(crosswalk.get(u), -1) for u in uniques] + [-1], dtype=np.int64)
    ward = current[units]  # a missing unit code (-1) takes the trailing -1
    dated = getattr(crosswalk, "pre_reform", None)
    if dated and bucket_all is not None:
        before = np.array([ward_index.get(dated.get(u), -1) for u in uniques] + [-1], dtype=np.int64)[units]
        ward = np.where((bucket_all < REFORM_EPOCH) & (before >= 0), before, ward)
    rows = np.flatnonzero(ward >= 0)
    entity, entity_names = None, []
    if ENTITY in frame:
        codes, names = pd.factorize(frame[ENTITY], sort=True)
        entity, entity_names = codes[rows].astype(np.int64), [str(name) for name in names]
    return CodedFrame(
        source=frame,
        rows=rows,
        ward=ward[rows],
        bucket=None if bucket_all is None else bucket_all[rows],
        entity=entity,
        entity_names=entity_names,
    )


def _ratio(numerator: np.ndarray, denominator: np.ndarray, scale: float) -> np.ndarray:
    """numerator / denominator * scale; NaN where the denominator is 0 (as ``kpis._ratio``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        result = numerator / np.where(denominator != 0, denominator, np.nan)
    result[np.isinf(result)] = np.nan
    return result * scale


def _aggregate(how: str, groups: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """pandas' groupby ``sum``/``min``/``max`` per group: NaN skipped (sum of nothing 0, min/max NaN)."""
    if how == "sum":
        return np.bincount(groups, weights=np.where(np.isnan(values), 0.0, values), minlength=size)
    out = np.full(size, np.nan)
    (np.fmin if how == "min" else np.fmax).at(out, groups, values)
    return out


def _medians(groups: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """The exact median per group (NaN for a group without values): one sort by (group, value)."""
    order = np.lexsort((values, groups))
    ordered = values[order]
    counts = np.bincount(groups, minlength=size)
    starts = np.cumsum(counts) - counts
    out = np.full(size, np.nan)
    has = counts > 0
    low = starts[has] + (counts[has] - 1) // 2
    high = starts[has] + counts[has] // 2
    out[has] = (ordered[low] + ordered[high]) / 2
    return out


@dataclass(frozen=True)
class Grouped:
    """One KPI per group: ``values`` (NaN: no value) and ``present`` (the group had rows that counted)."""

    values: np.ndarray
    present: np.ndarray


class GroupedValues:
    """Every grouped KPI of one snapshot at one moment, per ward, per entity and for the province.

    ``ward_names`` starts with ``ward_codes`` (so per-ward arrays align with them), followed by any
    other ward the crosswalk maps to: their rows count for the province as in ``compute_kpi``.
    """

    def __init__(
        self,
        dataset: Dataset,
        snapshot: Snapshot,
        now: datetime,
        crosswalk: Mapping[str, str],
        ward_codes: Sequence[str],
    ) -> None:
        self.dataset = dataset
        self.snapshot = snapshot
        self.now = now
        self.crosswalk = crosswalk
        dated = getattr(crosswalk, "pre_reform", None) or {}
        self.ward_names = list(dict.fromkeys([*ward_codes, *crosswalk.values(), *dated.values()]))
        self._ward_index = {code: i for i, code in enumerate(self.ward_names)}
        self._frames: dict[str, CodedFrame] = {}
        self._sums: dict[tuple[str, str | None, str, str], tuple[np.ndarray, np.ndarray]] = {}

    def frame(self, name: str) -> CodedFrame:
        """The snapshot frame ``name`` coded (once per snapshot)."""
        if name not in self._frames:
            frame = self.snapshot.frames.get(name)  # read only: no copy (``Snapshot.frame`` copies)
            frame = pd.DataFrame() if frame is None else frame
            self._frames[name] = code_frame(frame, self.crosswalk, self._ward_index)
        return self._frames[name]

    def _groups(self, coded: CodedFrame, per: str) -> tuple[np.ndarray, int, list[str]]:
        """Each row's group (-1: counts for none), the number of groups and their names."""
        if per == PER_WARD:
            return coded.ward, len(self.ward_names), self.ward_names
        if per == PER_ENTITY:
            if coded.entity is None:
                return np.full(len(coded), -1, dtype=np.int64), 0, []
            return coded.entity, len(coded.entity_names), coded.entity_names
        return np.zeros(len(coded), dtype=np.int64), 1, [PER_PROVINCE]

    def _frame_name(self, kpi: Kpi, per: str = PER_WARD) -> str:
        if kpi.kind in ("state", "state_ratio"):
            return "state"
        if kpi.kind in LATEST_KINDS:
            return "recent"
        if kpi.kind == "median":
            return "durations"
        if per == PER_ENTITY and kpi.window in HOURLY_ENTITY_WINDOWS:
            return HOURLY_ENTITY  # per entity the hourly rollup lives in its own frame (``by_entity`` datasets)
        return window_frame(kpi.window)

    def values(self, kpi: Kpi, per: str) -> tuple[list[str], Grouped]:
        """The KPI per ward (aligned with ``ward_names``), per entity or for the province (one group)."""
        if kpi.kind not in GROUPED_KINDS:
            raise ValueError(f"KPI {kpi.id!r} ({kpi.kind}) is not computed by groups")
        if per == PER_PROVINCE and kpi.kind in ADDITIVE_KINDS:
            return [PER_PROVINCE], self._additive(kpi, PER_WARD, total=True)
        names = self._groups(self.frame(self._frame_name(kpi, per)), per)[2]
        if kpi.kind in ADDITIVE_KINDS:
            return names, self._additive(kpi, per)
        if kpi.kind == "median":
            return names, self._median(kpi, per)
        return names, self._latest(kpi, per)

    def province(self, kpi: Kpi) -> float | None:
        """The province-wide value."""
        value = self.values(kpi, PER_PROVINCE)[1].values[0]
        return None if np.isnan(value) else float(value)

    def _inside(self, coded: CodedFrame, name: str, window: str | None) -> np.ndarray | None:
        """Rows of the frame ``name`` inside the window (None: every row)."""
        if name == "state" or window is None:
            return None
        size = HOUR if name == HOURLY_ENTITY else frame_bucket_seconds(self.dataset, name)
        start = window_start(window, self.now, size)
        if start is None or coded.bucket is None:
            return None
        return coded.bucket >= start

    def _sum(self, name: str, window: str | None, per: str, measure: str) -> tuple[np.ndarray, np.ndarray]:
        """(sum of a measure per group over the window's rows, rows per group); NaN counts as 0."""
        key = (name, window, per, measure)
        if key not in self._sums:
            coded = self.frame(name)
            groups, size, _ = self._groups(coded, per)
            inside = self._inside(coded, name, window)
            keep = groups >= 0 if inside is None else inside & (groups >= 0)
            counts = np.bincount(groups[keep], minlength=size)
            values = coded.column(measure)
            if values is None:
                sums = np.zeros(size)
            else:
                kept = values[keep]
                sums = np.bincount(groups[keep], weights=np.where(np.isnan(kept), 0.0, kept), minlength=size)
            self._sums[key] = (sums, counts)
        return self._sums[key]

    def _additive(self, kpi: Kpi, per: str, *, total: bool = False) -> Grouped:
        """Sums, ratios and means over the window (or the current state counts), summed per group; the
        province (``total``) from the per-ward sums."""
        name = self._frame_name(kpi, per)
        window = None if name == "state" else kpi.window
        found = [self._sum(name, window, per, m) for m in kpi.measures]
        sums = [s for s, _ in found]
        present = found[0][1] > 0
        if total:
            sums = [np.array([s.sum()]) for s in sums]
            present = np.array([present.any()])
        if kpi.kind in ("sum", "state"):
            return Grouped(sums[0].astype("float64") * kpi.scale, present)
        return Grouped(_ratio(sums[0], sums[1], kpi.scale), present)

    def _median(self, kpi: Kpi, per: str) -> Grouped:
        """Exact medians of a duration over the records that ended in the window (``kpis.duration_values``)."""
        coded = self.frame("durations")
        groups, size, _ = self._groups(coded, per)
        if not len(coded):
            return Grouped(np.full(size, np.nan), np.zeros(size, dtype=bool))
        ends = coded.column(DURATION_END)
        start = window_start(kpi.window, self.now, frame_bucket_seconds(self.dataset, window_frame(kpi.window)))
        inside = coded.equals(DURATION_NAME, kpi.measures[0]) & (ends <= to_epoch(self.now)) & (groups >= 0)
        if start is not None:
            inside &= ends >= start
        values = coded.column(DURATION_VALUE)
        inside &= ~np.isnan(values)
        medians = _medians(groups[inside], values[inside], size)
        return Grouped(medians * kpi.scale, ~np.isnan(medians))

    def _latest(self, kpi: Kpi, per: str) -> Grouped:
        """Each entity's newest bucket that is recent enough to be "now" (overall newest without entities),
        then the ratio of the summed measures, or the largest per-entity value, per group."""
        coded = self.frame("recent")
        groups, size, _ = self._groups(coded, per)
        nothing = Grouped(np.full(size, np.nan), np.zeros(size, dtype=bool))
        if not len(coded) or coded.bucket is None:
            return nothing
        dataset = self.dataset
        horizon = to_epoch(self.now) - LATEST_HORIZON_FACTOR * max(dataset.expected_seconds, dataset.bucket_seconds)
        keep = (coded.bucket >= horizon) & (groups >= 0)
        by_entity = coded.entity is not None and per != PER_ENTITY
        if by_entity:  # newest per (group, entity); rows without an entity belong to none (pandas drops NA keys)
            keep &= coded.entity >= 0
        rows = np.flatnonzero(keep)
        if not len(rows):
            return nothing
        keys = groups[rows] * (len(coded.entity_names) + 1) + (coded.entity[rows] if by_entity else 0)
        unique_keys, inverse = np.unique(keys, return_inverse=True)
        buckets = coded.bucket[rows]
        newest = np.full(len(unique_keys), np.iinfo(np.int64).min)
        np.maximum.at(newest, inverse, buckets)
        latest = buckets == newest[inverse]
        rows, inverse = rows[latest], inverse[latest]
        measures = list(kpi.measures)
        columns = [coded.column(m) for m in measures]
        if any(c is None for c in columns):
            raise KeyError(f"the recent frame of {dataset.id!r} lacks a measure of {kpi.id!r}")
        row_groups = groups[rows]
        if kpi.kind == "latest_ratio":
            present = np.bincount(row_groups, minlength=size) > 0
            sums = [_aggregate("sum", row_groups, c[rows], size) for c in columns]
            return Grouped(_ratio(sums[0], sums[1], kpi.scale), present)
        # latest_max: one value per (group, entity) key (one bucket each), then the largest per group
        how = "sum" if len(measures) == 2 else kpi_measure_agg(dataset, measures[0])
        per_key = [_aggregate(how, inverse, c[rows], len(unique_keys)) for c in columns]
        with np.errstate(divide="ignore", invalid="ignore"):
            per_value = per_key[0] / per_key[1] if len(per_key) == 2 else per_key[0]
        per_value[np.isinf(per_value)] = np.nan
        key_groups = unique_keys // (len(coded.entity_names) + 1)
        largest = _aggregate("max", key_groups, per_value, size)
        return Grouped(largest * kpi.scale, ~np.isnan(largest))  # groups whose every value is NaN drop out
