"""Unit registry and crosswalk: whole and split merges, the configurable split rule, code classification."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from config.errors import ConfigError
from config.settings import load_settings
from data_sources.admin_units import (
    CURRENT,
    PRE_2025,
    SPLIT_RULES,
    UNKNOWN,
    _conversion_tables,
    classify_code,
    classify_codes,
    crosswalk,
    current_units,
    legacy_units,
    pre_reform_crosswalk,
    province,
    split_wards,
    unit_registry,
    validate_split_overrides,
)

HANOI, HUE, BAC_NINH = "01", "46", "24"


def code_of_new_ward(province_code: str, key: str) -> str:
    units = current_units(province_code)
    return units.loc[units["key"] == key, "code"].item()


class TestRegistry:
    @pytest.mark.parametrize(("code", "count"), [(HUE, 40), (BAC_NINH, 99)])
    def test_current_units_have_code_name_type_centroid_and_area(self, code, count):
        units = current_units(code)
        assert len(units) == count and units["code"].is_unique
        assert set(units["type"]) <= {"Phường", "Xã", "Đặc khu"}
        assert set(units["type_key"]) <= {"ward", "commune", "special_zone"}
        assert units[["lat", "lon", "area_km2"]].notna().all().all()
        assert (units["area_km2"] > 0).all()

    def test_english_names_and_types_are_translated(self):
        units = current_units(HUE).set_index("code")
        assert units.at["19777", "name"] == "Phường Vỹ Dạ"
        assert units.at["19777", "name_en"] == "Vy Da Ward"
        assert units.at["19777", "type_en"] == "Ward"

    def test_population_joins_where_supplied_and_is_missing_elsewhere(self):
        registry = unit_registry(HUE, pd.Series({"19753": 41230.0, "19774": 18000.0}))
        by_code = registry.set_index("code")["population"]
        assert by_code["19753"] == 41230 and by_code["19774"] == 18000
        assert by_code.drop(["19753", "19774"]).isna().all()
        assert unit_registry(HUE)["population"].isna().all()


class TestCrosswalk:
    @pytest.mark.parametrize("code", [HUE, BAC_NINH])
    def test_every_old_ward_of_hue_and_bac_ninh_merged_whole(self, code):
        legacy = legacy_units(code)
        assert set(legacy["merge_kind"]) == {"whole"}
        assert split_wards(code).empty
        current = set(current_units(code)["code"])
        assert set(legacy["new_code"]) <= current

    def test_crosswalk_maps_current_codes_to_themselves_and_old_codes_to_their_new_ward(self):
        mapping = crosswalk(HUE)
        for code in current_units(HUE)["code"]:
            assert mapping[code] == code
        legacy = legacy_units(HUE)
        gia_hoi = legacy.loc[legacy["old_name"] == "Phường Gia Hội"].iloc[0]
        assert mapping[gia_hoi["old_code"]] == "19753"  # Gia Hội is in today's Phú Xuân

    def test_hanoi_has_split_wards_attributed_to_the_packages_default_new_ward(self):
        tables = _conversion_tables()
        divided = tables["DICT_PROVINCE_WARD_DIVIDED"][province(HANOI).key]
        splits = split_wards(HANOI)
        assert len(splits) == len(divided) > 100
        assert (splits["new_code"] == splits["default_code"]).all()
        # Thị trấn Tây Đằng (Ba Vì) was split between xã Minh Châu (the default) and xã Quảng Oai
        tay_dang = splits.loc[splits["old_name"] == "Thị trấn Tây Đằng"].iloc[0]
        parts = divided["thanhphohanoi_huyenbavi_thitrantaydang"]
        default_key = next(p["newWardKey"] for p in parts if p["isDefaultNewWard"])
        assert tay_dang["new_code"] == code_of_new_ward(HANOI, default_key)
        assert set(tay_dang["new_codes"]) == {code_of_new_ward(HANOI, p["newWardKey"]) for p in parts}
        # its old code 09619 is reused by a new ward, so only pre-reform rows read it as Tây Đằng
        assert pre_reform_crosswalk(HANOI)[tay_dang["old_code"]] == tay_dang["new_code"]
        assert crosswalk(HANOI)[tay_dang["old_code"]] == "09619"

    def test_every_split_ward_stays_among_its_candidates_under_each_rule(self):
        for rule in SPLIT_RULES:
            splits = split_wards(HANOI, split_rule=rule)
            pairs = zip(splits["new_code"], splits["new_codes"], strict=True)
            assert all(new in candidates for new, candidates in pairs)
            assert (splits["new_codes"].map(len) >= 2).all()

    def test_nearest_rule_picks_the_new_ward_with_the_closest_centroid(self):
        splits = split_wards(HANOI, split_rule="nearest")
        units = current_units(HANOI).set_index("code")
        changed = splits.loc[splits["new_code"] != splits["default_code"]]
        assert not changed.empty, "for some split wards the nearest new ward is not the package default"
        for row in splits.itertuples():
            distance = {
                code: (units.at[code, "lat"] - row.lat) ** 2 + ((units.at[code, "lon"] - row.lon) * 0.93) ** 2
                for code in row.new_codes
            }
            assert row.new_code == min(distance, key=distance.get)

    def test_an_override_moves_one_split_ward_and_leaves_the_rest(self):
        splits = split_wards(HANOI)
        row = splits.iloc[0]
        other = next(code for code in row["new_codes"] if code != row["new_code"])
        mapping = crosswalk(HANOI, overrides={row["old_code"]: other})
        assert mapping[row["old_code"]] == other
        assert mapping[splits.iloc[1]["old_code"]] == splits.iloc[1]["new_code"]

    def test_unusable_overrides_are_refused_with_the_reason(self):
        splits = split_wards(HANOI)
        row = splits.iloc[0]
        whole = legacy_units(HANOI).query("merge_kind == 'whole'").iloc[0]
        outsider = next(c for c in current_units(HANOI)["code"] if c not in row["new_codes"])
        problems = validate_split_overrides(
            HANOI, {row["old_code"]: outsider, whole["old_code"]: whole["new_code"], "99999": "00004"}
        )
        assert any(f"was split into {', '.join(row['new_codes'])}, not {outsider}" in p for p in problems)
        assert any("was not split" in p for p in problems)
        assert any("99999 is not a pre-2025 ward" in p for p in problems)
        with pytest.raises(ValueError, match="not a pre-2025 ward"):
            crosswalk(HANOI, overrides={"99999": "00004"})
        with pytest.raises(ValueError, match="unknown split rule 'largest'"):
            crosswalk(HANOI, split_rule="largest")

    def test_pre_reform_reading_keeps_units_created_by_the_reform(self):
        before = pre_reform_crosswalk(HANOI)
        for code in current_units(HANOI)["code"]:
            assert code in before


class TestClassification:
    def test_codes_are_current_pre_2025_or_unknown(self):
        old_only = next(c for c in legacy_units(HUE)["old_code"] if c not in set(current_units(HUE)["code"]))
        status = classify_codes(HUE, ["19753", old_only, "99999", None, " 19753 ", "00004"])
        assert status["19753"] == CURRENT
        assert status[old_only] == PRE_2025
        assert status["99999"] == UNKNOWN
        assert status[""] == UNKNOWN  # NULL or blank
        assert status["00004"] == UNKNOWN, "a Hà Nội code is unknown in Huế"
        assert len(status) == 5
        assert classify_code(HUE, old_only) == PRE_2025


class TestSettings:
    def write(self, tmp_path: Path, extra: str) -> Path:
        (tmp_path / "secret").write_text("s" * 40)
        config = tmp_path / "ioc.toml"
        config.write_text(
            '[ioc]\nprovince_code = "01"\nwarehouse_url = "sqlite:///w.db"\napp_db_url = "sqlite:///a.db"\n'
            f'snapshot_url = "sqlite:///s.db"\nsecret_key_file = "{tmp_path / "secret"}"\n{extra}',
            encoding="utf-8",
        )
        return config

    def test_split_rule_and_overrides_are_read_from_the_file(self, tmp_path):
        settings = load_settings(
            self.write(tmp_path, 'split_rule = "nearest"\n[ioc.split_overrides]\n"00007" = "00008"\n')
        )
        assert settings.split_rule == "nearest"
        assert settings.split_override_map == {"00007": "00008"}

    def test_overrides_from_the_environment(self, tmp_path, monkeypatch):
        monkeypatch.setenv("IOC_SPLIT_OVERRIDES", "00007=00008, 00016=00004")
        settings = load_settings(self.write(tmp_path, ""))
        assert settings.split_override_map == {"00007": "00008", "00016": "00004"}
        assert settings.split_rule == "default"

    @pytest.mark.parametrize(
        ("extra", "message"),
        [
            ('split_rule = "largest"\n', "split_rule: expected one of default, nearest, got 'largest'"),
            ('[ioc.split_overrides]\n"7" = "00008"\n', "split_overrides: ward codes have five digits"),
            ("boundaries_tolerance_m = 400\n", "boundaries_tolerance_m: must be at most 150"),
        ],
    )
    def test_bad_values_name_the_key(self, tmp_path, extra, message):
        with pytest.raises(ConfigError, match=message):
            load_settings(self.write(tmp_path, extra))

    def test_an_override_that_is_not_a_split_stops_start_up_naming_the_key(self, tmp_path):
        from app import _split_rule

        settings = load_settings(self.write(tmp_path, '[ioc.split_overrides]\n"00007" = "00004"\n'))
        with pytest.raises(ConfigError, match="split_overrides: 00007 was split into .*, not 00004"):
            _split_rule(settings)
        good = replace(settings, split_overrides=(("00007", "00008"),))
        assert _split_rule(good)["overrides"] == {"00007": "00008"}
        json.dumps(_split_rule(good))  # plain data, loggable
