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
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from config.datasets import WINDOWS, Dataset, Kpi
from data_sources.clock import local_midnight
from data_sources.kpis import (
    HOUR,
    LATEST_HORIZON_FACTOR,
    WARD,
    KpiFigure,
    compute_kpi,
    durations_in_window,
    entity_figure,
    entity_values_of,
    frame_bucket_seconds,
    kpi_measure_agg,
    median_figure,
    versus_arrays,
    versus_figure,
    versus_of_arrays,
    window_frame,
    window_start,
)
from data_sources.poller import BUCKET, DURATION_END, DURATION_NAME, ENTITY, HOURLY_SECONDS, UNIT, to_epoch
from data_sources.release import release_later
from data_sources.snapshots import Snapshot
from data_sources.ward_frames import map_to_wards

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


MAX_FIGURES = 512
"""Figures kept per dataset (least recently used dropped first): a dozen per page view, for every
window, ward and scope the users of a worker look at between two polls."""

EXPORTED = ("kpi", "per_ward", "series", "entities", "entity_latest")
"""Kinds of figures a poller can compute ahead for the web (``WardFrames.figures``)."""


class Deferred:
    """A figure computed ahead and stored encoded: decoded on first use."""

    def __init__(self, load: Callable[[], Any]) -> None:
        self.load = load


