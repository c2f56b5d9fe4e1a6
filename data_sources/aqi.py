"""Vietnamese air quality index (VN_AQI) as Decision 1459/QĐ-TCMT defines it: pure functions.

Source: Tổng cục Môi trường, Quyết định 1459/QĐ-TCMT ngày 12/11/2019 ban hành "Hướng dẫn kỹ thuật
tính toán và công bố chỉ số chất lượng không khí Việt Nam (VN_AQI)", replacing 878/QĐ-TCMT (2011).
Official PDF: https://vea.mae.gov.vn/Data/files/QD%201459%20TCMT%20ngay%2012_11_2019%20AQI(1).pdf
(announcement with the same Table 1: https://cem.gov.vn/tin-tuc-moi-truong/tong-cuc-moi-truong-ban-
hanh-huong-dan-ky-thuat-tinh-toan-va-cong-bo-chi-so-chat-luong-khong-khi-viet-nam).

What the decision says, and where this module follows it:

- Section 2.2.1 a (NowCast, PM2.5 and PM10 only): ``c1..c12`` are the last 12 hourly means, ``c1``
  the current hour. ``w* = Cmin / Cmax`` over those values; ``w = 1/2`` when ``w* <= 1/2``, else
  ``w = w*``. For ``w > 1/2``: ``NowCast = Σ w^(i-1)·ci / Σ w^(i-1)``; for ``w = 1/2``:
  ``NowCast = Σ (1/2)^i·ci`` (``nowcast``). NowCast needs at least 2 of ``c1, c2, c3``; an hour
  without a value gets weight 0. Both formulas are applied literally, so with hours missing and
  ``w = 1/2`` the sum is not renormalised (the decision's text; with all 12 hours the two forms
  agree within 0.03 %).
- Section 2.2.1 b, Table 2 (breakpoints BPi, µg/m³, ``BREAKPOINTS``): formula 1 interpolates the
  hourly mean of SO2, CO, NO2 and O3 (the O3 1-hour column), formula 2 the NowCast of PM10 and
  PM2.5, both ``AQIx = (I(i+1) - Ii) / (BP(i+1) - BPi) · (Cx - BPi) + Ii``; a concentration at or
  above the last breakpoint ("≥") scores 500 (``sub_index``).
- Section 2.2.1 c: ``AQI^h = max(AQIx)``, rounded to an integer (``hourly_aqi``); section 2.1 b: at
  least one of PM10 and PM2.5 must be part of it, otherwise there is no AQI.
- Section 2.2.2 (daily AQI, ``daily_aqi``): 24-hour means for PM, the larger of the maximum 1-hour
  and maximum 8-hour O3 (the 8-hour column only up to 400 µg/m³), maximum 1-hour SO2, NO2, CO.
- Table 1 (``CATEGORIES``): 0-50 Tốt (0;228;0), 51-100 Trung bình (255;255;0), 101-150 Kém
  (255;126;0), 151-200 Xấu (255;0;0), 201-300 Rất xấu (143;63;151), 301-500 Nguy hại (126;0;35).
  The English names are ours (the decision is in Vietnamese only).

Rounding: "làm tròn thành số nguyên" is read as half away from zero. It reproduces the decision's
worked examples (section 2.3) except one: the hourly NO2 sub-index of 118.7 µg/m³ is printed as 60,
while its own formula gives 0.5 · 18.7 + 50 = 59.35 (no rounding rule yields both that 60 and the
daily NO2 example's 65 from 65.4); tests/test_aqi.py records this.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

POLLUTANTS = ("pm25", "pm10", "no2", "o3", "co", "so2")
"""Parameters of the index, as column-like names."""
PARTICULATES = ("pm25", "pm10")
"""Parameters averaged by NowCast; at least one of them must be present."""
NOWCAST_HOURS = 12

INDEX_LEVELS = (0, 50, 100, 150, 200, 300, 400, 500)
"""Ii of Table 2."""
BREAKPOINTS: dict[str, tuple[float, ...]] = {
    # Table 2, µg/m³; the last value is the "≥" row (AQI 500)
    "o3": (0, 160, 200, 300, 400, 800, 1000, 1200),  # 1-hour column, used for the hourly AQI
    "co": (0, 10_000, 30_000, 45_000, 60_000, 90_000, 120_000, 150_000),
    "so2": (0, 125, 350, 550, 800, 1600, 2100, 2630),
    "no2": (0, 100, 200, 700, 1200, 2350, 3100, 3850),
    "pm10": (0, 50, 150, 250, 350, 420, 500, 600),
    "pm25": (0, 25, 50, 80, 150, 250, 350, 500),
}
O3_8H_BREAKPOINTS = (0, 100, 120, 170, 210, 400)
"""Table 2's O3 (8h) column, defined up to AQI 300 only."""


@dataclass(frozen=True)
class Category:
    """One band of Table 1."""

    id: str
    low: int
    high: int
    rgb: tuple[int, int, int]
    name_vi: str
    name_en: str

    @property
    def colour(self) -> str:
        """The band's colour as ``#rrggbb``."""
        return "#{:02x}{:02x}{:02x}".format(*self.rgb)


CATEGORIES: tuple[Category, ...] = (
    Category("good", 0, 50, (0, 228, 0), "Tốt", "Good"),
    Category("moderate", 51, 100, (255, 255, 0), "Trung bình", "Moderate"),
    Category("poor", 101, 150, (255, 126, 0), "Kém", "Poor"),
    Category("bad", 151, 200, (255, 0, 0), "Xấu", "Bad"),
    Category("very_bad", 201, 300, (143, 63, 151), "Rất xấu", "Very bad"),
    Category("hazardous", 301, 500, (126, 0, 35), "Nguy hại", "Hazardous"),
)
NO_DATA_COLOUR = "#9e9e9e"
"""Grey for a station without an index: never a band colour, so it cannot read as clean air."""


