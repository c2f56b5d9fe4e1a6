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
    Table,
    and_,
    case,
    cast,
    extract,
    func,
    inspect,
    literal,
    or_,
)

from config.datasets import COLUMN_PREFIX, NOW, Dataset, Filter, Measure

log = logging.getLogger(__name__)

ROWS = "_rows"
"""Quality measure: every row of the bucket."""


def invalid_measure(column: str) -> str:
    """Name of the quality measure counting values of ``column`` outside their valid range."""
    return f"_invalid_{column}"


def missing_measure(column: str) -> str:
    """Name of the quality measure counting rows where required ``column`` is NULL."""
    return f"_missing_{column}"


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
    unindexed = tuple(sorted(c for c in needs_index if c not in indexed))
    for column in unindexed:
        log.warning(
            "dataset %s: column %s.%s has no index; polling or drill-down will scan the table",
            dataset.id,
            dataset.table,
            column,
        )
    return ReflectedDataset(dataset, table, reference, engine.dialect.name, unindexed)


def epoch_seconds(reflected: ReflectedDataset, column: ColumnElement) -> ColumnElement:
    """Seconds since 1970 of a naive local timestamp, read as if it were UTC (bucketing only)."""
    if reflected.dialect == "sqlite":
        return cast(func.strftime("%s", column), Integer)
    return cast(func.floor(extract("epoch", column)), BigInteger)


def bucket_expression(reflected: ReflectedDataset, size_seconds: int) -> ColumnElement:
    """Start of the ``size_seconds`` bucket holding the event time, as epoch seconds."""
    epoch = epoch_seconds(reflected, reflected.table.c[reflected.dataset.event_time])
    size = literal(int(size_seconds), Integer)
    if reflected.dialect == "sqlite":
        return (epoch // size) * size  # integer division (SQLAlchemy 2 renders "/" as true division)
    return cast(func.floor(epoch / cast(size, BigInteger)), BigInteger) * size


def filter_expression(table: Table, condition: Filter, now: datetime) -> ColumnElement:
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


def valid_expression(reflected: ReflectedDataset, column_name: str) -> ColumnElement | None:
    """True when ``column_name`` is inside its configured valid range (None when no range is set)."""
    bounds = reflected.dataset.valid_ranges.get(column_name)
    if bounds is None:
        return None
    column = reflected.table.c[column_name]
    low, high = bounds
    parts = []
    if low is not None:
        parts.append(column >= low)
    if high is not None:
        parts.append(column <= high)
    return and_(*parts)


def where_conditions(reflected: ReflectedDataset, measure: Measure, now: datetime) -> list[ColumnElement]:
    """The measure's own filters, for a WHERE clause."""
    return [filter_expression(reflected.table, f, now) for f in measure.where]


def measure_expression(
    reflected: ReflectedDataset, measure: Measure, now: datetime, *, filters_in_where: bool = False
) -> ColumnElement:
    """The aggregate for one measure; values outside their valid range are left out.

    With ``filters_in_where`` the measure's filters are left for the caller's WHERE clause (state
    measures, where an index on the filter keeps the query small).
    """
    table = reflected.table
    conditions = [] if filters_in_where else where_conditions(reflected, measure, now)
    target = table.c[measure.column] if measure.column else None
    if target is not None:
        valid = valid_expression(reflected, measure.column)
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


def quality_expressions(reflected: ReflectedDataset) -> list[ColumnElement]:
    """Counts of all rows, of NULLs in required columns and of out-of-range values."""
    table = reflected.table
    expressions: list[ColumnElement] = [func.count().label(ROWS)]
    for column_name in reflected.dataset.required:
        expressions.append(
            func.count(case((table.c[column_name].is_(None), literal(1)))).label(missing_measure(column_name))
        )
    for column_name in reflected.dataset.valid_ranges:
        valid = valid_expression(reflected, column_name)
        column = table.c[column_name]
        bad = and_(column.is_not(None), ~valid)
        expressions.append(func.count(case((bad, literal(1)))).label(invalid_measure(column_name)))
    return expressions


def time_ranges_condition(reflected: ReflectedDataset, ranges: list[tuple[datetime, datetime]]) -> ColumnElement:
    """Event time inside any of the half-open ranges (uses the event-time index)."""
    column = reflected.table.c[reflected.dataset.event_time]
    return or_(*(and_(column >= start, column < end) for start, end in ranges))
