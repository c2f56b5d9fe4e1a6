"""Incremental polling of one warehouse table into rolled-up, versioned snapshots.

Each poll, on one connection with the dataset's statement timeout:
1. reads the newest watermark; if it went back (the warehouse was restored to an older state), the
   rollups are rebuilt from scratch and the poll says so;
2. finds the time buckets touched by rows whose watermark is past ``watermark - late_window`` (one
   indexed range scan on the watermark column) and, when the key is an increasing integer, the rows
   inserted since the last poll with a watermark older than that window (late arrivals: reported
   with examples, and counted);
3. recomputes exactly those buckets (and those the window lost to a DELETE) with one grouped query
   per retention tier (on the event-time index) and replaces them, so a row that is re-read, updated
   or committed late is counted exactly once; duplicates of a natural key are counted apart and left
   out of every measure; points in the province's box are tested against its outline;
4. every ``reconcile_every``, counts the rows of every day and re-aggregates the days that differ
   from the rollups (rows deleted from history, written with an old or NULL watermark);
5. lists a few example rows for every quality check that found bad rows in the recomputed buckets,
   and recounts the rows without an event time (no bucket: counted apart) when any changed;
6. recounts the current-state measures (open reports, overdue dossiers) with their own filters;
7. reads the declared durations of records finished in the last 35 days (exact medians) and the
   positions of the rows a map shows;
8. publishes a snapshot: recent buckets, hourly and daily rollups (per entity too for ``by_entity``
   datasets), state, entities, durations, positions and quality.

Nothing in the poller's state changes until every read of a poll has succeeded, so a poll that fails
half-way (connection killed, statement timeout, warehouse restarting) is retried with backoff and
leaves nothing counted twice or lost.

History is kept in three tiers (``RETENTION``): the dataset's own buckets for 48 hours, hourly
buckets for 35 days and daily buckets without limit. A row updated long after its event recomputes
the bucket of the tier its event time falls in. Rollups keep the raw unit code the warehouse wrote
(old or new); mapping onto current wards happens when figures are computed (``data_sources.kpis``),
so the pre-merger view stays possible. The tiers are held as integer-coded numpy columns in period
parts (``data_sources.rollup``), and every statement shape is built once with bound parameters, so a
poll's own work follows the buckets it changed, not the history it holds.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import redis
from sqlalchemy import BindParameter, Connection, Engine, Select, and_, bindparam, exc, func, or_, select

from config.datasets import Dataset, Duration
from data_sources.clock import Clock, to_local_naive
from data_sources.quality import (
    DUPLICATES,
    MISSING_UNIT,
    UNKNOWN_UNIT,
    QualityRules,
    check_catalogue,
    undated_check,
)
from data_sources.records import mask_value
from data_sources.rollup import (
    BUCKET,
    ENTITY,
    UNIT,
    Block,
    Encoder,
    Tier,
    combine,
    concat,
    empty_block,
    floored,
)
from data_sources.snapshots import PART_SEPARATOR, EncodedFrame, Snapshot, SnapshotStore, encoded_frame
from data_sources.sql import (
    OUTSIDE,
    POINT_LAT,
    POINT_LON,
    ROWS,
    ReflectedDataset,
    bucket_expression,
    check_conditions,
    day_counts_statement,
    duplicate_example_statement,
    example_statement,
    filter_expression,
    grouped_statement,
    measure_expression,
    quality_names,
    reflect_dataset,
    time_ranges_condition,
    undated_statement,
    unindexed_group_key,
    where_conditions,
)
from data_sources.warehouse import statement_timeout

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1)
HOUR = 3600
DAY = 86400
RECENT_SECONDS = 48 * HOUR
HOURLY_SECONDS = 35 * DAY
RETENTION = {"recent_hours": RECENT_SECONDS // HOUR, "hourly_days": HOURLY_SECONDS // DAY, "daily_days": None}
"""History kept in the snapshot: the dataset's buckets 48 h, hourly 35 days, daily without limit."""
PARTITIONS = {"recent": HOUR, "hourly": DAY, "hourly_entity": DAY, "daily": 30 * DAY}
"""History frames are kept and published in parts of these periods; a poll re-encodes only the parts
it changed (``hourly_entity`` exists for ``by_entity`` datasets only)."""
RANGES_PER_QUERY = 200
FULL_LOAD_CHUNKS = {"fine": 6 * HOUR, "hourly": DAY, "daily": 7 * DAY}
"""A first poll reads history in slices this long: each statement stays short (well inside the
statement timeout) and its sort small, however big the table."""
RECONCILE_DAYS = 31
"""Days counted per reconcile statement (each day one range count of the event-time index)."""
EXAMPLES_PER_CHECK = 5
EXAMPLE_BUCKETS = 20
"""Newest buckets searched for example rows of one check."""
RETRIES = 2
BACKOFF_SECONDS = 0.5
DURATION_NAME = "duration"
DURATION_END = "end"
DURATION_VALUE = "value"
DURATION_SECONDS = HOURLY_SECONDS
"""How far back (by end time) the ``durations`` frame keeps finished records."""
EMPTY_STATE = pd.DataFrame(columns=[UNIT])
EMPTY_ENTITIES = pd.DataFrame()
EMPTY_DURATIONS = pd.DataFrame(columns=[UNIT, DURATION_NAME, DURATION_END, DURATION_VALUE])
"""Shared, never changed: a dataset without state, entities or durations publishes the same object
every poll, so the publisher sees at once that it is unchanged."""

NOW = bindparam("now")
"""The poll's time in cached statements (filters with the value "now")."""
STATEMENT_SHAPES = 128
"""Statements kept built per poller (one per shape: tier and number of time ranges)."""

TRANSIENT_ERRORS = (
    exc.OperationalError,
    exc.InterfaceError,
    exc.TimeoutError,
    exc.DisconnectionError,
    sqlite3.OperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)
"""Failures worth retrying at once: lost connections, timeouts, locks, a restarting server."""


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


def floor_to(epoch: int, size: int) -> int:
    """Start of the ``size``-second period holding ``epoch``."""
    return epoch - epoch % size


def chunked(start: int, end: int, step: int) -> list[tuple[int, int]]:
    """[start, end) cut into slices ending on multiples of ``step``."""
    slices = []
    low = start
    while low < end:
        high = min(floor_to(low, step) + step, end)
        slices.append((low, high))
        low = high
    return slices or [(start, end)]


