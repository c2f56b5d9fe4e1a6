"""SQL built from dataset configuration: bucketing, measures and filters as SQLAlchemy expressions.

Identifiers come only from a reflected ``Table`` (so a name that is not in the warehouse never reaches
SQL) and values are always bound parameters.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Engine,
    Integer,
    MetaData,
    Select,
    Subquery,
    Table,
    and_,
    bindparam,
    case,
    cast,
    extract,
    func,
    inspect,
    literal,
    or_,
    select,
)
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import UnaryExpression

from config.datasets import COLUMN_PREFIX, NOW, Dataset, Filter, Measure

log = logging.getLogger(__name__)

ROWS = "_rows"
"""Quality measure: every row of the bucket (each natural key once)."""
OUTSIDE = "_outside_area"
"""Quality measure: rows whose coordinates lie outside the province's bounds."""
DUPLICATES = "_duplicates"
"""Quality measure: extra copies of a natural key (left out of every other measure)."""
POINT_LAT = "_point_lat"
POINT_LON = "_point_lon"
"""Columns of a grouped query split by point (see ``grouped_statement``)."""
COPY = "_copy"
"""Column of the de-duplicating subquery: 1 for the first row of a natural key, 2… for copies."""


def invalid_measure(column: str) -> str:
    """Name of the quality measure counting values of ``column`` outside their valid range."""
    return f"_invalid_{column}"


def sentinel_measure(column: str) -> str:
    """Name of the quality measure counting "no value" sentinels (-999) in ``column``."""
    return f"_sentinel_{column}"


def missing_measure(column: str) -> str:
    """Name of the quality measure counting rows where required ``column`` is NULL."""
    return f"_missing_{column}"


def completeness_columns(dataset: Dataset) -> tuple[str, ...]:
    """Columns whose NULLs the rollups count per bucket: the ``required`` ones and the watermark (a
    row without one is invisible to incremental polling). The event time is left out: a row without
    one has no bucket, so the poller counts those rows apart (``undated_statement``)."""
    columns = dict.fromkeys((*dataset.required, dataset.watermark))
    columns.pop(dataset.event_time, None)
    return tuple(columns)


@dataclass(frozen=True)
class Bounds:
    """A latitude/longitude box (WGS84 degrees): the province's extent for the coordinate check."""

    south: float
    west: float
    north: float
    east: float

    def contains(self, lat: float, lon: float) -> bool:
        """True when the point lies inside the box."""
        return self.south <= lat <= self.north and self.west <= lon <= self.east


class SchemaError(ValueError):
    """The warehouse does not have a table or column that the configuration names."""


@dataclass(frozen=True)
class ReflectedDataset:
    """A dataset with its warehouse table reflected, ready to build SQL from."""

    dataset: Dataset
    table: Table
    reference: Table | None
    dialect: str
    unindexed: tuple[str, ...]
    increasing_key: bool = False
    """The key is an integer that grows with each insert: rows arriving after the late window are found by it."""