def round_index(value: float) -> int:
    """Round an index half away from zero ("làm tròn thành số nguyên")."""
    return int(Decimal(repr(float(value))).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def category(aqi: float | None) -> Category | None:
    """The Table 1 band of an (integer) AQI; None without a value. Values above 500 are hazardous."""
    if aqi is None or (isinstance(aqi, float) and math.isnan(aqi)):
        return None
    value = round_index(aqi)
    for band in CATEGORIES:
        if value <= band.high:
            return band
    return CATEGORIES[-1]


def category_colour(aqi: float | None) -> str:
    """``#rrggbb`` of the AQI's band (grey without a value): what a map marker should use."""
    band = category(aqi)
    return band.colour if band else NO_DATA_COLOUR


def category_name(aqi: float | None, lang: str = "vi") -> str | None:
    """The band's name in Vietnamese (official) or English."""
    band = category(aqi)
    if band is None:
        return None
    return band.name_en if lang == "en" else band.name_vi


def _present(value: float | None) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def interpolate(concentration: float, breakpoints: Sequence[float], levels: Sequence[int] = INDEX_LEVELS) -> float:
    """Formula 1/2 of the decision, unrounded; at or above the last breakpoint the top level."""
    concentration = max(0.0, float(concentration))
    if concentration >= breakpoints[-1]:
        return float(levels[len(breakpoints) - 1])
    for i in range(len(breakpoints) - 1):
        low, high = breakpoints[i], breakpoints[i + 1]
        if concentration < high:
            return (levels[i + 1] - levels[i]) / (high - low) * (concentration - low) + levels[i]
    raise AssertionError("unreachable")  # pragma: no cover


def sub_index(pollutant: str, concentration: float | None) -> float | None:
    """AQIx of one parameter (unrounded): the hourly mean for gases, the NowCast for PM."""
    if not _present(concentration):
        return None
    return interpolate(concentration, BREAKPOINTS[pollutant])


def nowcast(hourly: Sequence[float | None]) -> float | None:
    """NowCast of the 12 latest hourly means, newest first (``hourly[0]`` is c1); None if not computable."""
    values = list(hourly[:NOWCAST_HOURS])
    if sum(_present(v) for v in values[:3]) < 2:
        return None
    present = [float(v) for v in values if _present(v)]
    c_max = max(present)
    if c_max <= 0:
        return 0.0
    w = max(min(present) / c_max, 0.5)
    if w > 0.5:
        weights = [w**i if _present(v) else 0.0 for i, v in enumerate(values)]
        return sum(wt * float(v) for wt, v in zip(weights, values, strict=True) if wt) / sum(weights)
    return sum(0.5 ** (i + 1) * float(v) for i, v in enumerate(values) if _present(v))


@dataclass(frozen=True)
class HourlyAqi:
    """An hourly AQI with its parts, as the decision asks to publish it (Table 3)."""

    aqi: int | None
    sub_indices: dict[str, float]
    dominant: str | None

    @property
    def category(self) -> Category | None:
        """Table 1 band of the index."""
        return category(self.aqi)


def hourly_aqi(gases: Mapping[str, float | None], particulates: Mapping[str, Sequence[float | None]]) -> HourlyAqi:
    """AQI^h of one station for the current hour.

    ``gases``: the current hour's means of no2, o3, co, so2 (missing keys or None are left out);
    ``particulates``: per pm25/pm10, the latest 12 hourly means, newest first, for the NowCast.
    """
    parts: dict[str, float] = {}
    for pollutant in PARTICULATES:
        value = sub_index(pollutant, nowcast(particulates.get(pollutant, ())))
        if value is not None:
            parts[pollutant] = value
    if not parts:
        return HourlyAqi(None, {}, None)
    for pollutant in ("no2", "o3", "co", "so2"):
        value = sub_index(pollutant, gases.get(pollutant))
        if value is not None:
            parts[pollutant] = value
    dominant = max(parts, key=lambda name: parts[name])
    return HourlyAqi(round_index(parts[dominant]), parts, dominant)


def daily_aqi(
    *,
    pm25_24h: float | None = None,
    pm10_24h: float | None = None,
    o3_1h_max: float | None = None,
    o3_8h_max: float | None = None,
    no2_1h_max: float | None = None,
    so2_1h_max: float | None = None,
    co_1h_max: float | None = None,
) -> int | None:
    """AQI^d (section 2.2.2); None without PM10 or PM2.5."""
    parts = [sub_index("pm25", pm25_24h), sub_index("pm10", pm10_24h)]
    if all(p is None for p in parts):
        return None
    parts += [sub_index("no2", no2_1h_max), sub_index("so2", so2_1h_max), sub_index("co", co_1h_max)]
    parts.append(sub_index("o3", o3_1h_max))
    if _present(o3_8h_max) and o3_8h_max <= O3_8H_BREAKPOINTS[-1]:
        parts.append(interpolate(o3_8h_max, O3_8H_BREAKPOINTS, INDEX_LEVELS[: len(O3_8H_BREAKPOINTS)]))
    return round_index(max(p for p in parts if p is not None))


def eight_hour_means(hourly: Sequence[float]) -> list[float]:
    """Running 8-hour means of consecutive hourly values (oldest first), one per hour from the 8th."""
    return [sum(hourly[i - 7 : i + 1]) / 8 for i in range(7, len(hourly))]
