"""Incremental polling of one warehouse table into rolled-up, versioned snapshots.

Each poll:
1. finds the time buckets touched by rows whose watermark is past ``watermark - late_window``
   (one indexed range scan on the watermark column);
2. recomputes exactly those buckets with one grouped query (on the event-time index) and replaces
   them in the rollup, so a row that is re-read, updated or committed late is counted exactly once;
3. recounts the current-state measures (open reports, overdue dossiers) with their own filters;
4. reads the declared durations of records finished in the last 35 days (for exact medians);
5. publishes a snapshot: recent buckets, hourly and daily rollups, state, entities, durations,
   per-entity hourly rollups (``by_entity`` datasets) and quality.

Rollups keep the raw unit code the warehouse wrote (old or new); mapping onto current wards happens
when figures are computed (``data_sources.kpis``), so the pre-merger view stays possible.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, select

from config.datasets import Dataset, Duration
from data_sources.clock import Clock, to_local_naive
from data_sources.snapshots import Snapshot, SnapshotStore
from data_sources.sql import (
    ROWS,
    ReflectedDataset,
    bucket_expression,
    filter_expression,
    measure_expression,
    quality_expressions,
    reflect_dataset,
    time_ranges_condition,
    where_conditions,
)

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1)
RECENT_SECONDS = 48 * 3600
HOURLY_SECONDS = 35 * 86400
RANGES_PER_QUERY = 200
UNIT = "unit"
ENTITY = "entity"
BUCKET = "bucket"
DURATION_NAME = "duration"
DURATION_END = "end"
DURATION_VALUE = "value"
DURATION_SECONDS = HOURLY_SECONDS
"""How far back (by end time) the ``durations`` frame keeps finished records."""


def bucket_start(epoch: int) -> datetime:
    """Naive local datetime of a bucket given as epoch seconds of local wall time."""
    return EPOCH + timedelta(seconds=int(epoch))


def to_epoch(moment: datetime) -> int:
    """Epoch seconds of a naive local wall time (inverse of ``bucket_start``)."""
    return int((to_local_naive(moment) - EPOCH).total_seconds())


def contiguous_ranges(buckets: list[int], size: int) -> list[tuple[int, int]]:
    """Sorted bucket starts folded into half-open ranges of adjacent buckets."""
    ranges: list[tuple[int, int]] = []
    for start in sorted(set(buckets)):
        if ranges and ranges[-1][1] == start:
            ranges[-1] = (ranges[-1][0], start + size)
        else:
            ranges.append((start, start + size))
    return ranges


def combine(frame: pd.DataFrame, keys: list[str], aggregations: dict[str, str]) -> pd.DataFrame:
    """Re-aggregate rollup rows over ``keys`` (count/sum add up, min/max stay min/max)."""
    if frame.empty:
        return frame[keys + list(aggregations)].copy()
    how = {name: ("sum" if agg == "count" else agg) for name, agg in aggregations.items()}
    return frame.groupby(keys, dropna=False, sort=True).agg(how).reset_index()


@dataclass
class PollResult:
    """What one poll did, for poll health."""

    dataset: str
    started_at: datetime
    duration_ms: float
    rows_read: int
    buckets_recomputed: int
    watermark: datetime | None
    version: int | None
    error: str | None = None


@dataclass
class DatasetPoller:
    """Keeps one dataset's rollups in step with the warehouse."""

    dataset: Dataset
    engine: Engine
    store: SnapshotStore
    clock: Clock
    reflected: ReflectedDataset | None = None
    watermark: datetime | None = None
    rollup: pd.DataFrame | None = None
    history: list[PollResult] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        """Rollup grouping keys."""
        return [BUCKET, UNIT] + ([ENTITY] if self.dataset.entity else [])

    @property
    def aggregations(self) -> dict[str, str]:
        """Every rolled-up column with the aggregate that combines it."""
        reflected = self._reflect()
        names = {m.name: m.agg for m in self.dataset.measures}
        for expression in quality_expressions(reflected):
            names[expression.name] = "count"
        return names

    def _reflect(self) -> ReflectedDataset:
        if self.reflected is None:
            self.reflected = reflect_dataset(self.engine, self.dataset)
        return self.reflected

    def _grouped_select(self, now: datetime):
        reflected = self._reflect()
        table = reflected.table
        bucket = bucket_expression(reflected, self.dataset.bucket_seconds).label(BUCKET)
        columns = [bucket, table.c[self.dataset.unit].label(UNIT)]
        if self.dataset.entity:
            columns.append(table.c[self.dataset.entity].label(ENTITY))
        measures = [measure_expression(reflected, m, now) for m in self.dataset.measures]
        statement = select(*columns, *measures, *quality_expressions(reflected))
        return statement.group_by(*(c.element for c in columns))

    def _read_frame(self, connection, statement) -> pd.DataFrame:
        result = connection.execute(statement)
        frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
        if frame.empty:
            return pd.DataFrame(columns=self.keys + list(self.aggregations))
        frame[BUCKET] = frame[BUCKET].astype("int64")
        frame[UNIT] = frame[UNIT].astype("string")
        if ENTITY in frame:
            frame[ENTITY] = frame[ENTITY].astype("string")
        for name in self.aggregations:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
        return frame

    def poll(self) -> PollResult:
        """Bring the rollups up to date and publish a snapshot; errors are recorded, never raised."""
        started = self.clock()
        tick = time.perf_counter()
        try:
            rows_read, recomputed = self._poll_once(to_local_naive(started))
            snapshot = self._publish(started)
            result = PollResult(
                self.dataset.id,
                started,
                (time.perf_counter() - tick) * 1000,
                rows_read,
                recomputed,
                self.watermark,
                snapshot.version,
            )
        except Exception as error:  # a failed poll must never stop the poller
            log.exception("poll of %s failed", self.dataset.id)
            self.reflected = None  # the schema may have changed: reflect again next time
            result = PollResult(
                self.dataset.id,
                started,
                (time.perf_counter() - tick) * 1000,
                0,
                0,
                self.watermark,
                None,
                error=f"{type(error).__name__}: {error}"[:500],
            )
        self.history = (self.history + [result])[-50:]
        return result

    def _poll_once(self, now: datetime) -> tuple[int, int]:
        reflected = self._reflect()
        table = reflected.table
        watermark_column = table.c[self.dataset.watermark]
        statement = self._grouped_select(now)
        with self.engine.connect() as connection:
            if self.rollup is None or self.watermark is None:
                latest = connection.execute(select(func.max(watermark_column))).scalar()
                frame = self._read_frame(connection, statement)
                self.rollup = frame
                self.watermark = latest
                return int(frame[ROWS].sum()) if not frame.empty else 0, len(frame)
            since = self.watermark - timedelta(seconds=self.dataset.late_window_seconds)
            bucket = bucket_expression(reflected, self.dataset.bucket_seconds)
            touched = connection.execute(
                select(bucket.label(BUCKET), func.max(watermark_column))
                .where(watermark_column > since)
                .group_by(bucket)
            ).fetchall()
            buckets = [int(row[0]) for row in touched if row[0] is not None]
            if not buckets:
                return 0, 0
            newest = max(row[1] for row in touched)
            size = self.dataset.bucket_seconds
            ranges = contiguous_ranges(buckets, size)
            fresh_parts = []
            for offset in range(0, len(ranges), RANGES_PER_QUERY):
                chunk = [(bucket_start(a), bucket_start(b)) for a, b in ranges[offset : offset + RANGES_PER_QUERY]]
                fresh_parts.append(
                    self._read_frame(connection, statement.where(time_ranges_condition(reflected, chunk)))
                )
        fresh = pd.concat(fresh_parts, ignore_index=True) if len(fresh_parts) > 1 else fresh_parts[0]
        replaced = self.rollup[BUCKET].isin(set(buckets))
        kept = self.rollup.loc[~replaced]
        self.rollup = pd.concat([kept, fresh], ignore_index=True) if not kept.empty else fresh
        self.watermark = max(self.watermark, newest)
        return int(fresh[ROWS].sum()) if not fresh.empty else 0, len(buckets)

    def _state_frame(self, now: datetime) -> pd.DataFrame:
        reflected = self._reflect()
        table = reflected.table
        keys = [table.c[self.dataset.unit].label(UNIT)]
        if self.dataset.entity:
            keys.append(table.c[self.dataset.entity].label(ENTITY))
        frames = []
        with self.engine.connect() as connection:
            for measure in self.dataset.state:
                statement = (
                    select(*keys, measure_expression(reflected, measure, now, filters_in_where=True))
                    .where(*where_conditions(reflected, measure, now))
                    .group_by(*(k.element for k in keys))
                )
                result = connection.execute(statement)
                frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
                frames.append(frame.set_index([k.name for k in keys]))
        if not frames:
            return pd.DataFrame(columns=[UNIT])
        state = pd.concat(frames, axis=1).fillna(0).reset_index()
        state[UNIT] = state[UNIT].astype("string")
        return state

    def _entities_frame(self) -> pd.DataFrame:
        reflected = self._reflect()
        reference = self.dataset.reference
        if reference is None or reflected.reference is None:
            return pd.DataFrame()
        table = reflected.reference
        columns = [table.c[reference.key].label("entity"), table.c[reference.name].label("name")]
        for optional, label in ((reference.lat, "lat"), (reference.lon, "lon")):
            if optional:
                columns.append(table.c[optional].label(label))
        if self.dataset.unit in table.c:
            columns.append(table.c[self.dataset.unit].label(UNIT))
        columns += [table.c[a] for a in reference.attributes]
        with self.engine.connect() as connection:
            result = connection.execute(select(*columns))
            frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
        frame["entity"] = frame["entity"].astype("string")
        return frame

    def _durations_frame(self, now: datetime) -> pd.DataFrame:
        """Every declared duration of records that ended in the last 35 days: unit, duration, end, value.

        One query per declaration, bounded by ``start >= now - lookback`` (the indexed column) and
        ``end`` in the retention window; durations are computed here (pandas), so the SQL is
        the same on every dialect.
        """
        columns = [UNIT, DURATION_NAME, DURATION_END, DURATION_VALUE]
        if not self.dataset.durations:
            return pd.DataFrame(columns=columns)
        table = self._reflect().table
        parts = []
        with self.engine.connect() as connection:
            for duration in self.dataset.durations:
                parts.append(self._read_durations(connection, table, duration, now))
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
        return frame[columns]

    def _read_durations(self, connection, table, duration: Duration, now: datetime) -> pd.DataFrame:
        start, end = table.c[duration.start], table.c[duration.end]
        statement = select(table.c[self.dataset.unit].label(UNIT), start.label("_start"), end.label("_end")).where(
            start >= now - timedelta(seconds=duration.lookback_seconds),
            end >= now - timedelta(seconds=DURATION_SECONDS),
            end <= now,
            *(filter_expression(table, f, now) for f in duration.where),
        )
        rows = connection.execute(statement).fetchall()
        frame = pd.DataFrame(rows, columns=[UNIT, "_start", "_end"])
        starts = pd.to_datetime(frame["_start"])
        ends = pd.to_datetime(frame["_end"])
        return pd.DataFrame(
            {
                UNIT: frame[UNIT].astype("string"),
                DURATION_NAME: duration.name,
                DURATION_END: ((ends - EPOCH) // pd.Timedelta(seconds=1)).astype("int64"),
                DURATION_VALUE: ((ends - starts) / pd.Timedelta(seconds=duration.unit_seconds)).astype("float64"),
            }
        )

    def _positions_frame(self, now: datetime) -> pd.DataFrame | None:
        """Key, unit, event time (epoch ``time``), lat, lon and the declared columns of the rows the
        ``positions`` declaration selects: those a state measure counts, or those of a recent period."""
        positions = self.dataset.positions
        if positions is None:
            return None
        reflected = self._reflect()
        table = reflected.table
        event_time = table.c[self.dataset.event_time]
        columns = [
            table.c[self.dataset.key].label("key"),
            table.c[self.dataset.unit].label(UNIT),
            event_time.label("_time"),
            table.c[self.dataset.latitude].label("lat"),
            table.c[self.dataset.longitude].label("lon"),
            *(table.c[c] for c in positions.columns),
        ]
        if positions.state is not None:
            measure = next(m for m in self.dataset.state if m.name == positions.state)
            conditions = where_conditions(reflected, measure, now)
        else:
            conditions = [event_time >= now - timedelta(seconds=positions.since_seconds), event_time <= now]
        statement = select(*columns).where(*conditions).order_by(table.c[self.dataset.key])
        with self.engine.connect() as connection:
            result = connection.execute(statement)
            frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
        frame[UNIT] = frame[UNIT].astype("string")
        frame.insert(
            2, "time", ((pd.to_datetime(frame.pop("_time")) - EPOCH) // pd.Timedelta(seconds=1)).astype("int64")
        )
        return frame

    def _hourly_entity_frame(self, rollup: pd.DataFrame, now_epoch: int) -> pd.DataFrame | None:
        """Hourly rollups per unit and entity for 35 days, for datasets declaring ``by_entity``."""
        if not self.dataset.by_entity:
            return None
        if rollup.empty:
            return pd.DataFrame(columns=[BUCKET, UNIT, ENTITY, *self.aggregations])
        hourly = rollup.assign(**{BUCKET: (rollup[BUCKET] // 3600) * 3600})
        hourly = hourly.loc[hourly[BUCKET] >= now_epoch - HOURLY_SECONDS]
        return combine(hourly, [BUCKET, UNIT, ENTITY], self.aggregations)

    def frames(self, now: datetime) -> dict[str, pd.DataFrame]:
        """The snapshot frames derived from the current rollup."""
        rollup = self.rollup if self.rollup is not None else pd.DataFrame(columns=self.keys)
        now_epoch = to_epoch(now)
        aggregations = self.aggregations
        recent = rollup.loc[rollup[BUCKET] >= now_epoch - RECENT_SECONDS].sort_values(self.keys)
        by_unit = rollup.assign(**{BUCKET: (rollup[BUCKET] // 3600) * 3600})
        hourly_source = by_unit.loc[by_unit[BUCKET] >= now_epoch - HOURLY_SECONDS]
        hourly = combine(hourly_source, [BUCKET, UNIT], aggregations)
        daily = combine(rollup.assign(**{BUCKET: (rollup[BUCKET] // 86400) * 86400}), [BUCKET, UNIT], aggregations)
        frames = {
            "recent": recent.reset_index(drop=True),
            "hourly": hourly,
            "daily": daily,
            "state": self._state_frame(to_local_naive(now)),
            "entities": self._entities_frame(),
            "durations": self._durations_frame(to_local_naive(now)),
        }
        by_entity = self._hourly_entity_frame(rollup, now_epoch)
        if by_entity is not None:
            frames["hourly_entity"] = by_entity
        positions = self._positions_frame(to_local_naive(now))
        if positions is not None:
            frames["positions"] = positions
        return frames

    def _publish(self, now: datetime) -> Snapshot:
        frames = self.frames(now)
        rollup = self.rollup
        newest_event = int(rollup[BUCKET].max()) if rollup is not None and not rollup.empty else None
        meta: dict[str, Any] = {
            "dataset": self.dataset.id,
            "sector": self.dataset.sector,
            "polled_at": now,
            "watermark": self.watermark,
            "newest_bucket": newest_event,
            "bucket_seconds": self.dataset.bucket_seconds,
            "expected_seconds": self.dataset.expected_seconds,
            "poll_seconds": self.dataset.poll_seconds,
        }
        return self.store.put(self.dataset.id, meta, frames)