class WardFrames:
    """One snapshot version of a dataset as the figures read it, shared read-only by every request and user.

    * ``frame``: a frame with each row's current ward, rows of unknown units left out; ``mapped``: the
      same with every row (ward NA where unknown). Each frame is mapped on first use (a refresh over
      the last 7 days never maps the daily rollups), or taken as the poller published it already
      mapped (``published``: ``data_sources.ward_frames``), so a new version costs the web no mapping.
    * ``figure``: a figure computed once for this version and reused: keyed by what it is, its
      window, its wards and the part of "now" it depends on (``moment_key``), at most
      ``max_figures`` of them (least recently used dropped first). ``computed`` holds figures the
      poller computed ahead for this version (the same keys), so most refreshes compute nothing.
    """

    def __init__(
        self,
        snapshot: Snapshot,
        crosswalk: dict[str, str],
        published: Mapping[str, pd.DataFrame] | None = None,
        *,
        computed: Mapping[Hashable, Any] | None = None,
        last_end: int | None = None,
        max_figures: int = MAX_FIGURES,
        ward_lookup: Callable[[Hashable], Any] | None = None,
        ward_codes: tuple[str, ...] | None = None,
    ) -> None:
        self.snapshot = snapshot
        self.crosswalk = crosswalk
        self.published = published
        self.max_figures = max_figures
        self._last_end = last_end
        self._mapped: dict[str, pd.DataFrame] = {}
        self._frames: dict[str, pd.DataFrame] = {}
        self._figures: OrderedDict[Hashable, Any] = OrderedDict(computed or {})
        self._ward_rows: dict[str, dict[Any, np.ndarray]] = {}
        self._ward_lookup = ward_lookup
        self.ward_codes = ward_codes
        """The wards the poller computed every ward's values for (``kpi_per_ward``), None if it did not."""
        self._lock = threading.Lock()
        self.ahead = len(self._figures)
        """How many figures came computed ahead (by the poller)."""
        self.computed = 0
        """How many figures (of the kinds a poller computes ahead) this process computed itself."""
        self.looked_up = 0
        """How many figures of one ward this process took from the poller's per-ward figures."""

    def mapped(self, name: str) -> pd.DataFrame:
        """Every row of one frame, with its current ward when the frame has unit codes (shared: never modify)."""
        found = self._mapped.get(name)
        if found is not None:
            return found
        if self.published is not None and name in self.published:
            frame = self.published[name]
        else:
            frame = self.snapshot.frames.get(name, pd.DataFrame())
            if UNIT in frame and name != "entities":
                frame = map_to_wards(frame, self.crosswalk)
        with self._lock:
            self._mapped[name] = frame
        return frame

    def frame(self, name: str) -> pd.DataFrame:
        """One frame's rows of known wards (shared: never modify it), empty when the poller did not produce it."""
        found = self._frames.get(name)
        if found is not None:
            return found
        frame = self.mapped(name)
        if WARD in frame and name != "entities":
            frame = frame.loc[frame[WARD].notna()].reset_index(drop=True)
        with self._lock:
            self._frames[name] = frame
        return frame

    def rows(self, name: str, wards: frozenset[str] | None) -> pd.DataFrame:
        """One frame's rows in ``wards`` (all known wards for None), in the frame's order (shared: never modify);
        selected once per version and wards for every figure that reads them."""
        frame = self.frame(name)
        if wards is None or frame.empty:
            return frame
        if len(wards) == 1:  # one ward: its row positions from one grouping of the frame, shared by every ward
            (code,) = wards
            return self.figure(("rows", name, wards), lambda: frame.take(self.ward_rows(name).get(code, _NO_ROWS)))
        return self.figure(("rows", name, wards), lambda: frame.loc[frame[WARD].isin(wards)])

    def ward_rows(self, name: str) -> dict[Any, np.ndarray]:
        """Each ward's row positions in ``frame(name)``, ascending (the rows ``rows`` selects for that ward)."""
        found = self._ward_rows.get(name)
        if found is None:
            frame = self.frame(name)
            found = frame.groupby(WARD, sort=False, observed=True).indices if WARD in frame and len(frame) else {}
            with self._lock:
                self._ward_rows[name] = found
        return found

    def last_end(self) -> int | None:
        """The latest end of a ``durations`` record (None without any): medians at any later moment are equal."""
        if self._last_end is None:  # -1: no record
            ends = self.mapped("durations").get(DURATION_END)
            self._last_end = int(ends.max()) if ends is not None and len(ends) else -1
        return self._last_end if self._last_end >= 0 else None

    def figure(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The value stored under ``key`` for this version, computed by ``compute`` the first time."""
        with self._lock:
            found = self._figures.get(key, _MISSING)
            if found is not _MISSING:
                self._figures.move_to_end(key)
        if isinstance(found, Deferred):
            found = found.load()
            with self._lock:
                self._figures[key] = found
        if found is not _MISSING:
            return found
        if self._ward_lookup is not None:
            found = self._ward_lookup(key)
            if found is not _MISSING:
                with self._lock:
                    self.looked_up += 1
                    self._remember(key, found)
                return found
        value = compute()
        with self._lock:
            self.computed += isinstance(key, tuple) and bool(key) and key[0] in EXPORTED
            self._remember(key, value)
        return value

    def _remember(self, key: Hashable, value: Any) -> None:
        """Keep ``value`` under ``key``, dropping the least recently used beyond ``max_figures`` (lock held)."""
        self._figures[key] = value
        self._figures.move_to_end(key)
        while len(self._figures) > self.max_figures:
            self._figures.popitem(last=False)

    def figures(self) -> dict[Hashable, Any]:
        """The figures kept that a poller can publish (``EXPORTED`` kinds), decoded."""
        with self._lock:
            items = list(self._figures.items())
        return {
            key: value
            for key, value in items
            if isinstance(key, tuple) and key and key[0] in EXPORTED and not isinstance(value, Deferred)
        }

    def __len__(self) -> int:
        """How many figures are kept."""
        return len(self._figures)


_MISSING = object()
MISSING = _MISSING
"""What a ``ward_lookup`` answers for a key it does not hold."""
_NO_ROWS = np.array([], dtype="intp")
_PREPARED: dict[str, WardFrames] = {}
_PREPARED_LOCK = threading.Lock()


def ward_frames(
    snapshot: Snapshot,
    crosswalk: dict[str, str],
    published: Mapping[str, pd.DataFrame] | None = None,
    **ahead: Any,
) -> WardFrames:
    """The snapshot's ``WardFrames``, built once per snapshot object; one kept per dataset (the newest
    version asked for), so memory stays bounded by the datasets and ``MAX_FIGURES``.

    ``published`` (the poller's ward-mapped frames of this very version) and ``ahead`` (``computed``
    figures and ``last_end``: ``data_sources.ward_frames``) are used by the first caller that builds it.
    """
    cached = _PREPARED.get(snapshot.dataset)
    if cached is not None and cached.snapshot is snapshot and cached.crosswalk is crosswalk:
        return cached
    prepared = WardFrames(snapshot, crosswalk, published, **ahead)
    with _PREPARED_LOCK:
        cached = _PREPARED.get(snapshot.dataset)
        if cached is not None and cached.snapshot is snapshot and cached.crosswalk is crosswalk:
            return cached
        replaced = _PREPARED.get(snapshot.dataset)
        _PREPARED[snapshot.dataset] = prepared
    release_later(replaced)  # an older version's figures are freed off this request
    return prepared


def _ratio(numerator: pd.Series, denominator: pd.Series, scale: float) -> pd.Series:
    values = numerator.astype("float64") / denominator.astype("float64").where(denominator != 0)
    return values.replace([np.inf, -np.inf], np.nan) * scale


def _scalar_ratio(numerator: float, denominator: float, scale: float) -> float | None:
    if denominator is None or denominator == 0 or pd.isna(denominator):
        return None
    return float(numerator) / float(denominator) * scale


def _horizon(dataset: Dataset, now: datetime) -> int:
    """Oldest bucket that still counts as "now" for latest values."""
    return to_epoch(now) - LATEST_HORIZON_FACTOR * max(dataset.expected_seconds, dataset.bucket_seconds)


def _windowed_rows(
    dataset: Dataset,
    prepared: WardFrames,
    now: datetime,
    window: str,
    span: Span | None,
    wards: frozenset[str] | None = None,
) -> pd.DataFrame:
    """Rows of the frame serving ``window`` (or the daily rows inside ``span``) in ``wards``."""
    if span is not None:
        frame = prepared.rows("daily", wards)
        if frame.empty:
            return frame
        return frame.loc[(frame[BUCKET] >= span[0]) & (frame[BUCKET] < span[1])]
    frame_name = window_frame(window)
    frame = prepared.rows(frame_name, wards)
    start = window_start(window, now, frame_bucket_seconds(dataset, frame_name))
    if start is None or frame.empty:
        return frame
    return frame.loc[frame[BUCKET] >= start]


def _named(kpi: Kpi, window: str, span: Span | None) -> str:
    """The named window a ``kpis`` figure uses: the page's, or the KPI's own under a custom span."""
    return kpi.window if span is not None or window not in WINDOWS else window


def moment_key(dataset: Dataset, kpi: Kpi, prepared: WardFrames, window: str, span: Span | None, now: datetime):
    """The part of ``now`` a figure of ``kpi`` depends on: two moments with the same key give the same
    figure from one snapshot version, so the figure is computed once for both.

    Windowed kinds: the window's first bucket (a custom span: nothing); latest and entity kinds: the
    first bucket still "now" (buckets start on multiples of their size: the poller floors them); the
    VN_AQI and comparisons: the hour and the local day; medians: the window's start, and ``now``
    itself only while some record ends later than it.
    """
    if kpi.kind in ("state", "state_ratio") or (span is not None and kpi.kind in WINDOWED_KINDS):
        return ()
    if kpi.kind in WINDOWED_KINDS:
        return (window_start(window, now, frame_bucket_seconds(dataset, window_frame(window))),)
    if kpi.kind == "median":
        start = window_start(window, now, frame_bucket_seconds(dataset, window_frame(window)))
        last_end, moment = prepared.last_end(), to_epoch(now)
        return (start, None if last_end is None or moment >= last_end else moment)
    if kpi.kind == "versus" or (kpi.kind in ENTITY_KINDS and kpi.value == "aqi"):
        return (to_epoch(now) // HOUR, to_epoch(local_midnight(now)))
    return (_latest_from(dataset, now),)


def _latest_from(dataset: Dataset, now: datetime) -> int:
    """The first fine bucket still "now" (``bucket >= horizon``), as a bucket start."""
    horizon, size = _horizon(dataset, now), dataset.bucket_seconds
    return -(-horizon // size) * size


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
    """The KPI over some wards: ``compute_kpi``'s figure, or over a custom day span for windowed kinds.

    Computed once per snapshot version, window, wards and moment (``moment_key``) for every caller.
    """
    prepared = ward_frames(snapshot, crosswalk)
    key = kpi_key(dataset, kpi, prepared, now, wards=wards, window=window, span=span)
    if kpi.kind not in GROUPED_KINDS:  # their own window or "now": a custom span does not apply
        named = _named(kpi, window, span)
        return prepared.figure(key, lambda: _other_value(dataset, kpi, prepared, now, wards, named))
    return prepared.figure(key, lambda: _grouped_value(dataset, kpi, prepared, now, wards, window, span))


def kpi_key(
    dataset: Dataset,
    kpi: Kpi,
    prepared: WardFrames,
    now: datetime,
    *,
    wards: frozenset[str] | None,
    window: str,
    span: Span | None = None,
) -> tuple:
    """What ``kpi_value`` keeps its figure under: equal keys, equal figures within one snapshot version."""
    if kpi.kind not in GROUPED_KINDS:
        named = _named(kpi, window, span)
        return ("kpi", kpi.id, named, wards, moment_key(dataset, kpi, prepared, named, None, now))
    return ("kpi", kpi.id, window, span, wards, moment_key(dataset, kpi, prepared, window, span, now))


def _other_value(
    dataset: Dataset, kpi: Kpi, prepared: WardFrames, now: datetime, wards: frozenset[str] | None, window: str
) -> KpiFigure:
    """Medians, comparisons and entity KPIs from the ward frames (``compute_kpi`` for other kinds)."""
    if kpi.kind == "median":
        return median_figure(
            kpi, durations_in_window(dataset, _durations(prepared, kpi.measures[0], wards), now, window)
        )
    if kpi.kind == "versus":
        return versus_figure(dataset, kpi, prepared.rows("hourly", wards), now)
    if kpi.kind in ENTITY_KINDS:
        return entity_figure(kpi, _entity_table(dataset, kpi, prepared, now, wards))
    return compute_kpi(dataset, kpi, prepared.snapshot, now, prepared.crosswalk, wards=wards, window=window)


def _durations(prepared: WardFrames, name: str, wards: frozenset[str] | None) -> pd.DataFrame:
    """The ``durations`` rows of one declared duration in some wards."""
    frame = prepared.rows("durations", wards)
    if frame.empty:
        return frame
    return frame.loc[frame[DURATION_NAME] == name]


def _entity_table(
    dataset: Dataset, kpi: Kpi, prepared: WardFrames, now: datetime, wards: frozenset[str] | None
) -> pd.DataFrame:
    """``kpis.entity_values`` from the ward frames, once per version, wards and moment (shared: never modify)."""
    what = ("aqi",) if kpi.value == "aqi" else tuple(kpi.measures)  # KPIs reading the same values share them
    key = ("entities", what, wards, moment_key(dataset, kpi, prepared, kpi.window, None, now))
    if wards is not None and len(wards) == 1 and entities_keep_their_ward(prepared):
        # one ward: the province's values of the entities in it (each computed from the same rows)
        whole = _entity_table(dataset, kpi, prepared, now, None)
        by_ward = prepared.figure(
            ("entities by ward", *key[1:2], None, *key[3:]),
            lambda: whole.groupby(WARD, sort=False).indices if len(whole) else {},
        )
        (code,) = wards
        return prepared.figure(key, lambda: _cut(whole, by_ward.get(code, _NO_ROWS)))
    return prepared.figure(
        key,
        lambda: entity_values_of(
            dataset, kpi, prepared.rows("recent", wards), prepared.snapshot.frames.get("entities"), now
        ),
    )


def _cut(frame: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """The rows at ``rows`` (ascending), numbered from 0: ``frame.loc[mask].reset_index(drop=True)``."""
    part = frame.take(rows)
    part.index = pd.RangeIndex(len(part))
    return part


def entities_keep_their_ward(prepared: WardFrames) -> bool:
    """Every entity's recent rows lie in one ward, the ward of each of its reference rows: then a ward's
    entity values and markers are the province's, cut to that ward (checked once per version)."""

    def check() -> bool:
        recent = prepared.frame("recent")
        if recent.empty or ENTITY not in recent:
            return True
        wards = recent.groupby(ENTITY, observed=True)[WARD].agg(["nunique", "first"])
        if (wards["nunique"] > 1).any():
            return False
        entities = prepared.snapshot.frames.get("entities")
        if entities is None or entities.empty or UNIT not in entities:
            return True
        readings = dict(zip(wards.index.astype(str), wards["first"], strict=True))
        reference = entities[UNIT].astype("string").map(prepared.crosswalk)
        return all(
            readings.get(entity, ward) == ward
            for entity, ward in zip(entities["entity"].astype(str), reference, strict=True)
        )

    return prepared.figure(("entities keep their ward",), check)


