"""Translation catalogue and locale formats: Vietnamese first, English second, pseudo for tests."""

from __future__ import annotations

import json
import math
import unicodedata
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from layouts import i18n
from layouts.i18n import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    MISSING,
    PSEUDO,
    catalogue,
    format_date,
    format_datetime,
    format_duration,
    format_number,
    format_percent,
    normalise_language,
    placeholders,
    t,
)

REQUIRED_KEYS = {
    "app.title",
    "nav.overview",
    "nav.traffic",
    "nav.health",
    "nav.environment",
    "nav.public_services",
    "nav.feedback",
    "nav.data_health",
    "nav.logout",
    "login.title",
    "login.username",
    "login.password",
    "login.submit",
    "login.failed",
    "login.required",
    "freshness.live",
    "freshness.late",
    "freshness.stale",
    "freshness.unknown",
    "freshness.age",
    "freshness.unavailable_since",
    "units.seconds",
    "units.minutes",
    "units.hours",
    "units.days",
    "lang.vi",
    "lang.en",
    "sector.traffic",
    "sector.health",
    "sector.environment",
    "sector.public_services",
    "sector.feedback",
    "empty.no_data",
    "error.generic",
}


def raw_catalogue(lang: str) -> dict:
    """The catalogue files of ``lang`` merged exactly as stored, without the loader's normalisation."""
    return i18n.raw_catalogue(lang)


class TestCatalogueFiles:
    def test_vietnamese_is_the_default_and_english_the_second_language(self):
        assert DEFAULT_LANGUAGE == "vi"
        assert LANGUAGES == ("vi", "en")
        assert PSEUDO == "xx"

    @pytest.mark.parametrize("lang", LANGUAGES)
    def test_file_is_a_flat_object_of_non_empty_strings(self, lang):
        data = raw_catalogue(lang)
        assert isinstance(data, dict) and data
        for key, text in data.items():
            assert isinstance(key, str) and key == key.strip() and "." in key, key
            assert isinstance(text, str) and text.strip(), f"{lang}: {key} is empty"

    def test_every_key_exists_in_both_languages(self):
        vi, en = raw_catalogue("vi"), raw_catalogue("en")
        assert sorted(set(vi) - set(en)) == [], "keys missing from en.json"
        assert sorted(set(en) - set(vi)) == [], "keys missing from vi.json"

    def test_area_files_merge_and_a_key_defined_twice_names_both_files(self, tmp_path, monkeypatch):
        (tmp_path / "vi.json").write_text('{"app.title": "Trung tâm"}', encoding="utf-8")
        (tmp_path / "alerts.vi.json").write_text('{"alerts.title": "Cảnh báo"}', encoding="utf-8")
        monkeypatch.setattr(i18n, "CATALOGUE_DIR", tmp_path)
        assert i18n.raw_catalogue("vi") == {"app.title": "Trung tâm", "alerts.title": "Cảnh báo"}
        (tmp_path / "health.vi.json").write_text('{"alerts.title": "Trùng"}', encoding="utf-8")
        twice = r"health\.vi\.json: key 'alerts.title' is already defined in alerts\.vi\.json"
        with pytest.raises(ValueError, match=twice):
            i18n.raw_catalogue("vi")

    def test_the_app_shell_keys_are_present(self):
        assert sorted(REQUIRED_KEYS - set(raw_catalogue("vi"))) == []

    def test_both_languages_use_the_same_placeholders_for_each_key(self):
        vi, en = raw_catalogue("vi"), raw_catalogue("en")
        mismatched = {
            key: (sorted(placeholders(vi[key])), sorted(placeholders(en[key])))
            for key in vi
            if key in en and placeholders(vi[key]) != placeholders(en[key])
        }
        assert mismatched == {}

    @pytest.mark.parametrize("lang", LANGUAGES)
    def test_braces_are_only_used_for_named_placeholders(self, lang):
        for key, text in raw_catalogue(lang).items():
            stripped = i18n._PLACEHOLDER.sub("", text)
            assert "{" not in stripped and "}" not in stripped, f"{lang}: {key}"

    @pytest.mark.parametrize("lang", LANGUAGES)
    def test_stored_text_is_in_nfc_form(self, lang):
        for key, text in raw_catalogue(lang).items():
            assert unicodedata.is_normalized("NFC", text), f"{lang}: {key} is not NFC"

    def test_vietnamese_strings_carry_their_diacritics(self):
        assert t("app.title", "vi") == "Trung tâm điều hành thông minh"
        assert t("login.failed", "vi") == "Sai tên đăng nhập hoặc mật khẩu"
        assert t("sector.feedback", "vi") == "Phản ánh hiện trường"
        assert t("sector.public_services", "vi") == "Dịch vụ công"
        assert t("lang.vi", "en") == "Tiếng Việt"
        assert t("app.title", "en") == "Intelligent Operations Centre"


