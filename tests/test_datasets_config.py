"""Dataset configuration for the sector KPIs: new keys are read as documented and every mistake stops
start-up with a message naming the file and the key."""

from __future__ import annotations

import pytest

from config.datasets import load_datasets
from config.errors import ConfigError

BASE = """
[datasets.air]
sector = "environment"
table = "env_air_readings"
key = "id"
event_time = "observed_at"
watermark = "updated_at"
unit = "ward_code"
entity = "station_id"
bucket = "1h"
reference = { table = "env_air_stations", key = "station_id", name = "name", attributes = ["alert"] }
measures.pm25_sum = { agg = "sum", column = "pm25" }
measures.pm25_count = { agg = "count", column = "pm25" }
measures.level = { agg = "max", column = "level" }
state.open = { agg = "count", where = { status = "open" } }
durations.wait = { start = "received_at", end = "resolved_at" }
aqi.pm25 = ["pm25_sum", "pm25_count"]
"""


def load(tmp_path, extra: str = "", base: str = BASE):
    path = tmp_path / "datasets.toml"
    path.write_text(base + extra, "utf-8")
    return load_datasets(path)


def kpi(body: str) -> str:
    return "\n[[datasets.air.kpis]]\n" + body.strip() + "\n"


def error_of(tmp_path, extra: str = "", base: str = BASE) -> ConfigError:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, extra, base)
    return raised.value


class TestReadsNewKeys:
    def test_new_kinds_with_their_options(self, tmp_path):
        extra = (
            kpi('id = "worst"\nkind = "entity_max"\nvalue = "aqi"')
            + kpi('id = "poor"\nkind = "entity_count"\nvalue = "aqi"\nthreshold = 100')
            + kpi('id = "high"\nkind = "entity_count"\nmeasures = "level"\nop = "ge"\nthreshold = "@alert"')
            + kpi('id = "vs"\nkind = "versus"\nmeasures = ["pm25_sum", "pm25_count"]\nbaseline = "same_hour_last_week"')
            + kpi('id = "median"\nkind = "median"\nmeasures = "wait"\nwindow = "7d"')
        )
        dataset = load(tmp_path, extra).get("air")
        assert dataset.aqi == {"pm25": ("pm25_sum", "pm25_count")}
        assert dataset.duration("wait").unit_seconds == 86400
        assert dataset.duration("wait").lookback_seconds == 90 * 86400
        assert dataset.kpi("poor").op == "gt" and dataset.kpi("poor").threshold == 100.0
        assert dataset.kpi("high").threshold_attribute == "alert"
        assert dataset.kpi("vs").baseline == "same_hour_last_week"
        assert {"received_at", "resolved_at"} <= dataset.columns_used

    def test_the_shipped_catalogue_loads_with_every_sector(self):
        catalogue = load_datasets()
        assert {d.sector for d in catalogue} == {"traffic", "health", "environment", "public_services", "feedback"}
        assert catalogue.get("dossiers").by_entity
        assert catalogue.get("feedback").positions.state == "open"
        assert catalogue.get("traffic_incidents").positions.since_seconds == 30 * 86400


class TestRefusesMistakes:
    @pytest.mark.parametrize(
        ("extra", "key", "words"),
        [
            (kpi('id = "a"\nkind = "versus"\nmeasures = "pm25_sum"'), "kpis[0].baseline", "expected one of"),
            (
                kpi('id = "a"\nkind = "versus"\nmeasures = "pm25_sum"\nbaseline = "yesterday"'),
                "kpis[0].baseline",
                "same_hour_last_week",
            ),
            (
                kpi('id = "a"\nkind = "median"\nmeasures = "pm25_sum"'),
                "kpis[0].measures",
                "not declared under durations",
            ),
            (kpi('id = "a"\nkind = "median"\nmeasures = "wait"\nwindow = "all"'), "kpis[0].window", "24h, 7d or 30d"),
            (kpi('id = "a"\nkind = "entity_count"\nvalue = "aqi"'), "kpis[0].threshold", "a number or '@"),
            (
                kpi('id = "a"\nkind = "entity_count"\nmeasures = "level"\nthreshold = "@nope"'),
                "kpis[0].threshold",
                "attribute of the reference table (alert)",
            ),
            (
                kpi('id = "a"\nkind = "entity_count"\nmeasures = "level"\nthreshold = 1\nop = "eq"'),
                "kpis[0].op",
                "expected one of gt, ge, lt, le",
            ),
            (kpi('id = "a"\nkind = "entity_max"\nvalue = "noise"'), "kpis[0].value", "expected one of aqi"),
            (
                kpi('id = "a"\nkind = "entity_max"\nvalue = "aqi"\nmeasures = "level"'),
                "kpis[0].measures",
                "either value or measures",
            ),
            (
                kpi('id = "a"\nkind = "sum"\nmeasures = "level"\nbaseline = "same_time_7d_mean"'),
                "kpis[0].baseline",
                "only a versus",
            ),
            (kpi('id = "a"\nkind = "sum"\nmeasures = "level"\nscale = "x"'), "kpis[0].scale", "expected a number"),
        ],
    )
    def test_kpi_options(self, tmp_path, extra, key, words):
        error = error_of(tmp_path, extra)
        assert error.key == f"datasets.air.{key}"
        assert words in error.problem
        assert str(tmp_path / "datasets.toml") in str(error)

    def test_entity_kinds_need_an_entity(self, tmp_path):
        base = BASE.replace('entity = "station_id"\n', "").replace('aqi.pm25 = ["pm25_sum", "pm25_count"]\n', "")
        error = error_of(tmp_path, kpi('id = "a"\nkind = "entity_max"\nmeasures = "level"'), base)
        assert error.key == "datasets.air.kpis[0].kind" and "declare entity" in error.problem

    @pytest.mark.parametrize(
        ("replace", "by", "key", "words"),
        [
            ('aqi.pm25 = ["pm25_sum", "pm25_count"]', 'aqi.pm1 = ["pm25_sum", "pm25_count"]', "aqi.pm1", "unknown"),
            (
                'aqi.pm25 = ["pm25_sum", "pm25_count"]',
                'aqi.pm25 = ["pm25_count", "pm25_sum"]',
                "aqi.pm25",
                "sum measure",
            ),
            ('aqi.pm25 = ["pm25_sum", "pm25_count"]', 'aqi.no2 = ["pm25_sum", "pm25_count"]', "aqi", "pm25 or pm10"),
            ('bucket = "1h"', 'bucket = "5m"', "aqi", "bucket = '1h'"),
            ('start = "received_at"', 'start = "received at"', "durations.wait.start", "column name"),
            ("durations.wait = {", 'durations.wait = { time_unit = "weeks",', "durations.wait.time_unit", "days"),
            ('unit = "ward_code"', 'unit = "ward_code"\nby_entity = "yes"', "by_entity", "true or false"),
            (
                'unit = "ward_code"',
                'unit = "ward_code"\npositions = { state = "closed" }',
                "positions.state",
                "not declared",
            ),
            ('unit = "ward_code"', 'unit = "ward_code"\npositions = { state = "open" }', "positions.state", "latitude"),
            (
                'unit = "ward_code"',
                'unit = "ward_code"\nlatitude = "lat"\nlongitude = "lon"\npositions = { state = "open", since = "7d" }',
                "positions.state",
                "either state",
            ),
        ],
    )
    def test_dataset_blocks(self, tmp_path, replace, by, key, words):
        error = error_of(tmp_path, base=BASE.replace(replace, by, 1))
        assert error.key == f"datasets.air.{key}"
        assert words in error.problem