def _grouped_value(
    dataset: Dataset,
    kpi: Kpi,
    prepared: WardFrames,
    now: datetime,
    wards: frozenset[str] | None,
    window: str,
    span: Span | None,
) -> KpiFigure:
    if kpi.kind in ("state", "state_ratio"):
        frame = prepared.rows("state", wards)
        sums = [float(frame[m].sum()) if m in frame else 0.0 for m in kpi.measures]
        value = sums[0] * kpi.scale if kpi.kind == "state" else _scalar_ratio(sums[0], sums[1], kpi.scale)
        return KpiFigure(kpi, value)
    if kpi.kind in ("latest_ratio", "latest_max"):
        frame = prepared.rows("recent", wards)
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
    frame = _windowed_rows(dataset, prepared, now, window, use_span, wards)
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
    shared: bool = False,
) -> pd.Series:
    """The KPI of every ward in ``ward_codes`` in one grouped pass (NaN where there is no data).

    Equal to ``compute_kpi(..., wards={code})`` for each ward (``kpis.kpi_by_ward``), without
    re-reading the frame once per ward. ``shared``: the series kept for every caller (never modify
    it) rather than a copy.
    """
    prepared = ward_frames(snapshot, crosswalk)
    if kpi.kind not in GROUPED_KINDS:  # medians, comparisons, entity KPIs: ward by ward, each shared
        named = _named(kpi, window, span)
        values = {
            code: kpi_value(dataset, kpi, snapshot, now, crosswalk, wards=frozenset([code]), window=named).value
            for code in ward_codes
        }
        return pd.Series(values, dtype="float64", name=kpi.id)
    key = ("per_ward", kpi.id, window, span, tuple(ward_codes), moment_key(dataset, kpi, prepared, window, span, now))
    every = prepared.ward_codes
    if every is not None and tuple(ward_codes) != every and set(ward_codes) <= set(every):
        # some wards (an account's scope): their part of every ward's values, as the same grouped pass gives them
        whole = kpi_per_ward(dataset, kpi, snapshot, now, crosswalk, list(every), window=window, span=span, shared=True)
        return whole.reindex(pd.Index(ward_codes, dtype="object"))
    values = prepared.figure(key, lambda: _grouped_per_ward(dataset, kpi, prepared, now, ward_codes, window, span))
    return values if shared else values.copy()


