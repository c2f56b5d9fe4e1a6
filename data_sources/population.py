"""Residents per ward, for per-10,000 rates. The demo's figures are synthetic and labelled so."""

from __future__ import annotations

import logging

import pandas as pd
from sqlalchemy import Engine, MetaData, Table, select
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)


def load_population(engine: Engine, table_name: str | None, crosswalk: dict[str, str]) -> pd.Series:
    """Population per current ward code (old codes summed into their new ward); empty when unavailable."""
    if not table_name:
        return pd.Series(dtype="float64")
    try:
        table = Table(table_name, MetaData(), autoload_with=engine)
        with engine.connect() as connection:
            rows = connection.execute(select(table.c.ward_code, table.c.population)).fetchall()
    except SQLAlchemyError as error:
        log.warning("population table %s unavailable: %s", table_name, error.__class__.__name__)
        return pd.Series(dtype="float64")
    frame = pd.DataFrame(rows, columns=["code", "population"])
    frame["ward"] = frame["code"].astype(str).map(crosswalk)
    return frame.dropna(subset=["ward"]).groupby("ward")["population"].sum().astype("float64")


def load_population_sources(engine: Engine, table_name: str | None) -> tuple[str, ...]:
    """Distinct ``source`` texts of the population table (where the figures come from; the demo's say
    they are synthetic); empty when the table or the column is missing."""
    if not table_name:
        return ()
    try:
        table = Table(table_name, MetaData(), autoload_with=engine)
        if "source" not in table.c:
            return ()
        with engine.connect() as connection:
            rows = connection.execute(select(table.c.source).distinct()).fetchall()
    except SQLAlchemyError as error:
        log.warning("population table %s unavailable: %s", table_name, error.__class__.__name__)
        return ()
    return tuple(sorted(str(row[0]) for row in rows if row[0]))


def is_synthetic(sources: tuple[str, ...]) -> bool:
    """True when the population figures say they are synthetic (the demo's), not official."""
    return any("synthetic" in source.casefold() or "mô phỏng" in source.casefold() for source in sources)