def reflect_dataset(engine: Engine, dataset: Dataset) -> ReflectedDataset:
    """Reflect the dataset's table; ``SchemaError`` names any missing table or column."""
    metadata = MetaData()
    inspector = inspect(engine)
    if not inspector.has_table(dataset.table):
        raise SchemaError(f"dataset {dataset.id}: table {dataset.table!r} not found in the warehouse")
    table = Table(dataset.table, metadata, autoload_with=engine)
    missing = sorted(c for c in dataset.columns_used if c not in table.c)
    if missing:
        raise SchemaError(f"dataset {dataset.id}: table {dataset.table} has no column(s) {', '.join(missing)}")
    reference = None
    if dataset.reference is not None:
        ref = dataset.reference
        if not inspector.has_table(ref.table):
            raise SchemaError(f"dataset {dataset.id}: reference table {ref.table!r} not found")
        reference = Table(ref.table, metadata, autoload_with=engine)
        wanted = {ref.key, ref.name, *ref.attributes, *(c for c in (ref.lat, ref.lon) if c)}
        missing = sorted(c for c in wanted if c not in reference.c)
        if missing:
            raise SchemaError(f"dataset {dataset.id}: table {ref.table} has no column(s) {', '.join(missing)}")
    indexed: set[str] = set()
    for index in inspector.get_indexes(dataset.table):
        names = index.get("column_names") or []
        if names and names[0]:
            indexed.add(names[0])
    indexed |= set(inspector.get_pk_constraint(dataset.table).get("constrained_columns") or [])
    needs_index = {dataset.watermark, dataset.event_time, *dataset.sortable}
    unindexed = sorted(c for c in needs_index if c not in indexed)
    if dataset.natural_key and not indexed & set(dataset.natural_key):
        unindexed.append(dataset.natural_key[0])
    unindexed = tuple(unindexed)
    for column in unindexed:
        log.warning(
            "dataset %s: column %s.%s has no index; polling or drill-down will scan the table",
            dataset.id,
            dataset.table,
            column,
        )
    try:
        increasing_key = table.c[dataset.key].type.python_type is int
    except NotImplementedError:
        increasing_key = False
    if not increasing_key:
        log.warning(
            "dataset %s: key %s is not an integer; rows committed after the late window cannot be detected",
            dataset.id,
            dataset.key,
        )
    return ReflectedDataset(dataset, table, reference, engine.dialect.name, unindexed, increasing_key)


Source = Table | Subquery
"""What aggregates read from: the table itself, or its de-duplicating subquery."""


def epoch_seconds(reflected: ReflectedDataset, column: ColumnElement) -> ColumnElement:
    """Seconds since 1970 of a naive local timestamp, read as if it were UTC (bucketing only)."""
    if reflected.dialect == "sqlite":
        return cast(func.strftime("%s", column), Integer)
    return cast(func.floor(extract("epoch", column)), BigInteger)