def _grouped_per_ward(
    dataset: Dataset,
    kpi: Kpi,
    prepared: WardFrames,
    now: datetime,
    ward_codes: list[str],
    window: str,
    span: Span | None,
) -> pd.Series:
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
    full = series_table(dataset, measures, snapshot, now, crosswalk, wards=wards, window=window, span=span)
    if full is None:
        return pd.DataFrame(columns=["time", *measures])
    return full[["time", *(m for m in measures if m in full)]].copy()


def series_table(
    dataset: Dataset,
    measures: list[str],
    snapshot: Snapshot,
    now: datetime,
    crosswalk: dict[str, str],
    *,
    wards: frozenset[str] | None,
    window: str,
    span: Span | None = None,
) -> pd.DataFrame | None:
    """``series_frame`` with every measure of the dataset, shared by every caller (never modify it); None
    when none of ``measures`` can be drawn. Computed once per version, window, wards and moment."""
    prepared = ward_frames(snapshot, crosswalk)
    every = [m.name for m in dataset.measures]
    key = series_key(dataset, now, wards=wards, window=window, span=span)
    full = prepared.figure(key, lambda: _series(dataset, every, prepared, now, wards, window, span))
    if full.empty or not any(m in full for m in measures):
        return None
    return full


def series_key(
    dataset: Dataset, now: datetime, *, wards: frozenset[str] | None, window: str, span: Span | None = None
) -> tuple:
    """What ``series_table`` keeps its table under: the window's first bucket and how far it reaches
    (buckets start on multiples of their size), or which rollup a custom span is drawn from."""
    if span is None:
        frame_name = window_frame(window)
        size = frame_bucket_seconds(dataset, frame_name)
        moment = (frame_name, window_start(window, now, size), to_epoch(now) // size)
    else:
        moment = ("hourly" if _fine_span(span, now) else "daily",)
    return ("series", window, span, wards, moment)


def _fine_span(span: Span, now: datetime) -> bool:
    """A custom span short enough, and recent enough for the hourly rollups, to be drawn per hour."""
    return span[1] - span[0] <= FINE_SPAN_SECONDS and span[0] >= to_epoch(now) - HOURLY_SECONDS


def _series(
    dataset: Dataset,
    measures: list[str],
    prepared: WardFrames,
    now: datetime,
    wards: frozenset[str] | None,
    window: str,
    span: Span | None,
) -> pd.DataFrame:
    if span is None:
        frame_name = window_frame(window)
        size = frame_bucket_seconds(dataset, frame_name)
        first = window_start(window, now, size)
        last = to_epoch(now)
        size = max(size, DRAW_SECONDS.get(window) or size)
    else:
        frame_name = "hourly" if _fine_span(span, now) else "daily"
        size = frame_bucket_seconds(dataset, frame_name)
        first, last = span[0], span[1] - 1
    if span is None and first is not None and wards is not None and len(wards) == 1:
        # one ward of a named window: its part of every ward's series, grouped once per version and moment
        moment = series_key(dataset, now, wards=None, window=window)[-1]
        every_ward = prepared.figure(
            ("series of every ward", window, moment),
            lambda: _series_of_every_ward(dataset, measures, prepared.frame(frame_name), first, last, size),
        )
        (code,) = wards
        found = every_ward.get(code)
        if found is not None:
            return found
        if code not in prepared.ward_rows(frame_name):  # no rows at all: what the drawing of no rows gives
            return pd.DataFrame(columns=["time", *measures])
    return _drawn_series(dataset, measures, prepared.rows(frame_name, wards), first, last, size)


def _drawn_series(
    dataset: Dataset, measures: list[str], frame: pd.DataFrame, first: int | None, last: int, size: int
) -> pd.DataFrame:
    """The measures of ``frame``'s rows per drawn bucket of ``size`` seconds from ``first`` to ``last``."""
    present = [m for m in measures if m in frame]
    if frame.empty or not present:
        return pd.DataFrame(columns=["time", *measures])
    if first is None:
        first = int(frame[BUCKET].min())
    frame = frame.loc[(frame[BUCKET] >= first) & (frame[BUCKET] <= last)]
    drawn = frame[BUCKET] - frame[BUCKET] % size
    grouped = frame.groupby(drawn)[present].agg({m: kpi_measure_agg(dataset, m) for m in present})
    return _full_series(grouped, first, last, size)


def _full_series(grouped: pd.DataFrame, first: int, last: int, size: int) -> pd.DataFrame:
    """Values per drawn bucket with every bucket from ``first`` to ``last`` (zeros where none), and ``time``."""
    grouped = grouped.reindex(pd.RangeIndex(first - first % size, last + 1, size), fill_value=0.0)
    result = grouped.reset_index(names=BUCKET)
    result.insert(0, "time", pd.to_datetime(result[BUCKET], unit="s"))
    return result.drop(columns=[BUCKET])


def _series_of_every_ward(
    dataset: Dataset, measures: list[str], frame: pd.DataFrame, first: int, last: int, size: int
) -> dict[Any, pd.DataFrame]:
    """``_drawn_series`` of each ward with rows between ``first`` and ``last`` (the others are not in the
    result), from one grouping by ward and drawn bucket."""
    present = [m for m in measures if m in frame]
    if frame.empty or not present or WARD not in frame:
        return {}
    inside = frame.loc[(frame[BUCKET] >= first) & (frame[BUCKET] <= last)]
    drawn = inside[BUCKET] - inside[BUCKET] % size
    how = {m: kpi_measure_agg(dataset, m) for m in present}
    grouped = inside.groupby([inside[WARD], drawn], observed=True)[present].agg(how)
    if len(grouped) and all(dtype == "float64" for dtype in grouped.dtypes):
        return _float_series_of_every_ward(grouped, first, last, size)
    return {
        code: _full_series(grouped.iloc[where].droplevel(0), first, last, size)
        for code, where in grouped.groupby(level=0, sort=False, observed=True).indices.items()
    }


def line_array(series: pd.DataFrame, measure: str, over: str | None, scale: float = 1.0) -> np.ndarray:
    """``line_values`` as a float array (what a figure is drawn from)."""
    if measure not in series or (over is not None and over not in series):
        return np.full(len(series), np.nan)
    values = series[measure].to_numpy(dtype="float64", na_value=np.nan)
    if over is not None:
        denominator = series[over].to_numpy(dtype="float64", na_value=np.nan)
        denominator = np.where(denominator == 0, np.nan, denominator)
        with np.errstate(divide="ignore", invalid="ignore"):
            values = values / denominator
        values = np.where(np.isinf(values), np.nan, values)
    return values * scale


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
    shared: bool = False,
) -> pd.DataFrame:
    """Each entity of the reference table with its place, ward and latest value (``shared``: the table
    kept for every caller, never to be modified, rather than a copy).

    ``value`` is a ``latest_ratio``/``latest_max`` KPI id (evaluated per entity, so a station's
    marker shows the figure the "worst station" tile picks from) or a measure name. Entities with no
    reading recent enough to be "now" keep a NaN value (drawn as "no data", not left out). Computed
    once per snapshot version, wards and moment for every caller.
    """
    prepared = ward_frames(snapshot, crosswalk)
    key = entity_latest_key(dataset, value, snapshot, now, crosswalk, wards=wards)
    table = prepared.figure(key, lambda: _entity_latest(dataset, value, prepared, now, wards))
    return table if shared else table.copy()


