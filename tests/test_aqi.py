"""VN_AQI (Decision 1459/QĐ-TCMT, 2019) against the decision's own worked examples and tables."""

from __future__ import annotations

import math

import pytest

from data_sources import aqi

# Section 2.3 a: PM2.5 hourly means 09:00 .. 20:00; c1 is the newest (20:00)
WORKED_PM25_OLDEST_FIRST = [26.9, 24.7, 20.5, 23.5, 19.5, 16.5, 19.0, 16.5, 20.3, 22.4, 19.6, 20.6]
WORKED_PM25 = list(reversed(WORKED_PM25_OLDEST_FIRST))


class TestNowcast:
    def test_worked_example_gives_20_3(self):
        assert round(aqi.nowcast(WORKED_PM25), 1) == 20.3

    def test_weight_is_the_min_max_ratio_above_one_half(self):
        values = [20.0, 12.0, *([None] * 10)]  # w* = 12 / 20 = 0.6
        expected = (20.0 + 0.6 * 12.0) / 1.6
        assert aqi.nowcast(values) == pytest.approx(expected)

    def test_weight_one_half_uses_the_decisions_halving_sum(self):
        values = [100.0, 10.0] + [10.0] * 10  # w* = 0.1 -> w = 1/2
        expected = sum(0.5 ** (i + 1) * v for i, v in enumerate(values))
        assert aqi.nowcast(values) == pytest.approx(expected)

    def test_needs_two_of_the_three_latest_hours(self):
        assert aqi.nowcast([None, None, 30.0, 30.0, 30.0]) is None
        assert aqi.nowcast([30.0, None, None, 30.0]) is None
        assert aqi.nowcast([30.0, None, 30.0]) == pytest.approx(30.0)

    def test_missing_hours_get_weight_zero(self):
        # w* = 0.8 > 1/2: a missing c2 drops out of numerator and denominator
        assert aqi.nowcast([40.0, None, 32.0]) == pytest.approx((40.0 + 0.64 * 32.0) / (1 + 0.64))

    def test_constant_series_is_its_value_and_zero_is_zero(self):
        assert aqi.nowcast([12.0] * 12) == pytest.approx(12.0)
        assert aqi.nowcast([0.0] * 12) == 0.0

    def test_only_twelve_hours_count(self):
        assert aqi.nowcast([10.0] * 12 + [1000.0]) == pytest.approx(10.0)


class TestSubIndex:
    def test_worked_hourly_example(self):
        assert aqi.round_index(aqi.sub_index("o3", 136.1)) == 43
        assert aqi.round_index(aqi.sub_index("pm25", 20.3)) == 41
        # the decision prints 60 here; its formula gives 0.5 * 18.7 + 50 = 59.35
        assert aqi.sub_index("no2", 118.7) == pytest.approx(59.35)

    def test_worked_daily_example_gives_110(self):
        assert aqi.daily_aqi(o3_8h_max=89.3, o3_1h_max=114.6, no2_1h_max=130.8, pm25_24h=55.7) == 110

    def test_worked_eight_hour_mean(self):
        o3 = [15.7, 14.2, 17.7, 18.9, 19.3, 15.7, 19.7, 22.6, 27.1]  # 18:00 .. 02:00
        means = aqi.eight_hour_means(o3)
        assert [round(m, 1) for m in means] == [18.0, 19.4]

    @pytest.mark.parametrize("pollutant", aqi.POLLUTANTS)
    def test_every_breakpoint_maps_onto_its_index_level(self, pollutant):
        for concentration, level in zip(aqi.BREAKPOINTS[pollutant], aqi.INDEX_LEVELS, strict=True):
            assert aqi.sub_index(pollutant, concentration) == pytest.approx(level)

    def test_table_2_values(self):
        assert aqi.BREAKPOINTS["pm25"] == (0, 25, 50, 80, 150, 250, 350, 500)
        assert aqi.BREAKPOINTS["pm10"] == (0, 50, 150, 250, 350, 420, 500, 600)
        assert aqi.BREAKPOINTS["no2"] == (0, 100, 200, 700, 1200, 2350, 3100, 3850)
        assert aqi.BREAKPOINTS["o3"] == (0, 160, 200, 300, 400, 800, 1000, 1200)

    def test_linear_between_breakpoints_and_capped_at_500(self):
        assert aqi.sub_index("pm25", 65.0) == pytest.approx(125.0)
        assert aqi.sub_index("pm25", 900.0) == 500.0
        assert aqi.sub_index("pm10", -3.0) == 0.0
        assert aqi.sub_index("so2", None) is None
        assert aqi.sub_index("so2", math.nan) is None

    def test_o3_8h_above_400_is_left_out_of_the_daily_index(self):
        assert aqi.daily_aqi(pm25_24h=10.0, o3_8h_max=500.0) == 20


