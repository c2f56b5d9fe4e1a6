"""Pre-merger data: figures before 1 July 2025 by the units they were filed under, or by today's wards.

Pure functions over a snapshot's ``daily`` rollup (one row per local day and RAW unit code, as the
warehouse wrote it), so the old-unit view needs no warehouse query and its totals are the
warehouse's own totals for those units. A period is a range of whole months before the reform.

Codes in a pre-reform row are read as the pre-2025 scheme (``admin_units.pre_reform_crosswalk``):
an old ward of the province, a unit created by the reform and recorded under its new code, or
unknown. Unknown codes are listed, never dropped: they are the rows no ward can claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd

from config.datasets import Dataset
from data_sources.admin_units import CURRENT, PRE_2025, REFORM_DATE, REFORM_EPOCH, UNKNOWN, ascii_name
from data_sources.poller import BUCKET, EPOCH, UNIT, to_epoch
from data_sources.sql import ROWS

RECORDS = ROWS
"""The measure every dataset has: the number of warehouse rows."""

OLD_UNIT_COLUMNS = ["code", "status", "old_name", "old_district", "new_code", "merge_kind", "value"]
NEW_UNIT_COLUMNS = ["code", "old_units", "value"]


@dataclass(frozen=True)
class Period:
    """Whole months ``first`` .. ``last`` (first days of months), both before the reform."""

    first: date
    last: date

    @property
    def start_epoch(self) -> int:
        """First bucket of the period (local midnight of ``first``, as snapshot buckets are stamped)."""
        return to_epoch(datetime.combine(self.first, datetime.min.time()))

    @property
    def end_epoch(self) -> int:
        """First bucket after the period, never past the reform."""
        following = date(self.last.year + self.last.month // 12, self.last.month % 12 + 1, 1)
        return min(to_epoch(datetime.combine(following, datetime.min.time())), REFORM_EPOCH)


def month_of(epoch: int) -> date:
    """First day of the month holding a bucket."""
    moment = EPOCH + pd.Timedelta(seconds=int(epoch))
    return date(moment.year, moment.month, 1)


def pre_reform_months(daily: pd.DataFrame) -> list[date]:
    """Months before July 2025 in which the daily rollup has any row, oldest first."""
    if daily.empty or BUCKET not in daily:
        return []
    buckets = daily.loc[daily[BUCKET] < REFORM_EPOCH, BUCKET].unique()
    return sorted({month_of(b) for b in buckets})


def parse_period(first: str | None, last: str | None, months: list[date]) -> Period | None:
    """The period asked for (ISO month starts), clamped to the months with data; None when there are none.

    Missing or unparsable bounds fall back to the first / last month with data; swapped bounds are put
    in order. Nothing at or after the reform can be asked for.
    """
    if not months:
        return None

    def parsed(text: str | None, fallback: date) -> date:
        try:
            value = date.fromisoformat(text) if text else fallback
        except (TypeError, ValueError):
            return fallback
        value = value.replace(day=1)
        return min(max(value, months[0]), months[-1])

    start, end = parsed(first, months[0]), parsed(last, months[-1])
    start, end = min(start, end), max(start, end)
    if start >= REFORM_DATE:
        return None
    return Period(start, end)


def measure_how(dataset: Dataset, measure: str) -> str:
    """How daily values of a measure combine over a period: sum for counts and sums, else min/max."""
    if measure == RECORDS:
        return "sum"
    for declared in dataset.measures:
        if declared.name == measure:
            return "sum" if declared.agg in ("count", "sum") else declared.agg
    raise KeyError(f"dataset {dataset.id!r} has no measure {measure!r}")


def _collation_key(column: pd.Series) -> pd.Series:
    """Vietnamese names sort by their letters without diacritics first ("Đông Ba" among the D's)."""
    if column.dtype == object:
        return column.map(lambda v: (ascii_name(v).casefold(), v) if isinstance(v, str) else ("", ""))
    return column


def _period_rows(daily: pd.DataFrame, measure: str, period: Period) -> pd.DataFrame:
    if daily.empty or measure not in daily:
        return pd.DataFrame({UNIT: pd.Series(dtype="string"), measure: pd.Series(dtype="float64")})
    inside = (daily[BUCKET] >= period.start_epoch) & (daily[BUCKET] < period.end_epoch)
    rows = daily.loc[inside, [UNIT, measure]].copy()
    rows[UNIT] = rows[UNIT].astype("string").str.strip().fillna("")
    return rows


def old_unit_totals(
    daily: pd.DataFrame,
    measure: str,
    how: str,
    period: Period,
    legacy: pd.DataFrame,
    current_codes: frozenset[str],
    *,
    wards: frozenset[str] | None = None,
) -> pd.DataFrame:
    """Per unit code found in the period: its status, old name and district, the current ward it
    belongs to, the merge kind, and the measure's total.

    ``status`` is ``pre_2025`` for an old ward, ``current`` for a unit recorded under its new code and
    ``unknown`` otherwise (``new_code`` is then NA). ``wards`` limits the result to codes whose current
    ward is among them (unknown codes belong to no ward and are left out then). Old wards of the
    period without any row are not listed. Sorted by status, old district, old name, code.
    """
    rows = _period_rows(daily, measure, period)
    totals = rows.groupby(UNIT)[measure].agg(how) if not rows.empty else pd.Series(dtype="float64")
    frame = pd.DataFrame({"code": totals.index.astype(str), "value": totals.to_numpy(dtype="float64")})
    old = legacy.set_index("old_code") if not legacy.empty else pd.DataFrame()
    is_old = frame["code"].isin(old.index)
    frame["status"] = [
        PRE_2025 if o else CURRENT if c in current_codes else UNKNOWN
        for o, c in zip(is_old, frame["code"], strict=True)
    ]

    def from_legacy(column: str) -> pd.Series:
        if old.empty:
            return pd.Series(pd.NA, index=frame.index, dtype="object")
        return frame["code"].map(old[column]).astype("object")

    frame["old_name"] = from_legacy("old_name")
    frame["old_district"] = from_legacy("old_district")
    frame["merge_kind"] = from_legacy("merge_kind")
    frame["new_code"] = from_legacy("new_code")
    recorded_new = frame["status"] == CURRENT
    frame.loc[recorded_new, "new_code"] = frame.loc[recorded_new, "code"]
    if wards is not None:
        frame = frame.loc[frame["new_code"].isin(wards)]
    order = {PRE_2025: 0, CURRENT: 1, UNKNOWN: 2}
    frame = frame.assign(_order=frame["status"].map(order)).sort_values(
        ["_order", "old_district", "old_name", "code"], na_position="last", key=_collation_key
    )
    return frame[OLD_UNIT_COLUMNS].reset_index(drop=True)


def new_unit_totals(
    daily: pd.DataFrame,
    measure: str,
    how: str,
    period: Period,
    pre_reform_crosswalk: dict[str, str],
    current_codes: list[str],
    *,
    wards: frozenset[str] | None = None,
) -> pd.DataFrame:
    """The same period aggregated under today's wards: per current ward (in ``current_codes`` order, limited
    to ``wards``) the number of distinct codes that carried data and the measure's total (NaN without data).
    Unknown codes are not in any ward; ``old_unit_totals`` lists them."""
    rows = _period_rows(daily, measure, period)
    rows["ward"] = rows[UNIT].map(pre_reform_crosswalk)
    rows = rows.dropna(subset=["ward"])
    codes = [c for c in current_codes if wards is None or c in wards]
    totals = rows.groupby("ward")[measure].agg(how).reindex(codes)
    sources = rows.groupby("ward")[UNIT].nunique().reindex(codes).fillna(0).astype(int)
    return pd.DataFrame({"code": codes, "old_units": sources.to_numpy(), "value": totals.to_numpy(dtype="float64")})


def combined_total(values: pd.Series, how: str) -> float | None:
    """The period's total over the listed units (None when nothing is listed)."""
    values = values.dropna()
    if values.empty:
        return None
    return float(values.agg(how))