def entity_latest_key(
    dataset: Dataset,
    value: str,
    snapshot: Snapshot,
    now: datetime,
    crosswalk: dict[str, str],
    *,
    wards: frozenset[str] | None = None,
) -> tuple:
    """What ``entity_latest`` depends on within one snapshot version (equal keys, equal tables)."""
    prepared = ward_frames(snapshot, crosswalk)
    kpi = next((k for k in dataset.kpis if k.id == value), None)
    if kpi is not None and kpi.kind in ENTITY_KINDS:
        moment = moment_key(dataset, kpi, prepared, kpi.window, None, now)
    else:
        moment = (_latest_from(dataset, now),)
    return ("entity_latest", value, wards, moment)


def shared_figure(snapshot: Snapshot, crosswalk: dict[str, str], key: Hashable, compute: Callable[[], Any]) -> Any:
    """A value derived from one snapshot version (a map layer built from ``entity_latest``), computed
    once for every request and user of the process (``WardFrames.figure``; shared: never modify)."""
    return ward_frames(snapshot, crosswalk).figure(key, compute)


def _entity_latest(
    dataset: Dataset, value: str, prepared: WardFrames, now: datetime, wards: frozenset[str] | None
) -> pd.DataFrame:
    snapshot, crosswalk = prepared.snapshot, prepared.crosswalk
    entities = snapshot.frames.get("entities")
    if entities is None or entities.empty or "lat" not in entities or "lon" not in entities:
        return pd.DataFrame(columns=["entity", "name", "lat", "lon", WARD, "value"])
    entities = entities.dropna(subset=["lat", "lon"]).copy()
    entities[WARD] = entities[UNIT].astype("string").map(crosswalk) if UNIT in entities else pd.NA
    if wards is not None:
        entities = entities.loc[entities[WARD].isin(wards)]
    kpi = next((k for k in dataset.kpis if k.id == value), None)
    if kpi is not None and kpi.kind in ENTITY_KINDS:  # e.g. each station's VN_AQI, each gauge's level
        found = _entity_table(dataset, kpi, prepared, now, wards)
        by_entity = found.set_index(found["entity"].astype("string"))["value"] if not found.empty else None
        entities["value"] = (
            entities["entity"].astype("string").map(by_entity).astype("float64") if by_entity is not None else np.nan
        )
        return entities.reset_index(drop=True)
    measures = list(kpi.measures) if kpi is not None else [value]
    scale = kpi.scale if kpi is not None else 1.0
    recent = prepared.mapped("recent")  # every row, also those of unknown units: an entity's own readings
    values = pd.Series(dtype="float64")
    if not recent.empty and ENTITY in recent and all(m in recent for m in measures):
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