def bucket_expression(reflected: ReflectedDataset, size_seconds: int, source: Source | None = None) -> ColumnElement:
    """Start of the ``size_seconds`` bucket holding the event time, as epoch seconds."""
    source = reflected.table if source is None else source
    epoch = epoch_seconds(reflected, source.c[reflected.dataset.event_time])
    size = literal(int(size_seconds), BigInteger)
    # ``//`` is integer (floor) division on both dialects; ``/`` is true division in SQLAlchemy 2
    return (epoch // size) * size


def unindexed_group_key(reflected: ReflectedDataset, column: ColumnElement) -> ColumnElement:
    """A GROUP BY key that keeps SQLite from grouping by walking a whole index of that column.

    With an index on (ward_code, ...) SQLite prefers scanning it in order over searching a selective
    filter's index (500 ms instead of 6 ms for the demo's "processing dossiers"); the unary ``+`` is
    SQLite's documented way to take a term out of index selection. Other dialects get the column.
    """
    if reflected.dialect == "sqlite":
        return UnaryExpression(column, operator=operators.custom_op("+"))
    return column


def filter_expression(table: Source, condition: Filter, now: datetime) -> ColumnElement:
    """One configured filter as a boolean expression with bound values."""
    column = table.c[condition.column]
    value = condition.value
    if isinstance(value, str) and value == NOW:
        value = now
    elif isinstance(value, str) and value.startswith(COLUMN_PREFIX):
        value = table.c[value[1:]]
    match condition.op:
        case "eq":
            return column == value
        case "ne":
            return column != value
        case "in":
            return column.in_(list(value))
        case "not_in":
            return column.not_in(list(value))
        case "lt":
            return column < value
        case "le":
            return column <= value
        case "gt":
            return column > value
        case "ge":
            return column >= value
        case "is_null":
            return column.is_(None)
        case "not_null":
            return column.is_not(None)
    raise ValueError(f"unknown operator {condition.op!r}")


def valid_expression(
    reflected: ReflectedDataset, column_name: str, source: Source | None = None
) -> ColumnElement | None:
    """True when ``column_name`` is inside its valid range and not a sentinel (None when no range is set)."""
    bounds = reflected.dataset.valid_ranges.get(column_name)
    if bounds is None:
        return None
    column = (reflected.table if source is None else source).c[column_name]
    low, high = bounds
    parts = []
    if low is not None:
        parts.append(column >= low)
    if high is not None:
        parts.append(column <= high)
    if reflected.dataset.sentinels:
        parts.append(column.not_in(list(reflected.dataset.sentinels)))
    return and_(*parts)


def sentinel_condition(reflected: ReflectedDataset, column_name: str, source: Source | None = None) -> ColumnElement:
    """The value is one of the dataset's "no value" sentinels."""
    column = (reflected.table if source is None else source).c[column_name]
    return column.in_(list(reflected.dataset.sentinels))


def out_of_range_condition(
    reflected: ReflectedDataset, column_name: str, source: Source | None = None
) -> ColumnElement:
    """A value is present, is not a sentinel, and lies outside the valid range."""
    column = (reflected.table if source is None else source).c[column_name]
    low, high = reflected.dataset.valid_ranges[column_name]
    outside = []
    if low is not None:
        outside.append(column < low)
    if high is not None:
        outside.append(column > high)
    parts = [column.is_not(None), or_(*outside) if outside else literal(False)]
    if reflected.dataset.sentinels:
        parts.append(column.not_in(list(reflected.dataset.sentinels)))
    return and_(*parts)


def outside_condition(reflected: ReflectedDataset, bounds: Bounds, source: Source | None = None) -> ColumnElement:
    """Both coordinates present and the point outside the province's bounds."""
    source = reflected.table if source is None else source
    lat, lon = source.c[reflected.dataset.latitude], source.c[reflected.dataset.longitude]
    return and_(
        lat.is_not(None),
        lon.is_not(None),
        or_(lat < bounds.south, lat > bounds.north, lon < bounds.west, lon > bounds.east),
    )


def where_conditions(
    reflected: ReflectedDataset, measure: Measure, now: datetime, source: Source | None = None
) -> list[ColumnElement]:
    """The measure's own filters, for a WHERE clause."""
    source = reflected.table if source is None else source
    return [filter_expression(source, f, now) for f in measure.where]


def measure_expression(
    reflected: ReflectedDataset,
    measure: Measure,
    now: datetime,
    *,
    filters_in_where: bool = False,
    source: Source | None = None,
    keep: ColumnElement | None = None,
) -> ColumnElement:
    """The aggregate for one measure; values outside their valid range (and sentinels) are left out.

    With ``filters_in_where`` the measure's filters are left for the caller's WHERE clause (state
    measures, where an index on the filter keeps the query small). ``keep`` is an extra condition a
    row must meet to count (the first copy of its natural key).
    """
    source = reflected.table if source is None else source
    conditions = [] if filters_in_where else where_conditions(reflected, measure, now, source)
    if keep is not None:
        conditions.append(keep)
    target = source.c[measure.column] if measure.column else None
    if target is not None:
        valid = valid_expression(reflected, measure.column, source)
        if valid is not None:
            conditions.append(valid)
    if measure.agg == "count":
        if not conditions and target is None:
            return func.count().label(measure.name)
        counted = target if target is not None else literal(1)
        if conditions:
            counted = case((and_(*conditions), counted))
        return func.count(counted).label(measure.name)
    value = case((and_(*conditions), target)) if conditions else target
    aggregate = {"sum": func.sum, "min": func.min, "max": func.max}[measure.agg]
    return aggregate(value).label(measure.name)


def _count_where(condition: ColumnElement, keep: ColumnElement | None, name: str) -> ColumnElement:
    both = and_(condition, keep) if keep is not None else condition
    return func.count(case((both, literal(1)))).label(name)


def quality_names(reflected: ReflectedDataset, bounds: Bounds | None) -> list[str]:
    """Names of the quality measures rolled up for this dataset (stable for one poller)."""
    dataset = reflected.dataset
    names = [ROWS, *(missing_measure(c) for c in completeness_columns(dataset))]
    for column in dataset.valid_ranges:
        names += [sentinel_measure(column), invalid_measure(column)]
    if bounds is not None and dataset.latitude and dataset.longitude:
        names.append(OUTSIDE)
    if dataset.natural_key:
        names.append(DUPLICATES)
    return names


def quality_expressions(
    reflected: ReflectedDataset,
    *,
    bounds: Bounds | None = None,
    source: Source | None = None,
    keep: ColumnElement | None = None,
) -> list[ColumnElement]:
    """Counts of rows, NULLs in required columns, sentinels, out-of-range values, points outside the
    province and duplicate copies; all but the last over first copies only."""
    source = reflected.table if source is None else source
    dataset = reflected.dataset
    expressions: list[ColumnElement] = [
        func.count(case((keep, literal(1)))).label(ROWS) if keep is not None else func.count().label(ROWS)
    ]
    for column_name in completeness_columns(dataset):
        expressions.append(_count_where(source.c[column_name].is_(None), keep, missing_measure(column_name)))
    for column_name in dataset.valid_ranges:
        expressions.append(
            _count_where(sentinel_condition(reflected, column_name, source), keep, sentinel_measure(column_name))
        )
        expressions.append(
            _count_where(out_of_range_condition(reflected, column_name, source), keep, invalid_measure(column_name))
        )
    if bounds is not None and dataset.latitude and dataset.longitude:
        expressions.append(_count_where(outside_condition(reflected, bounds, source), keep, OUTSIDE))
    if dataset.natural_key:
        expressions.append(func.count(case((source.c[COPY] > 1, literal(1)))).label(DUPLICATES))
    return expressions


def aggregate_columns(reflected: ReflectedDataset) -> list[str]:
    """Columns the rollup queries read (the de-duplicating subquery carries only these)."""
    dataset = reflected.dataset
    names = {dataset.key, dataset.event_time, dataset.watermark, dataset.unit, *dataset.required, *dataset.valid_ranges}
    names |= {c for c in (dataset.entity, dataset.latitude, dataset.longitude) if c}
    names |= set(dataset.natural_key)
    for measure in (*dataset.measures, *dataset.state):
        names |= {f.column for f in measure.where}
        names |= {f.value[1:] for f in measure.where if isinstance(f.value, str) and f.value[:1] == COLUMN_PREFIX}
        if measure.column:
            names.add(measure.column)
    return sorted(names)


def row_source(reflected: ReflectedDataset, condition: ColumnElement | None) -> tuple[Source, ColumnElement | None]:
    """What the rollup aggregates over, and the condition a row must meet to count.

    Without a natural key: the table (the caller puts ``condition`` in its WHERE). With one: a subquery
    numbering the copies of each natural key by key order, restricted by ``condition``; only copy 1
    counts, later copies are duplicates. Copies share their event time, so they fall in one bucket and
    a recompute of that bucket always sees all of them.
    """
    dataset = reflected.dataset
    if not dataset.natural_key:
        return reflected.table, None
    table = reflected.table
    copy = (
        func.row_number()
        .over(partition_by=[table.c[c] for c in dataset.natural_key], order_by=table.c[dataset.key])
        .label(COPY)
    )
    inner = select(*(table.c[c] for c in aggregate_columns(reflected)), copy)
    if condition is not None:
        inner = inner.where(condition)
    source = inner.subquery("source")
    return source, source.c[COPY] == 1


def grouped_statement(
    reflected: ReflectedDataset,
    now: datetime,
    size_seconds: int,
    condition: ColumnElement | None,
    *,
    by_entity: bool,
    bounds: Bounds | None = None,
    points: bool = False,
) -> Select:
    """One grouped query: measures and quality counts per (bucket, unit[, entity]) over ``condition``.

    With ``points`` the groups are split by point too (``POINT_LAT``, ``POINT_LON``): the poller tests
    each distinct point against the province outline, then sums the split groups back. Sensors keep
    their position, so this rarely adds groups; rows that each have their own point are few by nature.
    """
    dataset = reflected.dataset
    source, keep = row_source(reflected, condition)
    columns = [
        bucket_expression(reflected, size_seconds, source).label("bucket"),
        source.c[dataset.unit].label("unit"),
    ]
    if by_entity and dataset.entity:
        columns.append(source.c[dataset.entity].label("entity"))
    if points:
        columns += [source.c[dataset.latitude].label(POINT_LAT), source.c[dataset.longitude].label(POINT_LON)]
    measures = [measure_expression(reflected, m, now, source=source, keep=keep) for m in dataset.measures]
    statement = select(*columns, *measures, *quality_expressions(reflected, bounds=bounds, source=source, keep=keep))
    if source is reflected.table and condition is not None:
        statement = statement.where(condition)
    return statement.group_by(*(c.element for c in columns))


def day_counts_statement(reflected: ReflectedDataset, days: int) -> Select:
    """Rows per day for ``days`` consecutive days, one row of ``days`` counts, bounds bound as ``day0``
    .. ``day<days>``: each count a range count of the event-time index (an index-only scan where the
    dialect has one), far cheaper than grouping every row by an expression of its time."""
    column = reflected.table.c[reflected.dataset.event_time]
    counts = [
        select(func.count())
        .where(column >= bindparam(f"day{i}"), column < bindparam(f"day{i + 1}"))
        .scalar_subquery()
        .label(f"count{i}")
        for i in range(days)
    ]
    return select(*counts)


def check_conditions(reflected: ReflectedDataset, bounds: Bounds | None) -> dict[str, tuple[ColumnElement, str | None]]:
    """Per quality check (named like its rollup measure): the bad-row condition and the column it is about."""
    dataset = reflected.dataset
    checks: dict[str, tuple[ColumnElement, str | None]] = {}
    for column_name in completeness_columns(dataset):
        checks[missing_measure(column_name)] = (reflected.table.c[column_name].is_(None), column_name)
    for column_name in dataset.valid_ranges:
        checks[sentinel_measure(column_name)] = (sentinel_condition(reflected, column_name), column_name)
        checks[invalid_measure(column_name)] = (out_of_range_condition(reflected, column_name), column_name)
    if bounds is not None and dataset.latitude and dataset.longitude:
        checks[OUTSIDE] = (outside_condition(reflected, bounds), dataset.latitude)
    return checks


def example_statement(
    reflected: ReflectedDataset, condition: ColumnElement, column: str | None, *, limit: int
) -> Select:
    """A few rows meeting ``condition``, newest key first: key, unit, event time and the column at issue."""
    dataset = reflected.dataset
    table = reflected.table
    names = [dataset.key, dataset.unit, dataset.event_time]
    extra = [column] if column and column not in names else []
    if column == dataset.latitude and dataset.longitude:
        extra.append(dataset.longitude)
    return (
        select(*(table.c[c] for c in names + extra)).where(condition).order_by(table.c[dataset.key].desc()).limit(limit)
    )


def undated_statement(reflected: ReflectedDataset) -> Select:
    """Rows without an event time, per unit: they fall in no bucket, so they are counted here, apart
    from the rollups (an ``IS NULL`` probe of the event-time index: cheap while such rows are few)."""
    table = reflected.table
    unit = table.c[reflected.dataset.unit]
    return (
        select(unit.label("unit"), func.count().label(ROWS))
        .where(table.c[reflected.dataset.event_time].is_(None))
        .group_by(unindexed_group_key(reflected, unit))
    )


def duplicate_example_statement(reflected: ReflectedDataset, condition: ColumnElement, *, limit: int) -> Select:
    """A few duplicate copies (not the first row of their natural key) inside ``condition``."""
    dataset = reflected.dataset
    source, _ = row_source(reflected, condition)
    names = dict.fromkeys([dataset.key, dataset.unit, dataset.event_time, *dataset.natural_key])
    return (
        select(*(source.c[c] for c in names), source.c[COPY])
        .where(source.c[COPY] > 1)
        .order_by(source.c[dataset.key].desc())
        .limit(limit)
    )


def time_ranges_condition(
    reflected: ReflectedDataset, ranges: list[tuple[datetime | None, datetime | None]]
) -> ColumnElement:
    """Event time inside any of the half-open ranges (uses the event-time index); None leaves a side open."""
    column = reflected.table.c[reflected.dataset.event_time]
    parts = []
    for start, end in ranges:
        bounds = [
            c
            for c in ((column >= start) if start is not None else None, (column < end) if end is not None else None)
            if c is not None
        ]
        parts.append(and_(*bounds) if bounds else column.is_not(None))
    return or_(*parts)