class TestLookup:
    def test_placeholders_are_filled(self):
        assert t("freshness.age", "vi", age="3 phút") == "cập nhật 3 phút trước"
        assert t("freshness.age", "en", age="3 min") == "updated 3 min ago"
        assert t("units.days", "vi", n=5) == "5 ngày"

    def test_extra_parameters_are_ignored(self):
        assert t("nav.overview", "en", unused=1) == "Overview"

    def test_unknown_key_raises_key_error_naming_the_key(self):
        for lang in (*LANGUAGES, PSEUDO):
            with pytest.raises(KeyError, match="nav.does_not_exist"):
                t("nav.does_not_exist", lang)

    def test_missing_parameter_raises_key_error_naming_it(self):
        with pytest.raises(KeyError, match="age"):
            t("freshness.age", "vi")

    @pytest.mark.parametrize("lang", [None, "", "fr", "zz", 7])
    def test_unknown_language_falls_back_to_vietnamese(self, lang):
        assert normalise_language(lang) == "vi"
        assert t("app.title", lang) == t("app.title", "vi")
        assert catalogue(lang) == catalogue("vi")

    @pytest.mark.parametrize(("tag", "code"), [("en-US", "en"), ("EN", "en"), ("vi_VN", "vi"), (" xx ", "xx")])
    def test_region_tags_use_their_primary_language(self, tag, code):
        assert normalise_language(tag) == code

    def test_catalogue_returns_a_copy(self):
        copy = catalogue("en")
        copy["app.title"] = "changed"
        assert t("app.title", "en") == "Intelligent Operations Centre"

    def test_catalogue_is_read_once(self):
        assert i18n._load("vi") is i18n._load("vi")


class TestPseudoLanguage:
    def test_every_string_is_wrapped_in_markers(self):
        vi = catalogue("vi")
        xx = catalogue(PSEUDO)
        assert set(xx) == set(vi)
        for key, text in xx.items():
            assert text == f"⟦{vi[key]}⟧", key

    def test_every_key_looked_up_is_wrapped(self):
        for key in catalogue("vi"):
            params = {name: "X" for name in placeholders(catalogue("vi")[key])}
            text = t(key, PSEUDO, **params)
            assert text.startswith("⟦") and text.endswith("⟧"), key

    def test_placeholders_are_still_substituted(self):
        assert t("freshness.age", PSEUDO, age="3 phút") == "⟦cập nhật 3 phút trước⟧"

    def test_formats_follow_vietnamese_conventions(self):
        assert format_number(1234.5, PSEUDO, 1) == "1.234,5"
        assert format_date(date(2026, 11, 21), PSEUDO) == "21/11/2026"
        assert format_duration(180, PSEUDO) == "⟦3 phút⟧"


class TestNumbers:
    @pytest.mark.parametrize(
        ("value", "decimals", "vi", "en"),
        [
            (1234.5, 1, "1.234,5", "1,234.5"),
            (1234.5, 0, "1.235", "1,235"),
            (1234567.891, 2, "1.234.567,89", "1,234,567.89"),
            (0, 0, "0", "0"),
            (999, 0, "999", "999"),
            (1000, 0, "1.000", "1,000"),
            (-1234.5, 1, "-1.234,5", "-1,234.5"),
            (-0.5, 0, "-1", "-1"),
            (0.5, 0, "1", "1"),
            (2.5, 0, "3", "3"),
            (2.675, 2, "2,68", "2.68"),
            (1.005, 2, "1,01", "1.01"),
            (-0.04, 1, "0,0", "0.0"),
            (12, 2, "12,00", "12.00"),
            (Decimal("1234.5"), 1, "1.234,5", "1,234.5"),
            (10**9, 0, "1.000.000.000", "1,000,000,000"),
        ],
    )
    def test_number_uses_the_language_separators_and_rounds_half_away_from_zero(self, value, decimals, vi, en):
        assert format_number(value, "vi", decimals) == vi
        assert format_number(value, "en", decimals) == en

    def test_default_is_no_decimals(self):
        assert format_number(1234.4, "vi") == "1.234"

    @pytest.mark.parametrize("missing", [None, math.nan, float("nan"), "not a number"])
    def test_missing_numbers_show_a_dash(self, missing):
        assert format_number(missing, "vi") == MISSING == "–"
        assert format_percent(missing, "en") == MISSING

    def test_pandas_and_numpy_values(self):
        import numpy as np
        import pandas as pd

        assert format_number(pd.NA, "vi") == MISSING
        assert format_number(np.nan, "vi") == MISSING
        assert format_number(np.int64(12345), "vi") == "12.345"
        assert format_number(np.float64(1234.5), "en", 1) == "1,234.5"

    def test_infinity(self):
        assert format_number(math.inf, "vi") == "∞"
        assert format_number(-math.inf, "en") == "-∞"

    @pytest.mark.parametrize(
        ("value", "decimals", "vi", "en"),
        [
            (0.934, 1, "93,4%", "93.4%"),
            (1, 1, "100,0%", "100.0%"),
            (0, 0, "0%", "0%"),
            (0.12345, 2, "12,35%", "12.35%"),
            (-0.052, 1, "-5,2%", "-5.2%"),
            (12.5, 0, "1.250%", "1,250%"),
        ],
    )
    def test_percent_of_a_share(self, value, decimals, vi, en):
        assert format_percent(value, "vi", decimals) == vi
        assert format_percent(value, "en", decimals) == en