# --- every ward's figures at once (what the poller publishes for the one-ward views) ----------------
def ward_figures_ahead(
    dataset: Dataset,
    snapshot: Snapshot,
    crosswalk: dict[str, str],
    now: datetime,
    ward_codes: list[str],
    windows: tuple[str, ...],
) -> dict[Hashable, Any]:
    """What a sector page asks for with one ward selected (or by an account scoped to one ward), for every
    ward in ``ward_codes``: each KPI over its own window and ``windows``, and the series of each of
    ``windows``, keyed as ``kpi_value`` and ``series_table`` key them for ``wards={code}``.

    Sums, ratios, state counts and latest ratios come from the grouped per-ward pass of the map
    (``kpi_per_ward``); medians from one selection of the durations; the series from one grouping by
    ward and bucket (the one a web worker uses for a single ward); comparisons from the hourly arrays
    taken per ward; latest maxima and entity KPIs by ``kpi_value`` itself (a ward's entity values cut
    from the province's), once per ward however many windows, and once for all the wards without rows.
    """
    prepared = ward_frames(snapshot, crosswalk)
    singles = {code: frozenset([code]) for code in ward_codes}
    result: dict[Hashable, Any] = {}
    for kpi in dataset.kpis:
        kpi_windows = list(dict.fromkeys((kpi.window, *windows)))
        if kpi.kind in GROUPED_KINDS and kpi.kind != "latest_max":
            for window in kpi_windows:
                if window in windows:
                    values = kpi_per_ward(
                        dataset, kpi, snapshot, now, crosswalk, ward_codes, window=window, shared=True
                    )
                else:
                    values = _grouped_per_ward(dataset, kpi, prepared, now, ward_codes, window, None)
                for code, value in zip(ward_codes, values.to_numpy(dtype="float64"), strict=True):
                    key = kpi_key(dataset, kpi, prepared, now, wards=singles[code], window=window)
                    result[key] = KpiFigure(kpi, None if np.isnan(value) else float(value))
        elif kpi.kind == "median":
            for window in kpi_windows:
                result.update(_median_each_ward(dataset, kpi, prepared, now, singles, window))
        else:
            result.update(_other_each_ward(dataset, kpi, snapshot, now, crosswalk, singles, kpi_windows))
        if kpi.kind in (*ENTITY_KINDS, "latest_ratio", "latest_max"):  # map markers of a one-ward scope
            result.update(_entity_latest_each_ward(dataset, kpi, snapshot, now, crosswalk, singles))
    every = [m.name for m in dataset.measures]
    for window in windows:
        for wards in singles.values():
            key = series_key(dataset, now, wards=wards, window=window)
            result[key] = prepared.figure(
                key, lambda wards=wards, window=window: _series(dataset, every, prepared, now, wards, window, None)
            )
    return result