class TestHourlyAqi:
    def test_is_the_rounded_maximum_with_its_dominant_parameter(self):
        result = aqi.hourly_aqi({"o3": 136.1, "no2": 118.7}, {"pm25": WORKED_PM25})
        assert result.dominant == "no2"
        assert result.aqi == 59
        assert set(result.sub_indices) == {"o3", "no2", "pm25"}
        assert result.category.id == "moderate"

    def test_without_pm_there_is_no_index(self):
        result = aqi.hourly_aqi({"o3": 300.0, "no2": 500.0}, {"pm25": [None, None, 20.0]})
        assert result.aqi is None and result.category is None

    def test_pm10_alone_is_enough(self):
        assert aqi.hourly_aqi({}, {"pm10": [150.0] * 3}).aqi == 100


class TestCategories:
    @pytest.mark.parametrize(
        ("value", "band", "colour", "vi", "en"),
        [
            (0, "good", "#00e400", "Tốt", "Good"),
            (50, "good", "#00e400", "Tốt", "Good"),
            (50.4, "good", "#00e400", "Tốt", "Good"),
            (51, "moderate", "#ffff00", "Trung bình", "Moderate"),
            (100, "moderate", "#ffff00", "Trung bình", "Moderate"),
            (101, "poor", "#ff7e00", "Kém", "Poor"),
            (151, "bad", "#ff0000", "Xấu", "Bad"),
            (201, "very_bad", "#8f3f97", "Rất xấu", "Very bad"),
            (300, "very_bad", "#8f3f97", "Rất xấu", "Very bad"),
            (301, "hazardous", "#7e0023", "Nguy hại", "Hazardous"),
            (500, "hazardous", "#7e0023", "Nguy hại", "Hazardous"),
        ],
    )
    def test_table_1_bands_colours_and_names(self, value, band, colour, vi, en):
        assert aqi.category(value).id == band
        assert aqi.category_colour(value) == colour
        assert aqi.category_name(value, "vi") == vi
        assert aqi.category_name(value, "en") == en

    def test_no_value_is_grey_and_unnamed(self):
        assert aqi.category(None) is None
        assert aqi.category_colour(math.nan) == aqi.NO_DATA_COLOUR
        assert aqi.NO_DATA_COLOUR not in {c.colour for c in aqi.CATEGORIES}
        assert aqi.category_name(None) is None

    def test_bands_cover_0_to_500_without_gaps(self):
        bounds = [(c.low, c.high) for c in aqi.CATEGORIES]
        assert bounds[0][0] == 0 and bounds[-1][1] == 500
        assert all(a[1] + 1 == b[0] for a, b in zip(bounds, bounds[1:], strict=False))

    def test_rounding_is_half_away_from_zero(self):
        assert aqi.round_index(40.5) == 41
        assert aqi.round_index(109.5) == 110
        assert aqi.round_index(42.49) == 42


def test_interface_catalogue_names_the_bands_as_the_decision_does():
    from layouts.i18n import t

    for band in aqi.CATEGORIES:
        assert t(f"aqi.category.{band.id}", "vi") == band.name_vi
        assert t(f"aqi.category.{band.id}", "en") == band.name_en