def is_transient(error: BaseException) -> bool:
    """True for a failure a retry may fix (as opposed to a missing table or a bad configuration)."""
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, TRANSIENT_ERRORS) and not isinstance(error, exc.ProgrammingError)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value


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
    attempts: int = 1
    late_rows: int = 0
    """Rows found this poll that arrived after the late window (reported and counted)."""
    window_rows: int = 0
    """Rows inside the late window (``watermark > last watermark - late_window``) read this poll."""
    reset: str | None = None
    """Why the rollups were rebuilt from scratch this poll (the warehouse went back in time)."""
    reconciled_days: int | None = None
    """When this poll reconciled the history with the warehouse: the days whose row count differed
    from the rollups and were re-aggregated (None: no reconcile this poll)."""
    last_reconcile_at: datetime | None = None
    """When the history was last reconciled (a first poll counts: it reads everything)."""
    last_reconcile_days: int | None = None
    """Days the last reconcile re-aggregated."""
    next_reconcile_at: datetime | None = None


@dataclass
class Tiers:
    """The rollup in its three retention tiers (``data_sources.rollup.Tier``: parts of coded columns).

    ``fine`` holds the dataset's buckets (with entities) from ``fine_floor``; ``hourly`` every hour
    from ``hourly_floor`` (hours of the fine period derived from it); ``daily`` every day (days of the
    hourly period derived from it). Each poll replaces only the buckets, hours and days it touched.
    """

    fine: Tier
    hourly: Tier
    daily: Tier
    fine_floor: int
    hourly_floor: int

    def copy(self) -> Tiers:
        """Tiers a poll may change without touching these (parts are shared, never changed in place)."""
        return Tiers(self.fine.copy(), self.hourly.copy(), self.daily.copy(), self.fine_floor, self.hourly_floor)


@dataclass
class LateArrivals:
    """Rows that arrived after the late window since the poller started."""

    total: int = 0
    by_unit: dict[str, int] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)

    def as_meta(self) -> dict[str, Any]:
        return {"total": self.total, "by_unit": dict(self.by_unit), "examples": list(self.examples)}


@dataclass
class _Pending:
    """A poll's outcome, applied to the poller only once every read succeeded."""

    tiers: Tiers
    watermark: datetime | None
    max_key: Any
    rows_read: int
    buckets: int
    window: tuple[datetime, dict[int, tuple]] | None = None
    window_rows: int = 0
    dirty: dict[str, set[int] | None] = field(default_factory=lambda: dict.fromkeys(PARTITIONS))
    """Per history frame, the parts (period starts) this poll changed; None: all of them."""
    current: dict[str, pd.DataFrame] = field(default_factory=dict)
    late_rows: int = 0
    late_units: dict[str, int] = field(default_factory=dict)
    late_examples: list[dict[str, Any]] = field(default_factory=list)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    reset: str | None = None
    undated: dict[str, int] | None = None
    """Rows without an event time per unit, when this poll recounted them (None: unchanged)."""
    undated_examples: list[dict[str, Any]] = field(default_factory=list)
    recount_undated: bool = False
    """Something in the late window or among late arrivals has no event time: recount those rows."""
    reconciled: int | None = None
    """Days re-aggregated by this poll's reconcile (None: it did not reconcile; a full load gives 0)."""