OWN_FRAME = {"versus": "hourly", "latest_max": "recent", "entity_max": "recent", "entity_count": "recent"}
"""The frame a KPI of these kinds reads: every ward without rows in it has the same figure."""
WINDOWLESS = ("versus", "latest_max", *ENTITY_KINDS)
"""Kinds whose figure does not depend on the window a tile asks for (a comparison, "now")."""


def _median_each_ward(
    dataset: Dataset, kpi: Kpi, prepared: WardFrames, now: datetime, singles: dict[str, frozenset[str]], window: str
) -> dict[Hashable, KpiFigure]:
    """A median KPI of each ward over a window: ``median_figure`` of each ward's durations in it (the same
    values; a median does not depend on their order)."""
    values = durations_in_window(dataset, _durations(prepared, kpi.measures[0], None), now, window)
    array = values.to_numpy()
    by_ward = {}
    if len(values):
        wards = prepared.frame("durations")[WARD].loc[values.index].to_numpy()
        by_ward = pd.Series(array, copy=False).groupby(wards, sort=False).indices
    result = {}
    for code, wards_of in singles.items():
        key = kpi_key(dataset, kpi, prepared, now, wards=wards_of, window=window)
        where = by_ward.get(code)
        result[key] = median_figure(kpi, pd.Series(array[where] if where is not None else [], dtype="float64"))
    return result