HCM = timezone(timedelta(hours=7))


class TestDatesAndTimes:
    def test_date(self):
        assert format_date(date(2026, 11, 21), "vi") == "21/11/2026"
        assert format_date(date(2026, 11, 21), "en") == "2026-11-21"
        assert format_date(date(2026, 1, 5), "vi") == "05/01/2026"

    def test_utc_evening_is_the_next_day_in_ho_chi_minh_city(self):
        moment = datetime(2026, 11, 20, 17, 30, tzinfo=UTC)
        assert format_datetime(moment, "vi") == "21/11/2026 00:30"
        assert format_datetime(moment, "en") == "2026-11-21 00:30"
        assert format_date(moment, "vi") == "21/11/2026"

    def test_any_aware_datetime_is_shown_in_local_time(self):
        paris = timezone(timedelta(hours=1))
        assert format_datetime(datetime(2026, 11, 21, 11, 5, tzinfo=paris), "vi") == "21/11/2026 17:05"
        assert format_datetime(datetime(2026, 11, 21, 17, 5, tzinfo=HCM), "en") == "2026-11-21 17:05"

    def test_naive_datetime_is_taken_as_local_wall_time(self):
        assert format_datetime(datetime(2026, 11, 21, 17, 5, 59), "vi") == "21/11/2026 17:05"

    def test_pandas_timestamps(self):
        import pandas as pd

        assert format_datetime(pd.Timestamp("2026-11-20T17:30Z"), "vi") == "21/11/2026 00:30"
        assert format_datetime(pd.NaT, "vi") == MISSING

    def test_missing_dates_show_a_dash(self):
        assert format_date(None, "vi") == MISSING
        assert format_datetime(None, "en") == MISSING


class TestDurations:
    @pytest.mark.parametrize(
        ("seconds", "vi", "en"),
        [
            (0, "0 giây", "0 s"),
            (45, "45 giây", "45 s"),
            (59.9, "59 giây", "59 s"),
            (60, "1 phút", "1 min"),
            (119, "1 phút", "1 min"),
            (180, "3 phút", "3 min"),
            (3599, "59 phút", "59 min"),
            (7200, "2 giờ", "2 h"),
            (86399, "23 giờ", "23 h"),
            (5 * 86400 + 100, "5 ngày", "5 d"),
            (1500 * 86400, "1.500 ngày", "1,500 d"),
            (timedelta(minutes=3), "3 phút", "3 min"),
            (-30, "0 giây", "0 s"),
        ],
    )
    def test_largest_whole_unit_rounded_down(self, seconds, vi, en):
        assert format_duration(seconds, "vi") == vi
        assert format_duration(seconds, "en") == en

    def test_units_come_from_the_catalogue(self):
        assert format_duration(7200, "vi") == t("units.hours", "vi", n=2)

    def test_missing_duration_shows_a_dash(self):
        assert format_duration(None, "vi") == MISSING
        assert format_duration(math.nan, "en") == MISSING

    def test_freshness_sentence(self):
        assert t("freshness.age", "vi", age=format_duration(180, "vi")) == "cập nhật 3 phút trước"
        assert t("freshness.age", "en", age=format_duration(180, "en")) == "updated 3 min ago"


class TestDiacriticsRoundTrip:
    def test_lookup_returns_nfc_text(self):
        for key, text in catalogue("vi").items():
            assert unicodedata.is_normalized("NFC", text), key

    def test_decomposed_parameters_are_recomposed(self):
        decomposed = unicodedata.normalize("NFD", "Phường Bến Nghé")
        assert decomposed != "Phường Bến Nghé"
        text = t("freshness.unavailable_since", "vi", since=decomposed)
        assert text == "Dữ liệu không khả dụng từ Phường Bến Nghé"
        assert unicodedata.is_normalized("NFC", text)

    def test_text_survives_json_and_utf8_round_trips(self):
        vi = catalogue("vi")
        assert json.loads(json.dumps(vi)) == vi
        assert json.loads(json.dumps(vi, ensure_ascii=False).encode("utf-8").decode("utf-8")) == vi
        assert t("app.title", "vi").encode("utf-8").decode("utf-8") == "Trung tâm điều hành thông minh"
