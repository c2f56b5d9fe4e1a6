"""Drill-down to individual records: the one path that reads the warehouse from a web request.

Parameterised, keyset-paged on an indexed column (page 2,000 costs what page 1 costs), limited by
the engine's statement timeout, and personal data masked unless the caller may see it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, and_, or_, select

from config.datasets import Dataset
from data_sources.sql import ReflectedDataset

MASK = "•••"


@dataclass(frozen=True)
class RecordsQuery:
    """Which records: units (raw codes, old and new), an event-time range, a sort and a cursor."""

    unit_codes: tuple[str, ...] | None
    start: datetime | None
    end: datetime | None
    sort_column: str
    descending: bool = True
    after: tuple[Any, Any] | None = None
    limit: int = 100


def mask_value(value: Any) -> Any:
    """Keep a hint of the shape (first letter, last two digits) and hide the rest."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return value
    text = str(value)
    if text.isdigit() or text.startswith("+"):
        return MASK + text[-2:]
    return text[:1] + MASK if text else text


def mask_frame(frame: pd.DataFrame, personal: tuple[str, ...]) -> pd.DataFrame:
    """A copy of ``frame`` with personal columns masked."""
    masked = frame.copy()
    for column in personal:
        if column in masked:
            masked[column] = masked[column].map(mask_value)
    return masked


def fetch_records(
    engine: Engine, reflected: ReflectedDataset, query: RecordsQuery, *, unmasked: bool = False
) -> pd.DataFrame:
    """One page of records, newest first by default; masked unless ``unmasked``."""
    dataset: Dataset = reflected.dataset
    if query.sort_column not in dataset.sortable:
        raise ValueError(f"sorting is offered on {', '.join(dataset.sortable)} only")
    table = reflected.table
    sort = table.c[query.sort_column]
    key = table.c[dataset.key]
    columns = [table.c[c] for c in (dataset.records_columns or [c.name for c in table.c])]
    conditions = []
    if query.unit_codes is not None:
        conditions.append(table.c[dataset.unit].in_(list(query.unit_codes)))
    event = table.c[dataset.event_time]
    if query.start is not None:
        conditions.append(event >= query.start)
    if query.end is not None:
        conditions.append(event < query.end)
    if query.after is not None:
        value, last_key = query.after
        if isinstance(value, str) and sort.type.python_type is datetime:
            value = datetime.fromisoformat(value)  # cursors travel through the browser as text
        if query.descending:
            conditions.append(or_(sort < value, and_(sort == value, key < last_key)))
        else:
            conditions.append(or_(sort > value, and_(sort == value, key > last_key)))
    order = [sort.desc(), key.desc()] if query.descending else [sort.asc(), key.asc()]
    statement = select(*columns).where(*conditions).order_by(*order).limit(max(1, min(query.limit, 1000)))
    if dataset.key not in [c.name for c in columns]:
        statement = statement.add_columns(key)
    with engine.connect() as connection:
        result = connection.execute(statement)
        frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    return frame if unmasked else mask_frame(frame, dataset.personal)