def _other_each_ward(
    dataset: Dataset,
    kpi: Kpi,
    snapshot: Snapshot,
    now: datetime,
    crosswalk: dict[str, str],
    singles: dict[str, frozenset[str]],
    windows: list[str],
) -> dict[Hashable, KpiFigure]:
    """A median, comparison, latest maximum or entity KPI of each ward over each window, by ``kpi_value``
    itself: once per ward for the kinds that ignore the window, once for all the wards without rows."""
    prepared = ward_frames(snapshot, crosswalk)
    with_rows = prepared.ward_rows(OWN_FRAME[kpi.kind])
    compute = _versus_of_ward(kpi, prepared, now) if kpi.kind == "versus" else None
    result: dict[Hashable, KpiFigure] = {}
    for window in windows:
        of_empty_ward = None
        for code, wards in singles.items():
            key = kpi_key(dataset, kpi, prepared, now, wards=wards, window=window)
            if window != windows[0] and kpi.kind in WINDOWLESS:
                figure = result[kpi_key(dataset, kpi, prepared, now, wards=wards, window=windows[0])]
            elif code not in with_rows and of_empty_ward is not None:
                figure = of_empty_ward
            else:
                if compute is not None:
                    figure = compute(code)
                else:
                    figure = kpi_value(dataset, kpi, snapshot, now, crosswalk, wards=wards, window=window)
                if code not in with_rows:
                    of_empty_ward = figure
            result[key] = figure
    return result


def _versus_of_ward(kpi: Kpi, prepared: WardFrames, now: datetime) -> Callable[[str], KpiFigure]:
    """A comparison KPI of one ward from the hourly frame's arrays, taken once: ``versus_figure`` of the
    ward's rows (the same values in the same order)."""
    positions = prepared.ward_rows("hourly")
    buckets, columns = versus_arrays(kpi, prepared.frame("hourly"))

    def of_ward(code: str) -> KpiFigure:
        rows = positions.get(code, _NO_ROWS)
        return versus_of_arrays(kpi, buckets[rows], [None if c is None else c[rows] for c in columns], now)

    return of_ward


def _float_series_of_every_ward(grouped: pd.DataFrame, first: int, last: int, size: int) -> dict[Any, pd.DataFrame]:
    """``_full_series`` of each ward of ``grouped`` (float columns: zeros added keep the dtype) from one
    reindex over every ward and bucket."""
    full = pd.RangeIndex(first - first % size, last + 1, size)
    wards = grouped.index.get_level_values(0).unique()
    grid = grouped.reindex(pd.MultiIndex.from_product([wards, full]), fill_value=0.0)
    times = pd.to_datetime(pd.Series(full, name=BUCKET), unit="s").to_numpy()
    columns = {name: grid[name].to_numpy() for name in grid.columns}
    tables = {}
    for position, code in enumerate(wards):
        part = slice(position * len(full), (position + 1) * len(full))
        tables[code] = pd.DataFrame({"time": times, **{name: values[part] for name, values in columns.items()}})
    return tables


def _entity_latest_each_ward(
    dataset: Dataset,
    kpi: Kpi,
    snapshot: Snapshot,
    now: datetime,
    crosswalk: dict[str, str],
    singles: dict[str, frozenset[str]],
) -> dict[Hashable, pd.DataFrame]:
    """``entity_latest`` of ``kpi`` for each ward: the province's table cut to the ward's entities (their
    values come from all their readings, or for entity KPIs from the ward's own rows, which are all their
    rows when ``entities_keep_their_ward``; where they are not, each ward with entities is computed)."""
    province = entity_latest(dataset, kpi.id, snapshot, now, crosswalk, shared=True)
    keep = kpi.kind not in ENTITY_KINDS or entities_keep_their_ward(ward_frames(snapshot, crosswalk))
    with_entities = set() if keep else set(province[WARD].dropna())
    rows = province.groupby(WARD, sort=False).indices if len(province) else {}
    none = _cut(province, _NO_ROWS)  # the table of every ward without entities
    result = {}
    for code, wards in singles.items():
        key = entity_latest_key(dataset, kpi.id, snapshot, now, crosswalk, wards=wards)
        if code in with_entities:
            result[key] = entity_latest(dataset, kpi.id, snapshot, now, crosswalk, wards=wards, shared=True)
        else:
            result[key] = _cut(province, rows[code]) if code in rows else none
    return result