@dataclass
class DatasetPoller:
    """Keeps one dataset's rollups in step with the warehouse."""

    dataset: Dataset
    engine: Engine
    store: SnapshotStore
    clock: Clock
    rules: QualityRules = field(default_factory=QualityRules)
    reflected: ReflectedDataset | None = None
    watermark: datetime | None = None
    max_key: Any = None
    tiers: Tiers | None = None
    late: LateArrivals = field(default_factory=LateArrivals)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    undated: dict[str, int] = field(default_factory=dict)
    """Rows whose event time is NULL, per raw unit code ("" for none): bad rows kept out of every bucket."""
    reconciled_at: datetime | None = None
    """Start of the last poll that reconciled the history with the warehouse (or loaded it whole)."""
    reconciled_days: int | None = None
    """Days that poll re-aggregated because they differed from the warehouse."""
    window: tuple[datetime, dict[int, tuple]] | None = None
    """The last late-window read: its lower bound and per bucket (rows, newest watermark, newest key)."""
    encoded: dict[str, tuple[pd.DataFrame, EncodedFrame]] = field(default_factory=dict)
    parts: dict[str, dict[int, EncodedFrame]] = field(default_factory=dict)
    dirty: dict[str, set[int] | None] = field(default_factory=lambda: dict.fromkeys(PARTITIONS))
    """Parts changed since the last successful publish (None: all); cleared once a snapshot is stored."""
    encoder: Encoder = field(default_factory=Encoder)
    """Unit and entity codes of the rollups, and the encoding of their parts."""
    history: list[PollResult] = field(default_factory=list)
    retries: int = RETRIES
    backoff_seconds: float = BACKOFF_SECONDS
    sleep: Callable[[float], None] = time.sleep
    _aggregations: tuple[ReflectedDataset, dict[str, str]] | None = field(default=None, repr=False)
    _statements: dict[Any, Select] = field(default_factory=dict, repr=False)
    _statements_for: ReflectedDataset | None = field(default=None, repr=False)
    _outline_points: set[tuple[float, float]] = field(default_factory=set, repr=False)
    """Points inside the box but outside the province outline found by the poll under way (examples)."""
    _current: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    """State and entities read by the last poll, on its connection."""

    @property
    def keys(self) -> list[str]:
        """Keys of the fine tier (the hourly and daily tiers drop the entity)."""
        return [BUCKET, UNIT] + ([ENTITY] if self.dataset.entity else [])

    @property
    def hourly_keys(self) -> list[str]:
        """Keys of the hourly tier: per entity too for ``by_entity`` datasets (figures per procedure)."""
        return [BUCKET, UNIT] + ([ENTITY] if self.dataset.by_entity else [])

    @property
    def hour_size(self) -> int:
        """Bucket of the hourly tier: an hour, or the dataset's bucket when that is longer."""
        return max(self.dataset.bucket_seconds, HOUR)

    @property
    def aggregations(self) -> dict[str, str]:
        """Every rolled-up column with the aggregate that combines it."""
        reflected = self._reflect()
        if self._aggregations is None or self._aggregations[0] is not reflected:
            names = {m.name: m.agg for m in self.dataset.measures}
            for name in quality_names(reflected, self.rules.bounds):
                names[name] = "count"
            self._aggregations = (reflected, names)
        return self._aggregations[1]

    def _reflect(self) -> ReflectedDataset:
        if self.reflected is None:
            self.reflected = reflect_dataset(self.engine, self.dataset)
        return self.reflected

    def _floors(self, now_epoch: int) -> tuple[int, int]:
        fine_floor = floor_to(now_epoch - RECENT_SECONDS, self.hour_size)
        return fine_floor, floor_to(now_epoch - HOURLY_SECONDS, DAY)

    def _columns(self, keys: list[str]) -> list[str]:
        """Columns of a rollup with ``keys``: the keys, then every rolled-up measure."""
        return [*keys, *self.aggregations]

    def _tier_columns(self, tier: str) -> list[str]:
        return self._columns({"fine": self.keys, "hourly": self.hourly_keys, "daily": [BUCKET, UNIT]}[tier])

    def _statement(self, shape: Any, build: Callable[[], Select]) -> Select:
        """The statement of ``shape``, built once: values that change between polls (the poll time, time
        ranges, the watermark) are bound parameters given at execution. Building a grouped statement
        and its cache key costs more than a poll's own numpy work."""
        reflected = self._reflect()
        if self._statements_for is not reflected or len(self._statements) > STATEMENT_SHAPES:
            self._statements, self._statements_for = {}, reflected
        found = self._statements.get(shape)
        if found is None:
            found = self._statements[shape] = build()
        return found

    def _read_block(self, connection: Connection, statement, keys: list[str], parameters: dict[str, Any]) -> Block:
        """A grouped query's rows as a block: column by column into typed arrays, codes for strings."""
        result = connection.execute(statement, parameters)
        names = list(result.keys())
        rows = result.fetchall()
        if not rows:
            return empty_block(self._columns(keys))
        columns = dict(zip(names, zip(*rows, strict=True), strict=True))
        if None in columns[BUCKET]:  # an event time the database cannot read as a time (SQLite text)
            rows = [row for row in rows if row[names.index(BUCKET)] is not None]
            log.warning("dataset %s: rows with an unreadable event time left out of the rollups", self.dataset.id)
            if not rows:
                return empty_block(self._columns(keys))
            columns = dict(zip(names, zip(*rows, strict=True), strict=True))
        block: Block = {}
        for name in names:
            values = columns[name]
            if name == BUCKET:
                block[name] = np.array(values, dtype="int64")
            elif name in (UNIT, ENTITY):
                block[name] = self.encoder.codes(name).encode(values)
            else:
                block[name] = np.array(values, dtype="float64")  # NULL -> NaN, Decimal -> float
        return block

    # -- polling ---------------------------------------------------------------------------------

    def poll(self) -> PollResult:
        """Bring the rollups up to date and publish a snapshot; errors are recorded, never raised.

        A transient failure (lost connection, timeout, lock) is retried ``retries`` times with
        exponential backoff before the poll is recorded as failed.
        """
        started = self.clock()
        tick = time.perf_counter()
        attempts = 0
        while True:
            attempts += 1
            try:
                pending = self._poll_once(to_local_naive(started), reconcile=self.reconcile_due(started))
                self._apply(pending)
                if pending.reconciled is not None:
                    self.reconciled_at, self.reconciled_days = started, pending.reconciled
                snapshot = self._publish(started)
                result = PollResult(
                    self.dataset.id,
                    started,
                    (time.perf_counter() - tick) * 1000,
                    pending.rows_read,
                    pending.buckets,
                    self.watermark,
                    snapshot.version,
                    attempts=attempts,
                    late_rows=pending.late_rows,
                    window_rows=pending.window_rows,
                    reset=pending.reset,
                    reconciled_days=pending.reconciled,
                )
                break
            except Exception as error:  # a failed poll must never stop the poller
                if is_transient(error) and attempts <= self.retries:
                    delay = self.backoff_seconds * 2 ** (attempts - 1)
                    log.warning("poll of %s failed (%s); retry %d in %.1f s", self.dataset.id, error, attempts, delay)
                    self.sleep(delay)
                    continue
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
                    attempts=attempts,
                )
                break
        result.last_reconcile_at, result.last_reconcile_days = self.reconciled_at, self.reconciled_days
        result.next_reconcile_at = self.next_reconcile_at
        self.history = (self.history + [result])[-50:]
        return result

    @property
    def next_reconcile_at(self) -> datetime | None:
        """When the history is due to be reconciled with the warehouse next (None: at the first poll)."""
        if self.reconciled_at is None:
            return None
        return self.reconciled_at + timedelta(seconds=self.dataset.reconcile_seconds)

    def reconcile_due(self, now: datetime) -> bool:
        """True when a poll at ``now`` should also reconcile the history (every ``reconcile_every``)."""
        due = self.next_reconcile_at
        return due is not None and now >= due

    def _apply(self, pending: _Pending) -> None:
        """Make a successful poll's reads the poller's state."""
        self.tiers = pending.tiers
        self.watermark = pending.watermark
        self.max_key = pending.max_key
        self.window = pending.window
        self._current = pending.current
        for name, changed in pending.dirty.items():
            known = self.dirty.get(name, set())
            self.dirty[name] = None if changed is None or known is None else known | changed
        if pending.reset:
            self.examples = {}
        for check, found in pending.examples.items():
            self.examples[check] = found
        if pending.undated is not None:
            self.undated = pending.undated
            self.examples[undated_check(self.dataset)] = pending.undated_examples
        if pending.late_rows:
            self.late.total += pending.late_rows
            for unit, count in pending.late_units.items():
                self.late.by_unit[unit] = self.late.by_unit.get(unit, 0) + count
            self.late.examples = (pending.late_examples + self.late.examples)[:EXAMPLES_PER_CHECK]

    def _poll_once(self, now: datetime, *, reconcile: bool = False) -> _Pending:
        reflected = self._reflect()
        dataset = self.dataset
        table = reflected.table
        watermark_column = table.c[dataset.watermark]
        floors = self._floors(to_epoch(now))
        self._outline_points = set()
        with self.engine.connect() as connection, statement_timeout(connection, dataset.statement_timeout_seconds):
            latest = connection.execute(self._statement("latest", lambda: select(func.max(watermark_column)))).scalar()
            reset = None
            if self.tiers is not None and self.watermark is not None and (latest is None or latest < self.watermark):
                reset = f"newest {dataset.watermark} went back from {self.watermark} to {latest}: rollups rebuilt"
                log.warning("dataset %s: %s", dataset.id, reset)
            if self.tiers is None or self.watermark is None or reset:  # first poll, or an empty table so far
                pending = self._full_load(connection, now, floors, latest, reset)
            else:
                pending = self._incremental(connection, now, floors, reconcile=reconcile)
            pending.current = {
                "state": self._state_frame(connection, now),
                "entities": self._entities_frame(connection),
                "durations": self._durations_frame(connection, now),
            }
            positions = self._positions_frame(connection, now)
            if positions is not None:
                pending.current["positions"] = positions
            return pending

    def _full_load(
        self, connection: Connection, now: datetime, floors: tuple[int, int], latest: datetime | None, reset: str | None
    ) -> _Pending:
        reflected = self._reflect()
        key = reflected.table.c[self.dataset.key]
        max_key = connection.execute(select(func.max(key))).scalar() if reflected.increasing_key else None
        fine_floor, hourly_floor = floors
        oldest = connection.execute(select(func.min(reflected.table.c[self.dataset.event_time]))).scalar()
        first_day = floor_to(to_epoch(oldest), DAY) if oldest is not None else hourly_floor
        tier_ranges = {
            "fine": (fine_floor, None, FULL_LOAD_CHUNKS["fine"]),
            "hourly": (hourly_floor, fine_floor, FULL_LOAD_CHUNKS["hourly"]),
            "daily": (min(first_day, hourly_floor), hourly_floor, FULL_LOAD_CHUNKS["daily"]),
        }
        read: dict[str, Block] = {}
        for tier, (start, end, step) in tier_ranges.items():
            if end is None:  # the fine tier runs on into rows stamped in the future
                until = max(start, floor_to(to_epoch(now), step) + step)
                slices = [*chunked(start, until, step), (until, None)]
            else:
                slices = chunked(start, end, step)
            parts = []
            for low, high in slices:
                span = [(bucket_start(low), bucket_start(high) if high is not None else None)]
                parts.append(self._grouped(connection, now, tier, span))
            read[tier] = concat(parts, self._tier_columns(tier))
        fine = self._new_tier("fine", read["fine"])
        hours = set(floor_to(read["fine"][BUCKET], self.hour_size).tolist())
        from_fine = self._derive(fine, hours, self.hour_size, keep_entity=self.dataset.by_entity)
        hourly = self._new_tier("hourly", concat([read["hourly"], from_fine], self._tier_columns("hourly")))
        days = {floor_to(p, DAY) for p in hourly.parts}
        from_hours = self._derive(hourly, days, DAY)
        daily = self._new_tier("daily", concat([read["daily"], from_hours], self._tier_columns("daily")))
        tiers = Tiers(fine, hourly, daily, fine_floor, hourly_floor)
        fresh = {tier: (block, self._tier_size(tier)) for tier, block in read.items()}
        examples = self._examples(connection, fresh, replace_all=True)
        rows = sum(int(b[ROWS].sum()) for b in read.values())
        buckets = sum(len(np.unique(b[BUCKET])) for b in read.values())
        window = None
        if latest is not None:
            since = latest - timedelta(seconds=self.dataset.late_window_seconds)
            window = (since, self._fingerprints(self._window_read(connection, since)))
        pending = _Pending(tiers, latest, max_key, rows, buckets, window=window, examples=examples, reset=reset)
        pending.reconciled = 0  # everything was just read: as good as a reconcile
        self._count_undated(connection, pending)
        return pending

    def _tier_size(self, tier: str) -> int:
        return {"fine": self.dataset.bucket_seconds, "hourly": self.hour_size, "daily": DAY}[tier]

    def _new_tier(self, tier: str, block: Block) -> Tier:
        period = PARTITIONS[{"fine": "recent"}.get(tier, tier)]
        return Tier.of(block, self._tier_size(tier), period, self._tier_columns(tier))

    def _grouped(
        self, connection: Connection, now: datetime, tier: str, spans: list[tuple[datetime | None, datetime | None]]
    ) -> Block:
        """Measures and quality counts of ``tier`` over event-time ``spans`` (half-open; None: open)."""
        reflected = self._reflect()
        by_entity = tier == "fine" or (tier == "hourly" and self.dataset.by_entity)
        points = self.rules.area is not None and self.rules.bounds is not None and OUTSIDE in self.aggregations
        shape = ("grouped", tier, tuple((low is None, high is None) for low, high in spans))
        bounds: list[tuple[BindParameter | None, BindParameter | None]] = [
            (None if low is None else bindparam(f"low{i}"), None if high is None else bindparam(f"high{i}"))
            for i, (low, high) in enumerate(spans)
        ]
        statement = self._statement(
            shape,
            lambda: grouped_statement(
                reflected,
                NOW,
                self._tier_size(tier),
                time_ranges_condition(reflected, bounds),
                by_entity=by_entity,
                bounds=self.rules.bounds,
                points=points,
            ),
        )
        parameters: dict[str, Any] = {"now": now}
        for i, (low, high) in enumerate(spans):
            parameters |= {f"low{i}": low, f"high{i}": high}
        keys = (self.keys if tier == "fine" else self.hourly_keys) if by_entity else [BUCKET, UNIT]
        if not points:
            return self._read_block(connection, statement, keys, parameters)
        block = self._read_block(connection, statement, [*keys, POINT_LAT, POINT_LON], parameters)
        return combine(self._outside_outline(block), keys, self.aggregations)

    def _outside_outline(self, block: Block) -> Block:
        """``block`` (split by point) with rows of points inside the province's box but outside its
        outline counted in ``_outside_area`` (points outside the box are counted by SQL already)."""
        lat, lon = block[POINT_LAT], block[POINT_LON]
        bounds = self.rules.bounds
        in_box = (lat >= bounds.south) & (lat <= bounds.north) & (lon >= bounds.west) & (lon <= bounds.east)
        candidates = np.flatnonzero(in_box)  # NaN (no point) is never in the box
        if not len(candidates):
            return block
        outside = candidates[self.rules.area.outside(lat[candidates], lon[candidates])]
        if not len(outside):
            return block
        self._outline_points |= set(zip(lat[outside].tolist(), lon[outside].tolist(), strict=True))
        counts = block[OUTSIDE].copy()
        counts[outside] += block[ROWS][outside]  # a group's rows share its point
        return block | {OUTSIDE: counts}

    def _derive(self, tier: Tier, periods: set[int], size: int, *, keep_entity: bool = False) -> Block:
        """Rows of ``tier`` in the given ``size``-second periods, re-aggregated per (period, unit)
        (and entity, with ``keep_entity``)."""
        keys = [BUCKET, UNIT, ENTITY] if keep_entity and ENTITY in tier.columns else [BUCKET, UNIT]
        rows = floored(tier.select(periods, size), size)
        return combine(rows, keys, self.aggregations)

    def _advanced(self, floors: tuple[int, int]) -> tuple[Tiers, dict[str, set[int]]]:
        """Copies of the tiers with buckets past their tier's horizon dropped (their hours and days
        stay), and the parts that changed doing so."""
        tiers = self.tiers.copy()
        tiers.fine_floor = max(floors[0], tiers.fine_floor)
        tiers.hourly_floor = max(floors[1], tiers.hourly_floor)
        recent = tiers.fine.drop_before(tiers.fine_floor)
        hourly = tiers.hourly.drop_before(tiers.hourly_floor)
        return tiers, {"recent": recent, "hourly": hourly, "hourly_entity": set(hourly)}

    @staticmethod
    def _fingerprints(touched: list) -> dict[int | None, tuple]:
        """Per bucket of a late-window read (None: rows without an event time): rows, newest
        watermark and newest key."""
        return {(None if row[0] is None else int(row[0])): tuple(row[1:]) for row in touched}

    def _count_undated(self, connection: Connection, pending: _Pending) -> None:
        """Count the rows without an event time per unit, with a few examples."""
        reflected = self._reflect()
        found = {}
        for unit, count in connection.execute(undated_statement(reflected)).fetchall():
            name = "" if unit is None else str(unit)
            found[name] = found.get(name, 0) + int(count)
        pending.undated = found
        pending.undated_examples = []
        if found:
            column = self.dataset.event_time
            condition = reflected.table.c[column].is_(None)
            statement = example_statement(reflected, condition, column, limit=EXAMPLES_PER_CHECK)
            pending.undated_examples = [
                self._example(row, None) | {"column": column, "value": None}
                for row in connection.execute(statement).mappings()
            ]
            log.warning(
                "dataset %s: %d row(s) without %s: counted on Data health, in no figure",
                self.dataset.id,
                sum(found.values()),
                column,
            )

    def _window_read(self, connection: Connection, since: datetime) -> list:
        """Per bucket touched by rows past ``since``: rows, newest watermark (and newest key)."""
        reflected = self._reflect()

        def build() -> Select:
            table = reflected.table
            watermark_column = table.c[self.dataset.watermark]
            bucket = bucket_expression(reflected, self.dataset.bucket_seconds).label(BUCKET)
            columns = [bucket, func.count(), func.max(watermark_column)]
            if reflected.increasing_key:
                columns.append(func.max(table.c[self.dataset.key]))
            return select(*columns).where(watermark_column > bindparam("since")).group_by(bucket)

        return connection.execute(self._statement("window", build), {"since": since}).fetchall()

    def _incremental(
        self, connection: Connection, now: datetime, floors: tuple[int, int], *, reconcile: bool = False
    ) -> _Pending:
        reflected = self._reflect()
        dataset = self.dataset
        tiers, aged = self._advanced(floors)
        since = self.watermark - timedelta(seconds=dataset.late_window_seconds)
        touched = self._window_read(connection, since)
        window = self._fingerprints(touched)
        newest = max((row[2] for row in touched if row[2] is not None), default=self.watermark)
        max_key = self.max_key
        if reflected.increasing_key:
            max_key = max([k for k in (max_key, *(row[3] for row in touched)) if k is not None], default=None)
        pending = _Pending(tiers, max(self.watermark, newest), max_key, 0, 0, window=(since, window))
        pending.dirty = {name: set(aged.get(name, ())) for name in PARTITIONS}
        pending.window_rows = sum(int(row[1]) for row in touched)
        # Same window as last poll: a bucket whose rows, newest watermark and newest key are unchanged
        # holds nothing new (a late commit, update or delete changes one of them); skip recomputing it.
        # A bucket of the last window that is gone although its newest row should still be inside the
        # window lost its rows to a DELETE: it is recomputed too.
        previous = self.window[1] if self.window is not None else {}
        unchanged = previous if self.window is not None and self.window[0] == since else {}
        buckets = {b for b, fingerprint in window.items() if unchanged.get(b) != fingerprint}
        buckets |= {b for b, (_, newest, *_) in previous.items() if b not in window and newest and newest > since}
        if reflected.increasing_key and self.max_key is not None:
            self._late_arrivals(connection, since, pending, buckets)
        if None in buckets:  # rows without an event time changed: they are counted apart
            buckets.discard(None)
            pending.recount_undated = True
        chosen = {
            "fine": {b for b in buckets if b >= tiers.fine_floor},
            "hourly": {floor_to(b, self.hour_size) for b in buckets if tiers.hourly_floor <= b < tiers.fine_floor},
            "daily": {floor_to(b, DAY) for b in buckets if b < tiers.hourly_floor},
        }
        if any(chosen.values()):
            self._recompute_buckets(connection, now, chosen, pending)
        if reconcile:  # after the late window's changes, so that only what it cannot see differs
            days = self._differing_days(connection, tiers)
            pending.reconciled = len(days)
            pending.recount_undated = True
            if days:
                log.warning(
                    "dataset %s: %d day(s) of history differed from the warehouse (rows deleted or written "
                    "with an old watermark); re-aggregated",
                    dataset.id,
                    len(days),
                )
                chosen = {tier: set() for tier in chosen}
                for day in days:
                    for tier, found in self._day_buckets(day, tiers).items():
                        chosen[tier] |= found
                self._recompute_buckets(connection, now, chosen, pending)
        if pending.recount_undated:
            self._count_undated(connection, pending)
        return pending

    def _differing_days(self, connection: Connection, tiers: Tiers) -> set[int]:
        """Days whose row count in the warehouse differs from the rollups' (rows and duplicate copies).

        Each day is one range count of the event-time index, ``RECONCILE_DAYS`` days per statement, so
        the cost is one pass over the index and no statement grows with the table's age.
        """
        reflected = self._reflect()
        event_time = reflected.table.c[self.dataset.event_time]
        first, last = connection.execute(
            self._statement("extent", lambda: select(func.min(event_time), func.max(event_time)))
        ).one()
        counted: dict[int, int] = {}
        if first is not None:
            days = list(range(floor_to(to_epoch(first), DAY), floor_to(to_epoch(last), DAY) + DAY, DAY))
            for offset in range(0, len(days), RECONCILE_DAYS):
                batch = days[offset : offset + RECONCILE_DAYS]
                size = len(batch)
                statement = self._statement(
                    ("day_counts", size), lambda size=size: day_counts_statement(reflected, size)
                )
                bounds = [*batch, batch[-1] + DAY]
                row = connection.execute(statement, {f"day{i}": bucket_start(d) for i, d in enumerate(bounds)}).one()
                counted |= {day: int(count) for day, count in zip(batch, row, strict=True) if count}
        held = self._day_counts(tiers)
        return {day for day in counted.keys() | held.keys() if counted.get(day, 0) != held.get(day, 0)}

    @staticmethod
    def _day_counts(tiers: Tiers) -> dict[int, int]:
        """Rows per day as the rollups hold them (each natural key once, plus its duplicate copies)."""
        block = tiers.daily.block()
        if not len(block[BUCKET]):
            return {}
        rows = np.nan_to_num(block[ROWS]) + (np.nan_to_num(block[DUPLICATES]) if DUPLICATES in block else 0)
        days, inverse = np.unique(block[BUCKET], return_inverse=True)
        totals = np.bincount(inverse, weights=rows, minlength=len(days))
        return {int(day): round(total) for day, total in zip(days.tolist(), totals.tolist(), strict=True)}

    def _day_buckets(self, day: int, tiers: Tiers) -> dict[str, set[int]]:
        """Every bucket of ``day`` in the tier that holds it: fine buckets from ``fine_floor``, hours
        from ``hourly_floor``, the day itself before that."""
        end = day + DAY
        return {
            "fine": set(range(max(day, tiers.fine_floor), end, self.dataset.bucket_seconds)),
            "hourly": set(range(max(day, tiers.hourly_floor), min(end, tiers.fine_floor), self.hour_size)),
            "daily": {day} if day < tiers.hourly_floor else set(),
        }

    def _recompute_buckets(
        self, connection: Connection, now: datetime, chosen: dict[str, set[int]], pending: _Pending
    ) -> None:
        """Read the ``chosen`` buckets of each tier again and put them, with the hours and days they
        belong to, in ``pending``'s tiers; collect example rows of what they hold."""
        dataset = self.dataset
        tiers = pending.tiers
        read = {tier: self._recompute(connection, now, tier, found) for tier, found in chosen.items() if found}
        dirty = pending.dirty
        dirty["recent"] |= tiers.fine.replace(chosen["fine"], read.get("fine", empty_block(tiers.fine.columns)))
        hours_from_fine = {floor_to(b, self.hour_size) for b in chosen["fine"]}
        hours = hours_from_fine | chosen["hourly"]
        from_fine = self._derive(tiers.fine, hours_from_fine, self.hour_size, keep_entity=dataset.by_entity)
        fresh_hours = concat([from_fine, read.get("hourly", empty_block(tiers.hourly.columns))], tiers.hourly.columns)
        changed_days = tiers.hourly.replace(hours, fresh_hours)
        dirty["hourly"] |= changed_days
        dirty["hourly_entity"] |= changed_days
        days_from_hours = {floor_to(h, DAY) for h in hours}
        from_hours = self._derive(tiers.hourly, days_from_hours, DAY)
        fresh_days = concat([from_hours, read.get("daily", empty_block(tiers.daily.columns))], tiers.daily.columns)
        dirty["daily"] |= tiers.daily.replace(days_from_hours | chosen["daily"], fresh_days)
        pending.rows_read += sum(int(b[ROWS].sum()) for b in read.values())
        pending.buckets += sum(len(found) for found in chosen.values())
        fresh = {t: (b, self._tier_size(t)) for t, b in read.items()}
        pending.examples |= self._examples(connection, fresh, held=self.examples | pending.examples)

    def _late_arrivals(self, connection: Connection, since: datetime, pending: _Pending, buckets: set) -> None:
        """Rows inserted since the last poll whose watermark is older than the late window (or NULL)."""
        reflected = self._reflect()
        dataset = self.dataset
        table = reflected.table
        watermark_column = table.c[dataset.watermark]
        key = table.c[dataset.key]
        condition = (key > bindparam("max_key")) & or_(
            watermark_column <= bindparam("since"), watermark_column.is_(None)
        )
        parameters = {"max_key": self.max_key, "since": since}

        def build() -> Select:
            bucket = bucket_expression(reflected, dataset.bucket_seconds).label(BUCKET)
            unit = table.c[dataset.unit].label(UNIT)
            return select(bucket, unit, func.count(), func.max(key)).where(condition).group_by(bucket, unit)

        rows = connection.execute(self._statement("late", build), parameters).fetchall()
        if not rows:
            return
        pending.late_rows = sum(int(row[2]) for row in rows)
        for row in rows:
            name = str(row[1]) if row[1] is not None else ""
            pending.late_units[name] = pending.late_units.get(name, 0) + int(row[2])
            buckets.add(None if row[0] is None else int(row[0]))
        pending.max_key = max(k for k in (pending.max_key, *(row[3] for row in rows)) if k is not None)
        statement = (
            select(key, table.c[dataset.unit], table.c[dataset.event_time], watermark_column)
            .where(condition)
            .order_by(key.desc())
            .limit(EXAMPLES_PER_CHECK)
        )
        seen = self.clock().isoformat()
        pending.late_examples = [
            {
                "key": _jsonable(row[0]),
                "unit": row[1],
                "event_time": _jsonable(row[2]),
                "column": dataset.watermark,
                "value": _jsonable(row[3]),
                "seen_at": seen,
            }
            for row in connection.execute(statement, parameters).fetchall()
        ]
        log.warning(
            "dataset %s: %d row(s) arrived after the %d s late window; counted and reported on Data health",
            dataset.id,
            pending.late_rows,
            dataset.late_window_seconds,
        )

    def _recompute(self, connection: Connection, now: datetime, tier: str, buckets: set[int]) -> Block:
        size = self._tier_size(tier)
        step = FULL_LOAD_CHUNKS[tier]
        ranges = contiguous_ranges(sorted(buckets), size)
        short = [(a, b) for a, b in ranges if b - a <= step]
        parts = []
        for offset in range(0, len(short), RANGES_PER_QUERY):
            chunk = [(bucket_start(a), bucket_start(b)) for a, b in short[offset : offset + RANGES_PER_QUERY]]
            parts.append(self._grouped(connection, now, tier, chunk))
        for a, b in (r for r in ranges if r[1] - r[0] > step):  # a long run (a reconcile): in slices, as a first poll
            for low, high in chunked(a, b, step):
                parts.append(self._grouped(connection, now, tier, [(bucket_start(low), bucket_start(high))]))
        return concat(parts, self._tier_columns(tier))

    # -- quality examples ------------------------------------------------------------------------

    def _examples(
        self,
        connection: Connection,
        fresh: dict[str, tuple[Block, int]],
        *,
        replace_all: bool = False,
        held: dict[str, list[dict[str, Any]]] | None = None,
    ) -> dict[str, list[dict[str, Any]]]:
        """A few example rows of every check that found bad rows in the freshly computed buckets.

        Examples already ``held`` (default: the poller's) whose event time lies in a recomputed bucket
        are dropped first (the row may have been corrected), then the newest bad rows of those buckets
        are added.
        """
        held = self.examples if held is None else held
        reflected = self._reflect()
        dataset = self.dataset
        names = set(self.aggregations) - {ROWS, *(m.name for m in dataset.measures)}
        spans = [(b, b + size) for block, size in fresh.values() for b in np.unique(block[BUCKET]).tolist()]
        found: dict[str, list[dict[str, Any]]] = {}
        unit_checks = self._unit_checks(fresh, held)
        checked = names | set(unit_checks)
        conditions: dict[str, tuple[Any, str | None]] | None = None
        for check in sorted(checked | set(held) - {undated_check(dataset)}):
            kept = [] if replace_all else self._kept_examples(held.get(check, []), spans)
            bad_buckets = self._bad_buckets(fresh, check)
            new: list[dict[str, Any]] = []
            if bad_buckets and check in checked:
                if conditions is None:  # built only when some check found bad rows
                    conditions = dict(check_conditions(reflected, self.rules.bounds))
                    if OUTSIDE in conditions and self._outline_points:  # outside the outline, inside the box
                        box, column = conditions[OUTSIDE]
                        lat, lon = (reflected.table.c[c] for c in (dataset.latitude, dataset.longitude))
                        points = [and_(lat == a, lon == b) for a, b in sorted(self._outline_points)[:100]]
                        conditions[OUTSIDE] = (or_(box, *points), column)
                    conditions[DUPLICATES] = (None, None)
                    conditions |= {name: (condition, dataset.unit) for name, condition in unit_checks.items()}
                ranges = [(bucket_start(a), bucket_start(b)) for a, b in bad_buckets]
                where = time_ranges_condition(reflected, ranges)
                condition, column = conditions[check]
                if check == DUPLICATES:
                    statement = duplicate_example_statement(reflected, where, limit=EXAMPLES_PER_CHECK)
                    column = dataset.natural_key[0]
                else:
                    statement = example_statement(reflected, condition & where, column, limit=EXAMPLES_PER_CHECK)
                new = [self._example(row, column) for row in connection.execute(statement).mappings()]
            if not new and not kept and check not in held:
                continue
            keys = {e["key"] for e in new}
            merged = new + [e for e in kept if e["key"] not in keys]
            merged.sort(key=lambda e: str(e.get("event_time") or ""), reverse=True)
            found[check] = merged[:EXAMPLES_PER_CHECK]
        return found

    def _unit_checks(self, fresh: dict[str, tuple[Block, int]], held: dict[str, Any]) -> dict[str, Any]:
        """Conditions for rows with no ward code and with codes neither current nor pre-2025."""
        table = self._reflect().table
        unit = table.c[self.dataset.unit]
        present: set[int] = set()
        for block, _ in fresh.values():
            present.update(np.unique(block[UNIT][block[ROWS] > 0]).tolist())
        missing = 0 in present
        names = self.encoder.units.names
        codes = {names[code] for code in present if code}
        checks: dict[str, Any] = {}
        if (missing or MISSING_UNIT in held) and self.dataset.unit not in self.dataset.required:
            checks[MISSING_UNIT] = unit.is_(None)
        known = self.rules.known_units
        if known is not None:
            unknown = sorted(codes - known)
            if unknown:
                checks[UNKNOWN_UNIT] = unit.in_(unknown[:500])
        return checks

    def _kept_examples(self, examples: list[dict[str, Any]], spans: list[tuple[int, int]]) -> list[dict[str, Any]]:
        kept = []
        for example in examples:
            moment = example.get("event_time")
            epoch = to_epoch(datetime.fromisoformat(moment)) if moment else None
            if epoch is None or not any(a <= epoch < b for a, b in spans):
                kept.append(example)
        return kept

    def _bad_buckets(self, fresh: dict[str, tuple[Block, int]], check: str) -> list[tuple[int, int]]:
        """(start, end) of the newest buckets where ``check`` counted bad rows."""
        found = []
        for block, size in fresh.values():
            units = block[UNIT]
            if check in block:
                bad = block[BUCKET][block[check] > 0]
            elif check == MISSING_UNIT:
                bad = block[BUCKET][(units == 0) & (block[ROWS] > 0)]
            elif check == UNKNOWN_UNIT and self.rules.known_units is not None:
                known = self.encoder.units.mask(self.rules.known_units)
                bad = block[BUCKET][~known[units] & (units != 0)]
            else:
                continue
            found += [(b, b + size) for b in np.unique(bad).tolist()]
        return sorted(set(found), reverse=True)[:EXAMPLE_BUCKETS]

    def _example(self, row, column: str | None) -> dict[str, Any]:
        dataset = self.dataset
        example = {
            "key": _jsonable(row[dataset.key]),
            "unit": row[dataset.unit],
            "event_time": _jsonable(row[dataset.event_time]),
            "column": column,
        }
        if column == dataset.latitude and dataset.longitude:
            example["value"] = f"{row[dataset.latitude]}, {row[dataset.longitude]}"
        elif column in dataset.natural_key and dataset.natural_key:
            example["value"] = ", ".join(str(_jsonable(row[c])) for c in dataset.natural_key)
            example["column"] = ", ".join(dataset.natural_key)
        elif column is not None:
            example["value"] = _jsonable(row[column])
        if column in dataset.personal:
            example["value"] = mask_value(example.get("value"))
        return example

    # -- state, entities and publishing ----------------------------------------------------------

    def _dated(self, table) -> Any:
        """Rows with an event time: those without one are bad rows, in no figure (not even a state count)."""
        return table.c[self.dataset.event_time].is_not(None)

    def _state_frame(self, connection: Connection, now: datetime) -> pd.DataFrame:
        reflected = self._reflect()
        table = reflected.table
        keys = [table.c[self.dataset.unit].label(UNIT)]
        if self.dataset.entity:
            keys.append(table.c[self.dataset.entity].label(ENTITY))
        frames = []
        for measure in self.dataset.state:

            def build(measure=measure) -> Select:
                return (
                    select(*keys, measure_expression(reflected, measure, NOW, filters_in_where=True))
                    .where(*where_conditions(reflected, measure, NOW), self._dated(table))
                    .group_by(*(unindexed_group_key(reflected, k.element) for k in keys))
                )

            result = connection.execute(self._statement(("state", measure.name), build), {"now": now})
            frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
            frames.append(frame.set_index([k.name for k in keys]))
        if not frames:
            return EMPTY_STATE
        state = pd.concat(frames, axis=1).fillna(0).reset_index()
        state[UNIT] = state[UNIT].astype("string")
        return state

    def _entities_frame(self, connection: Connection) -> pd.DataFrame:
        reflected = self._reflect()
        reference = self.dataset.reference
        if reference is None or reflected.reference is None:
            return EMPTY_ENTITIES
        table = reflected.reference
        columns = [table.c[reference.key].label("entity"), table.c[reference.name].label("name")]
        for optional, label in ((reference.lat, "lat"), (reference.lon, "lon")):
            if optional:
                columns.append(table.c[optional].label(label))
        if self.dataset.unit in table.c:
            columns.append(table.c[self.dataset.unit].label(UNIT))
        columns += [table.c[a] for a in reference.attributes]
        result = connection.execute(select(*columns))
        frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
        frame["entity"] = frame["entity"].astype("string")
        return frame

    def _durations_frame(self, connection: Connection, now: datetime) -> pd.DataFrame:
        """Every declared duration of records that ended in the last 35 days: unit, duration, end, value.

        One query per declaration, bounded by ``start >= now - lookback`` (the indexed column) and
        ``end`` in the retention window; durations are computed here (pandas), so the SQL is
        the same on every dialect.
        """
        columns = [UNIT, DURATION_NAME, DURATION_END, DURATION_VALUE]
        if not self.dataset.durations:
            return EMPTY_DURATIONS
        table = self._reflect().table
        parts = [self._read_durations(connection, table, duration, now) for duration in self.dataset.durations]
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

    def _positions_frame(self, connection: Connection, now: datetime) -> pd.DataFrame | None:
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
            conditions = [*where_conditions(reflected, measure, now), self._dated(table)]
        else:
            conditions = [event_time >= now - timedelta(seconds=positions.since_seconds), event_time <= now]
        statement = select(*columns).where(*conditions).order_by(table.c[self.dataset.key])
        result = connection.execute(statement)
        frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
        frame[UNIT] = frame[UNIT].astype("string")
        frame.insert(
            2, "time", ((pd.to_datetime(frame.pop("_time")) - EPOCH) // pd.Timedelta(seconds=1)).astype("int64")
        )
        return frame

    def _history_names(self) -> list[str]:
        """The published history frames (``hourly_entity``: per entity, for ``by_entity`` datasets)."""
        return ["recent", "hourly", "daily"] + (["hourly_entity"] if self.dataset.by_entity else [])

    def _history_columns(self, name: str) -> list[str]:
        keys = {"recent": self.keys, "hourly_entity": self.hourly_keys}.get(name, [BUCKET, UNIT])
        return self._columns(keys)

    def _history_tier(self, name: str) -> Tier | None:
        tiers = self.tiers
        if tiers is None:
            return None
        return {"recent": tiers.fine, "hourly": tiers.hourly, "hourly_entity": tiers.hourly, "daily": tiers.daily}[name]

    def _history_block(self, name: str, block: Block) -> Block:
        """Rows of a tier as the frame ``name`` publishes them (``hourly`` sums the entity away)."""
        if name == "hourly" and self.dataset.by_entity:
            return combine(block, [BUCKET, UNIT], self.aggregations)
        return block

    def rollup_frames(self) -> dict[str, pd.DataFrame]:
        """The history tiers as published: ``recent`` (fine), ``hourly`` (35 days), ``daily`` (all)."""
        frames = {}
        for name in self._history_names():
            tier = self._history_tier(name)
            columns = self._history_columns(name)
            block = self._history_block(name, tier.block()) if tier is not None else empty_block(columns)
            frames[name] = self.encoder.to_frame(block, columns)
        return frames

    def frames(self) -> dict[str, pd.DataFrame]:
        """The snapshot frames: the history tiers, and the current state and entities of the last poll."""
        return self.rollup_frames() | self._current_frames()

    def _current_frames(self) -> dict[str, pd.DataFrame]:
        empty = {"state": EMPTY_STATE, "entities": EMPTY_ENTITIES}
        return empty | self._current

    def _encoded(self) -> dict[str, EncodedFrame]:
        """Frames encoded for the store: history frames in parts, re-encoding only the parts changed
        since the last publish; other frames re-used as they were when unchanged."""
        encoded: dict[str, EncodedFrame] = {}
        for name in self._history_names():
            encoded |= self._partitioned(name)
        for name, frame in self._current_frames().items():
            previous = self.encoded.get(name)
            if previous is not None and (previous[0] is frame or previous[0].equals(frame)):
                encoded[name] = previous[1]
            else:
                encoded[name] = encoded_frame(frame)
                self.encoded[name] = (frame, encoded[name])
        return encoded

    def _partitioned(self, name: str) -> dict[str, EncodedFrame]:
        """One history frame as parts ``name@period``, encoding only the parts changed (or new)."""
        tier = self._history_tier(name)
        cache = self.parts.setdefault(name, {})
        columns = self._history_columns(name)
        if tier is None or not tier.parts:
            cache.clear()
            return {name: self.encoder.encode(empty_block(columns), columns)}  # an empty frame keeps its columns
        dirty = self.dirty.get(name)
        for period in [p for p in cache if p not in tier.parts]:  # aged out of the tier, or emptied
            del cache[period]
        changed = set(tier.parts) if dirty is None else {p for p in dirty if p in tier.parts}
        for period in changed | (tier.parts.keys() - cache.keys()):
            cache[period] = self.encoder.encode(self._history_block(name, tier.parts[period]), columns)
        return {f"{name}{PART_SEPARATOR}{period}": cache[period] for period in sorted(cache)}

    def quality_meta(self) -> dict[str, Any]:
        """Quality checks, example rows and late arrivals, as published in the snapshot's metadata."""
        reflected = self._reflect()
        return {
            "checks": check_catalogue(self.dataset, quality_names(reflected, self.rules.bounds)),
            "examples": {check: list(found) for check, found in self.examples.items() if found},
            "late_arrivals": self.late.as_meta(),
            "undated": {
                "check": undated_check(self.dataset),
                "total": sum(self.undated.values()),
                "by_unit": dict(self.undated),
            },
            "late_detection": reflected.increasing_key,
            "bounds": list(vars(self.rules.bounds).values()) if self.rules.bounds else None,
        }

    def _publish(self, now: datetime) -> Snapshot:
        newest_event = self.tiers.fine.newest() if self.tiers is not None else None
        meta: dict[str, Any] = {
            "dataset": self.dataset.id,
            "sector": self.dataset.sector,
            "polled_at": now,
            "watermark": self.watermark,
            "newest_bucket": newest_event,
            "bucket_seconds": self.dataset.bucket_seconds,
            "expected_seconds": self.dataset.expected_seconds,
            "poll_seconds": self.dataset.poll_seconds,
            "late_window_seconds": self.dataset.late_window_seconds,
            "retention": RETENTION,
            "tiers": {
                "recent_from": self.tiers.fine_floor if self.tiers else None,
                "hourly_from": self.tiers.hourly_floor if self.tiers else None,
                "hour_seconds": self.hour_size,
            },
            "quality": self.quality_meta(),
        }
        snapshot = self.store.put(self.dataset.id, meta, self._encoded())
        self.dirty = {name: set() for name in PARTITIONS}
        return snapshot
