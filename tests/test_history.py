"""Data across the 2025 merger: old codes land under the right new ward, and the old-unit view
reproduces the warehouse's own pre-merger totals (separate SQL, on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import func, select

from config.datasets import Kpi, load_datasets
from data_sources.admin_units import (
    CURRENT,
    PRE_2025,
    REFORM_EPOCH,
    UNKNOWN,
    crosswalk,
    current_units,
    legacy_units,
    pre_reform_crosswalk,
)
from data_sources.clock import LOCAL_TZ
from data_sources.demo.generate import generate_warehouse
from data_sources.demo.schema import feedback_reports
from data_sources.history import (
    RECORDS,
    Period,
    measure_how,
    new_unit_totals,
    old_unit_totals,
    parse_period,
    pre_reform_months,
)
from data_sources.kpis import kpi_by_ward
from data_sources.poller import BUCKET, UNIT, to_epoch
from data_sources.scheduler import Poller
from data_sources.snapshots import MemorySnapshotStore
from data_sources.warehouse import create_warehouse_engine

ACROSS_REFORM_NOW = datetime(2025, 7, 20, 10, 0, tzinfo=LOCAL_TZ)
ACROSS_REFORM_START = date(2025, 4, 15)
HUE = "46"


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def across_reform(request, tmp_path_factory):
    """A demo warehouse from mid-April to 20 July 2025 (old codes before 1 July), polled once."""
    from tests.conftest import create_postgres_database, drop_postgres_database

    name = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('across') / 'warehouse.db'}"
    else:
        name, url = create_postgres_database()
    try:
        generate_warehouse(url, now=ACROSS_REFORM_NOW, scale=0.02, start=ACROSS_REFORM_START)
        engine = create_warehouse_engine(url)
        catalogue = load_datasets()
        store = MemorySnapshotStore()
        Poller(catalogue, engine, store, lambda: ACROSS_REFORM_NOW).poll("feedback")
        yield engine, catalogue.get("feedback"), store.get("feedback")
        engine.dispose()
    finally:
        if name:
            drop_postgres_database(name)


def sql_counts(engine, start: datetime, end: datetime, *conditions) -> dict[str, int]:
    """Rows per raw ward code with ``start <= created_at < end``, straight from the warehouse."""
    table = feedback_reports
    with engine.connect() as connection:
        rows = connection.execute(
            select(table.c.ward_code, func.count())
            .where(table.c.created_at >= start, table.c.created_at < end, *conditions)
            .group_by(table.c.ward_code)
        ).fetchall()
    return {str(code): int(count) for code, count in rows}


class TestOldUnitView:
    def test_old_unit_totals_equal_the_warehouse_totals_for_each_old_unit(self, across_reform):
        engine, dataset, snapshot = across_reform
        daily = snapshot.frame("daily")
        months = pre_reform_months(daily)
        assert months == [date(2025, 4, 1), date(2025, 5, 1), date(2025, 6, 1)]
        period = parse_period("2025-05-01", "2025-06-01", months)
        table = old_unit_totals(
            daily, "reports", "sum", period, legacy_units(HUE), frozenset(current_units(HUE)["code"])
        )
        expected = sql_counts(engine, datetime(2025, 5, 1), datetime(2025, 7, 1))
        assert len(expected) > 40, "the demo files pre-merger rows under many old codes"
        assert dict(zip(table["code"], table["value"].astype(int), strict=True)) == expected
        assert set(table["status"]) == {PRE_2025}
        legacy = legacy_units(HUE).set_index("old_code")
        for row in table.head(5).itertuples():
            assert row.old_name == legacy.at[row.code, "old_name"]
            assert row.new_code == legacy.at[row.code, "new_code"]

    def test_a_filtered_measure_and_the_row_count_match_sql_too(self, across_reform):
        engine, dataset, snapshot = across_reform
        daily = snapshot.frame("daily")
        period = Period(date(2025, 6, 1), date(2025, 6, 1))
        units = legacy_units(HUE)
        current = frozenset(current_units(HUE)["code"])
        closed = old_unit_totals(daily, "closed", measure_how(dataset, "closed"), period, units, current)
        records = old_unit_totals(daily, RECORDS, measure_how(dataset, RECORDS), period, units, current)
        june = (datetime(2025, 6, 1), datetime(2025, 7, 1))
        expected_closed = sql_counts(engine, *june, feedback_reports.c.status.in_(("resolved", "rejected")))
        assert {c: int(v) for c, v in zip(closed["code"], closed["value"], strict=True) if v} == expected_closed
        assert dict(zip(records["code"], records["value"].astype(int), strict=True)) == sql_counts(engine, *june)

    def test_the_period_never_reaches_past_the_reform(self, across_reform):
        _, _, snapshot = across_reform
        daily = snapshot.frame("daily")
        assert (daily[BUCKET] >= REFORM_EPOCH).any(), "the warehouse has rows after the reform"
        period = parse_period("2025-06-01", "2025-09-01", pre_reform_months(daily))
        assert period == Period(date(2025, 6, 1), date(2025, 6, 1))
        assert period.end_epoch == REFORM_EPOCH

    def test_unknown_codes_are_listed_not_dropped_and_only_for_unscoped_accounts(self):
        day = to_epoch(datetime(2025, 3, 3))
        daily = pd.DataFrame({BUCKET: [day, day, day], UNIT: ["19756", "99999", "19753"], "reports": [4.0, 2.0, 1.0]})
        units, current = legacy_units(HUE), frozenset(current_units(HUE)["code"])
        period = Period(date(2025, 3, 1), date(2025, 3, 1))
        table = old_unit_totals(daily, "reports", "sum", period, units, current)
        assert dict(zip(table["code"], table["status"], strict=True)) == {
            "19753": PRE_2025,
            "19756": PRE_2025,
            "99999": UNKNOWN,
        }
        assert table["value"].sum() == 7
        scoped = old_unit_totals(daily, "reports", "sum", period, units, current, wards=frozenset({"19753"}))
        # both old wards went into Phú Xuân; the unknown code belongs to no ward, so a scoped account
        # does not see it; old wards sort by name the Vietnamese way (Gia Hội before Thuận Lộc)
        assert list(scoped["code"]) == ["19756", "19753"]
        assert list(scoped["old_name"]) == ["Phường Gia Hội", "Phường Thuận Lộc"]


class TestUnderNewUnits:
    def test_old_code_data_lands_under_the_right_new_ward(self, across_reform):
        engine, dataset, snapshot = across_reform
        mapping = crosswalk(HUE)
        wards = list(current_units(HUE)["code"])
        everything = sql_counts(engine, datetime(2000, 1, 1), datetime(2100, 1, 1))
        old_codes = {code for code in everything if code not in set(wards)}
        assert old_codes, "pre-merger rows carry old codes that are not current codes"
        expected = pd.Series(0.0, index=wards)
        for code, count in everything.items():
            expected[mapping[code]] += count
        kpi = Kpi(id="all_reports", kind="sum", measures=("reports",), window="all")
        shown = kpi_by_ward(dataset, kpi, snapshot, ACROSS_REFORM_NOW, mapping, wards)
        pd.testing.assert_series_equal(shown.fillna(0), expected, check_names=False)

    def test_pre_merger_period_under_new_wards_equals_sql_through_the_crosswalk(self, across_reform):
        engine, _, snapshot = across_reform
        period = Period(date(2025, 5, 1), date(2025, 6, 1))
        wards = list(current_units(HUE)["code"])
        table = new_unit_totals(snapshot.frame("daily"), "reports", "sum", period, pre_reform_crosswalk(HUE), wards)
        expected = pd.Series(0.0, index=wards)
        sources = pd.Series(0, index=wards)
        for code, count in sql_counts(engine, datetime(2025, 5, 1), datetime(2025, 7, 1)).items():
            expected[pre_reform_crosswalk(HUE)[code]] += count
            sources[pre_reform_crosswalk(HUE)[code]] += 1
        assert list(table["code"]) == wards
        assert table["value"].fillna(0).tolist() == expected.tolist()
        assert table["old_units"].tolist() == sources.tolist()
        assert sources.max() > 1, "some new ward holds data from several old wards"


def test_hanoi_code_reused_after_the_reform_is_read_by_date():
    """Hà Nội's 00103 was Phường Xuân La (now in another ward) before July 2025 and names a new ward after."""
    from data_sources.admin_units import ambiguous_codes, map_to_current

    assert "00103" in ambiguous_codes("01")
    assert ambiguous_codes("46") == [] and ambiguous_codes("24") == []
    before, after = to_epoch(datetime(2025, 6, 30, 23)), to_epoch(datetime(2025, 7, 1, 0))
    mapped = map_to_current(
        pd.Series(["00103", "00103"]), pd.Series([before, after]), crosswalk("01"), pre_reform_crosswalk("01")
    )
    assert mapped.iloc[1] == "00103"
    assert mapped.iloc[0] == legacy_units("01").set_index("old_code").at["00103", "new_code"] != "00103"
    assert CURRENT == "current"
    assert timedelta(seconds=REFORM_EPOCH - before) == timedelta(hours=1)


def test_the_dashboards_read_a_reused_code_by_date():
    """The KPI path (``kpis.with_wards``) reads Hà Nội's 00103 as its old ward before July 2025."""
    from data_sources.admin_units import REFORM_EPOCH, crosswalk, legacy_units
    from data_sources.kpis import WARD, with_wards
    from data_sources.poller import BUCKET, UNIT

    frame = pd.DataFrame({BUCKET: [REFORM_EPOCH - 86400, REFORM_EPOCH], UNIT: ["00103", "00103"]})
    wards = with_wards(frame, crosswalk("01"))[WARD].tolist()
    assert wards == [legacy_units("01").set_index("old_code").at["00103", "new_code"], "00103"]
    assert wards[0] != "00103"
    assert crosswalk("46").pre_reform == {}, "Huế has no reused codes: nothing is read by date there"
