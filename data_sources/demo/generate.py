"""Fill a demo warehouse with a province's synthetic history, from ``start`` up to ``now``.

Sensor series are dense for recent days and thinned for older periods (traffic every 2 minutes for
the last 7 days and hourly before, river gauges every 15 minutes then hourly, hospital occupancy
hourly for 30 days then every 6 hours, air quality every 10 minutes for 2 days then hourly). Case records (feedback,
dossiers, disease cases, traffic incidents) arrive at realistic daily rates and carry the status
they would have at ``now``. Rows dated before 1 July 2025 carry the pre-merger ward code.

Everything is drawn from ``numpy.random.default_rng`` streams derived from the seed, so the same
seed, ``now`` and scale always give the same rows. Slow weather-like variation and the autumn
floods are deterministic functions of time, which lets the simulator continue the same series.

Times are handled as integer seconds of naive local (Asia/Ho_Chi_Minh) wall time since
1970-01-01 00:00, the way the warehouse stores them.
"""

from __future__ import annotations

import argparse
import re
import time as walltime
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as daytime
from functools import cache

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, DateTime, Table, text
from sqlalchemy.schema import CreateTable
from tqdm import tqdm

from data_sources.admin_units import REFORM_DATE, current_units, legacy_units, province
from data_sources.clock import LOCAL_TZ, system_clock, to_local_naive
from data_sources.demo import names, schema
from data_sources.geo import approximate_wards
from data_sources.warehouse import create_warehouse_engine

DEFAULT_SEED = 20250101
MINUTE, HOUR, DAY = 60, 3600, 86400
NEVER = np.iinfo(np.int64).max // 4
"""Time of something that has not happened (stored as NULL)."""
CHUNK_ROWS = 100_000
SQLITE_LOAD_CACHE_KIB = 256 * 1024
"""Page cache of the generating connection: keeps index pages in memory during the bulk load."""
_EPOCH = datetime(1970, 1, 1)


def to_seconds(moment: datetime) -> int:
    """Seconds of naive local wall time since 1970-01-01 00:00 (aware moments are converted first)."""
    return int((to_local_naive(moment) - _EPOCH) // timedelta(seconds=1))


def from_seconds(seconds: int) -> datetime:
    """Inverse of ``to_seconds``: a naive local datetime."""
    return _EPOCH + timedelta(seconds=int(seconds))


REFORM_S = to_seconds(datetime.combine(REFORM_DATE, daytime()))


@dataclass(frozen=True)
class Cadence:
    """How often a sensor reports: ``fine_s`` for the last ``fine_days`` days, ``coarse_s`` before."""

    fine_s: int
    fine_days: int
    coarse_s: int

    def times(self, start: int, end: int) -> np.ndarray:
        """Observation times in ``[start, end]``, aligned to multiples of the step."""
        boundary = (end - self.fine_days * DAY) // self.coarse_s * self.coarse_s
        coarse = grid(start, min(boundary, end + 1) - 1, self.coarse_s)
        return np.concatenate([coarse, grid(max(boundary, start), end, self.fine_s)])


TRAFFIC_CADENCE = Cadence(2 * MINUTE, 7, HOUR)
TRAFFIC_CAPACITY_WINDOW_S = 5 * MINUTE
"""Segment capacities are vehicles per 5 minutes; a reading counts the vehicles of one fine interval."""
RIVER_CADENCE = Cadence(15 * MINUTE, 7, HOUR)
OCCUPANCY_CADENCE = Cadence(HOUR, 30, 6 * HOUR)
AIR_CADENCE = Cadence(10 * MINUTE, 2, HOUR)
"""Stations publish 10-minute means; older history keeps one value per hour (the hourly mean)."""


def grid(start: int, end: int, step: int) -> np.ndarray:
    """Multiples of ``step`` in ``[start, end]`` as int64 seconds."""
    first = -(-start // step) * step
    return np.arange(first, end + 1, step, dtype=np.int64)


# --- randomness ----------------------------------------------------------------------------------
def stream(seed: int, *key: str | int) -> np.random.Generator:
    """An independent generator for one named purpose (a table, an entity, a year)."""
    words = [k if isinstance(k, int) else zlib.crc32(k.encode()) for k in key]
    return np.random.default_rng([seed, *words])


def wobble(seed: int, key: str, times: np.ndarray) -> np.ndarray:
    """Slow weather-like variation: a deterministic, smooth, unit-variance function of time."""
    rng = stream(seed, "wobble", key)
    periods = rng.uniform(0.6, 12.0, 6) * DAY
    phases = rng.uniform(0, 2 * np.pi, 6)
    angle = 2 * np.pi * times[:, None] / periods[None, :] + phases[None, :]
    return np.sqrt(2 / 6) * np.sin(angle).sum(axis=1)


@cache
def _flood_events(seed: int, year: int) -> np.ndarray:
    """Rows of (peak time, severity 0..1, rise s, recession s) for the floods of one rainy season."""
    rng = stream(seed, "floods", year)
    count = int(rng.integers(3, 6))
    peaks = to_seconds(datetime(year, 10, 1)) + rng.uniform(0, 61 * DAY, count)
    severity = rng.beta(2.5, 2.0, count)
    rise = rng.uniform(12, 30, count) * HOUR
    recess = rng.uniform(30, 72, count) * HOUR
    # a minor flood in late September or early December some years
    extra_peak = to_seconds(datetime(year, 9, 10)) + rng.uniform(0, 20 * DAY) + rng.integers(0, 2) * 82 * DAY
    extra = rng.random() < 0.6
    events = np.column_stack([peaks, severity, rise, recess])
    if extra:
        events = np.vstack([events, [extra_peak, 0.5 * rng.beta(2, 3), 18 * HOUR, 40 * HOUR]])
    return events


def _years(times: np.ndarray) -> range:
    """Calendar years spanned by ``times``."""
    if len(times) == 0:
        return range(0)
    first, last = (from_seconds(t).year for t in (times.min(), times.max()))
    return range(first, last + 1)


def flood_intensity(seed: int, times: np.ndarray) -> np.ndarray:
    """Flood severity at each time: 0 most of the year, up to ~1 at the crest of a major flood."""
    total = np.zeros(len(times))
    for year in _years(times):
        for peak, severity, rise, recess in _flood_events(seed, year):
            dt = times - peak
            total += severity * np.where(dt < 0, np.exp(-np.square(dt / rise)), np.exp(-np.abs(dt) / recess))
    return total


def flood_rain(seed: int, times: np.ndarray) -> np.ndarray:
    """Rain rate (mm/h) of the storms that cause the floods, peaking about 10 h before each crest."""
    total = np.zeros(len(times))
    for year in _years(times):
        for peak, severity, _rise, _recess in _flood_events(seed, year):
            total += 18 * severity * np.exp(-np.square((times - peak + 10 * HOUR) / (20 * HOUR)))
    return total


# --- calendar helpers ----------------------------------------------------------------------------
def _hour_of_day(times: np.ndarray) -> np.ndarray:
    """Local hour of the day as a fraction (7.5 = 07:30)."""
    return (times % DAY) / HOUR


def _weekday(days: np.ndarray) -> np.ndarray:
    """Weekday of day numbers (days since 1970-01-01, a Thursday); Monday = 0."""
    return (days + 3) % 7


def _year(times: np.ndarray) -> np.ndarray:
    """Calendar year of each time."""
    return (times // DAY).astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970


def _day_of_year(times: np.ndarray) -> np.ndarray:
    """Day of the year of each time, 0 for 1 January."""
    days = (times // DAY).astype("datetime64[D]")
    return (days - days.astype("datetime64[Y]")).astype(np.int64)


def _bump(x: np.ndarray, centre: float, width: float) -> np.ndarray:
    """A Gaussian bump of height 1."""
    return np.exp(-0.5 * np.square((x - centre) / width))


def _season(doy: np.ndarray, centre: float, width: float) -> np.ndarray:
    """A bump around day-of-year ``centre`` that wraps around the new year."""
    distance = (doy - centre + 182.6) % 365.25 - 182.6
    return np.exp(-0.5 * np.square(distance / width))


def _traffic_demand(hours: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    """Share of a road's capacity in use: rush hours 7-9 and 16:30-18:30 on weekdays."""
    daytime_ = 1 / (1 + np.exp(-(hours - 6) * 2)) / (1 + np.exp((hours - 21.5) * 1.5))
    weekend = weekday >= 5
    peaks = 0.5 * _bump(hours, 7.75, 0.55) + 0.55 * _bump(hours, 17.5, 0.65)
    return 0.07 + 0.55 * daytime_ * np.where(weekend, 0.9, 1.0) + peaks * np.where(weekend, 0.4, 1.0)


Placer = Callable[[Sequence[str], float], pd.DataFrame]
"""Places catalogue entries (by pre-merger ward name) on the map: ward_code, old_code, lat, lon."""


# --- the province --------------------------------------------------------------------------------
WARD_MARGIN_DEG = 0.0006
"""Points keep about 60 m from their ward's edge, so map rounding never moves one across it."""


@dataclass(frozen=True)
class WardShapes:
    """Each ward's area as the demo map draws it (the approximate polygons of ``data_sources.geo``),
    shrunk by ``WARD_MARGIN_DEG``, and a point well inside it; indexed like ``DemoWorld.wards``."""

    shapes: np.ndarray
    inner_lat: np.ndarray
    inner_lon: np.ndarray

    @classmethod
    def of(cls, wards: pd.DataFrame) -> WardShapes:
        """Shapes of the given wards (columns code, name, lat, lon, area_km2)."""
        polygons = approximate_wards(wards).set_index("code").loc[wards["code"], "geometry"].to_numpy()
        shrunk = shapely.buffer(polygons, -WARD_MARGIN_DEG)
        shrunk = np.where(shapely.is_empty(shrunk), polygons, shrunk)
        inner = shapely.point_on_surface(shrunk)
        return cls(shrunk, shapely.get_y(inner), shapely.get_x(inner))

    def pull_inside(self, ward_idx: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Points outside their ward moved toward its inner point until inside (the inner point at worst)."""
        lat, lon = np.asarray(lat, dtype=float).copy(), np.asarray(lon, dtype=float).copy()
        shapes, inner_lat, inner_lon = self.shapes[ward_idx], self.inner_lat[ward_idx], self.inner_lon[ward_idx]
        outside = ~shapely.contains_xy(shapes, lon, lat)
        for share in (0.8, 0.6, 0.4, 0.2, 0.0):
            if not outside.any():
                break
            cand_lat = inner_lat[outside] + share * (lat[outside] - inner_lat[outside])
            cand_lon = inner_lon[outside] + share * (lon[outside] - inner_lon[outside])
            ok = shapely.contains_xy(shapes[outside], cand_lon, cand_lat) | (share == 0.0)
            which = np.flatnonzero(outside)[ok]
            lat[which], lon[which] = cand_lat[ok], cand_lon[ok]
            outside[which] = False
        return lat.round(6), lon.round(6)


@dataclass(frozen=True)
class DemoWorld:
    """The province as the demo sees it: wards, their pre-merger wards, and every sensor-bearing entity.

    Pre-merger wards are grouped by the current ward they map onto: those of ward ``i`` are
    ``old_codes[old_start[i] : old_start[i] + old_count[i]]``.
    """

    seed: int
    city: str
    wards: pd.DataFrame
    old_codes: np.ndarray
    old_names: np.ndarray
    old_areas: np.ndarray
    old_start: np.ndarray
    old_count: np.ndarray
    ward_streets: tuple[tuple[str, ...], ...]
    segments: pd.DataFrame
    facilities: pd.DataFrame
    air_stations: pd.DataFrame
    gauges: pd.DataFrame
    shapes: WardShapes

    def ward_index(self, codes: np.ndarray) -> np.ndarray:
        """Index in ``wards`` of current ward codes."""
        return pd.Index(self.wards["code"]).get_indexer(codes)

    def ward_codes(
        self, ward_idx: np.ndarray, times: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Code, name and address area of each row's ward as written at its time.

        Before July 2025 that is one of the pre-merger wards of the current ward, and the area names its
        district too ("Phường Vĩnh Ninh, Quận Thuận Hóa").
        """
        pick = self.old_start[ward_idx] + (rng.random(len(ward_idx)) * self.old_count[ward_idx]).astype(int)
        before = times < REFORM_S
        codes = np.where(before, self.old_codes[pick], self.wards["code"].to_numpy()[ward_idx])
        ward_names = np.where(before, self.old_names[pick], self.wards["name"].to_numpy()[ward_idx])
        areas = np.where(before, self.old_areas[pick], ward_names)
        return codes, ward_names, areas

    def positions(self, ward_idx: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Points near each ward's centroid, scattered over about the ward's size."""
        size_km = np.sqrt(self.wards["area_km2"].to_numpy()[ward_idx])
        offset = np.clip(rng.normal(0, 0.25, (len(ward_idx), 2)), -0.5, 0.5) * size_km[:, None]
        lat = self.wards["lat"].to_numpy()[ward_idx] + offset[:, 0] / 111.0
        lon = self.wards["lon"].to_numpy()[ward_idx] + offset[:, 1] / (111.0 * np.cos(np.radians(lat)))
        return self.shapes.pull_inside(ward_idx, lat, lon)

    def choose_wards(self, rng: np.random.Generator, n: int, weight: str) -> np.ndarray:
        """Ward indices drawn in proportion to a weight column of ``wards``."""
        weights = self.wards[weight].to_numpy(dtype=float)
        return rng.choice(len(weights), n, p=weights / weights.sum())


def _readings_entities(frame: pd.DataFrame, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Entity index and ward code of each (time, entity) reading, time-major."""
    count = len(frame)
    entity = np.tile(np.arange(count), len(times))
    observed = np.repeat(times, count)
    codes = np.where(observed < REFORM_S, frame["old_code"].to_numpy()[entity], frame["ward_code"].to_numpy()[entity])
    return entity, codes


def build_world(province_code: str = "46", seed: int = DEFAULT_SEED, scale: float = 1.0) -> DemoWorld:
    """Wards with a synthetic population and the demo's road segments, facilities, stations and gauges.

    Entity parameters do not depend on ``scale``; a smaller scale keeps a prefix of the road segments
    and the health stations of the most populous wards, so a simulator can rebuild them at full scale.
    """
    rng = stream(seed, "world")
    wards = current_units(province_code)[["code", "name", "type", "lat", "lon", "area_km2"]].reset_index(drop=True)
    ward_pos = {code: i for i, code in enumerate(wards["code"])}
    legacy = legacy_units(province_code)
    # a ward the crosswalk does not cover (a new special zone) stands in for its own past
    uncovered = wards[~wards["code"].isin(legacy["new_code"])]
    legacy = pd.concat(
        [
            legacy,
            pd.DataFrame(
                {
                    "old_code": uncovered["code"],
                    "old_name": uncovered["name"],
                    "old_district": "",
                    "lat": uncovered["lat"],
                    "lon": uncovered["lon"],
                    "new_code": uncovered["code"],
                }
            ),
        ],
        ignore_index=True,
    )
    legacy["ward_idx"] = legacy["new_code"].map(ward_pos)
    legacy = legacy.sort_values(["ward_idx", "old_code"]).reset_index(drop=True)
    old_count = np.bincount(legacy["ward_idx"], minlength=len(wards))
    old_start = np.concatenate([[0], np.cumsum(old_count)[:-1]])

    # population: each pre-merger ward ~9,000 people on average, more in and near the city centre
    small = wards[wards["type"] == "Phường"].nsmallest(5, "area_km2")
    centre = (small["lat"].mean(), small["lon"].mean())
    dist_km = np.hypot((legacy["lat"] - centre[0]) * 111.0, (legacy["lon"] - centre[1]) * 106.0)
    urban = legacy["old_name"].str.startswith(("Phường", "Thị trấn")).to_numpy()
    old_pop = np.where(urban, 11_000, 6_000) * (0.5 + 0.9 * np.exp(-dist_km / 8)) * rng.lognormal(0, 0.12, len(legacy))
    old_pop *= 9_000 * len(legacy) / old_pop.sum()
    wards["population"] = (np.bincount(legacy["ward_idx"], weights=old_pop, minlength=len(wards)) / 10).round() * 10
    wards["population"] = wards["population"].astype(int)
    wards["feedback_weight"] = wards["population"] * np.where(wards["type"] == "Phường", 1.5, 0.8)
    by_population = np.argsort(-wards["population"].to_numpy(), kind="stable")

    old_index = {name: i for i, name in enumerate(legacy["old_name"])}
    shapes = WardShapes.of(wards)

    def anchor(old_name: str, rank: int) -> int:
        """Position in ``legacy`` of the named pre-merger ward, or of a populous ward's first one."""
        if old_name in old_index:
            return old_index[old_name]
        return int(old_start[by_population[rank % len(wards)]])

    def place(entries: Sequence[str], spread_deg: float) -> pd.DataFrame:
        """Each entry near the centroid of its pre-merger ward, with both ward codes."""
        positions = [anchor(name, rank) for rank, name in enumerate(entries)]
        anchors = legacy.iloc[positions]
        jitter = rng.normal(0, spread_deg, (len(positions), 2))
        lat, lon = shapes.pull_inside(
            anchors["ward_idx"].to_numpy(),
            anchors["lat"].to_numpy() + jitter[:, 0],
            anchors["lon"].to_numpy() + jitter[:, 1],
        )
        return pd.DataFrame(
            {
                "ward_code": anchors["new_code"].to_numpy(),
                "old_code": anchors["old_code"].to_numpy(),
                "lat": lat,
                "lon": lon,
            }
        )

    segments = _segments(rng, place, scale)
    facilities = _facilities(rng, place, wards, legacy, old_start, by_population, scale, shapes)
    air_stations = _air_stations(rng, place)
    gauges = _gauges(place)

    streets: list[list[str]] = [[] for _ in range(len(wards))]
    for name, code in zip(segments["name"], segments["ward_code"], strict=True):
        street = re.sub(r"^Đường |\s*\(.*\)$", "", name)
        if not street.startswith("Cầu") and street not in streets[ward_pos[code]]:
            streets[ward_pos[code]].append(street)

    return DemoWorld(
        seed=seed,
        city=province(province_code).name,
        wards=wards,
        old_codes=legacy["old_code"].to_numpy(dtype=object),
        old_names=legacy["old_name"].to_numpy(dtype=object),
        old_areas=legacy["old_name"]
        .str.cat(legacy["old_district"].replace("", None), sep=", ", na_rep="")
        .str.removesuffix(", ")
        .to_numpy(dtype=object),
        old_start=old_start,
        old_count=old_count,
        ward_streets=tuple(tuple(s) for s in streets),
        segments=segments,
        facilities=facilities,
        air_stations=air_stations,
        gauges=gauges,
        shapes=shapes,
    )


_ROAD_KINDS = {
    # free flow km/h, capacity (vehicles per 5 minutes), length m
    "arterial": ((45, 55), (220, 340), (800, 2500)),
    "street": ((35, 45), (110, 200), (400, 1500)),
    "highway": ((60, 75), (160, 280), (2000, 6000)),
    "bridge": ((35, 42), (260, 360), (300, 450)),
}


def _segments(rng: np.random.Generator, place: Placer, scale: float) -> pd.DataFrame:
    """Road segments with free-flow speed, capacity and demand; a prefix of the catalogue below scale 1."""
    catalogue = names.ROAD_SEGMENTS
    draws = rng.random((len(catalogue), 4))
    frame = place([old for _, old, _ in catalogue], 0.002)
    rows = []
    for i, (name, _old, kind) in enumerate(catalogue):
        (f0, f1), (c0, c1), (l0, l1) = _ROAD_KINDS[kind]
        rows.append(
            {
                "segment_id": f"SEG{i + 1:03d}",
                "name": name,
                "free_flow_kmh": round(f0 + (f1 - f0) * draws[i, 0], 1),
                "capacity": c0 + (c1 - c0) * draws[i, 1],
                "length_m": int(l0 + (l1 - l0) * draws[i, 2]),
                "demand": 0.8 + 0.5 * draws[i, 3],
            }
        )
    segments = pd.concat([pd.DataFrame(rows), frame], axis=1)
    keep = max(4, round(len(catalogue) * min(scale, 1.0)))
    return segments.head(keep).reset_index(drop=True)


def _facilities(
    rng: np.random.Generator,
    place: Placer,
    wards: pd.DataFrame,
    legacy: pd.DataFrame,
    old_start: np.ndarray,
    by_population: np.ndarray,
    scale: float,
    shapes: WardShapes,
) -> pd.DataFrame:
    """The hospitals of the catalogue and a health station in each (most populous, below scale 1) ward."""
    hospitals = place([old for _, old, _, _ in names.HOSPITALS], 0.001)
    hospitals["facility_id"] = [f"BV{i + 1:02d}" for i in range(len(names.HOSPITALS))]
    hospitals["name"] = [h[0] for h in names.HOSPITALS]
    hospitals["kind"] = "hospital"
    hospitals["beds"] = [h[2] for h in names.HOSPITALS]
    hospitals["occupancy"] = [h[3] for h in names.HOSPITALS]
    hospitals["er_per_day"] = hospitals["beds"] * 0.12

    station_draws = rng.random((len(wards), 3))
    keep = max(4, round(len(wards) * min(scale, 1.0)))
    chosen = np.sort(by_population[:keep])
    first_old = legacy.iloc[old_start[chosen]]
    lat, lon = shapes.pull_inside(
        chosen, wards["lat"].to_numpy()[chosen] + 0.002, wards["lon"].to_numpy()[chosen] + 0.002
    )
    stations = pd.DataFrame(
        {
            "ward_code": wards["code"].to_numpy()[chosen],
            "old_code": first_old["old_code"].to_numpy(),
            "lat": lat,
            "lon": lon,
            "facility_id": [f"TYT{code}" for code in wards["code"].to_numpy()[chosen]],
            "name": [f"Trạm Y tế {name}" for name in wards["name"].to_numpy()[chosen]],
            "kind": "station",
            "beds": (4 + 7 * station_draws[chosen, 0]).astype(int),
            "occupancy": 0.1 + 0.3 * station_draws[chosen, 1],
            "er_per_day": 0.5 + 2.5 * station_draws[chosen, 2],
        }
    )
    return pd.concat([hospitals, stations], ignore_index=True)


_AIR_PROFILES = {
    # PM2.5 base µg/m³, NO2 base, SO2 base
    "traffic": ((26, 34), 28.0, 6.0),
    "background": ((18, 24), 12.0, 5.0),
    "industrial": ((24, 30), 18.0, 16.0),
}


def _air_stations(rng: np.random.Generator, place: Placer) -> pd.DataFrame:
    """Air-quality stations with their pollution profile."""
    catalogue = names.AIR_STATIONS
    draws = rng.random((len(catalogue), 2))
    frame = place([old for _, old, _ in catalogue], 0.001)
    frame["station_id"] = [f"KK{i + 1:02d}" for i in range(len(catalogue))]
    frame["name"] = [entry[0] for entry in catalogue]
    profiles = [_AIR_PROFILES[entry[2]] for entry in catalogue]
    frame["pm25_base"] = [lo + (hi - lo) * d for ((lo, hi), _, _), d in zip(profiles, draws[:, 0], strict=True)]
    frame["pm10_ratio"] = 1.5 + 0.4 * draws[:, 1]
    frame["no2_base"] = [p[1] for p in profiles]
    frame["so2_base"] = [p[2] for p in profiles]
    return frame


def _gauges(place: Placer) -> pd.DataFrame:
    """River gauges with their alert levels, dry-season level, flood lag and tide."""
    catalogue = names.RIVER_GAUGES
    frame = place([entry[2] for entry in catalogue], 0.0005)
    columns = ["name", "river", "_old", "alert_level_1", "alert_level_2", "alert_level_3", "base", "lag_h", "tide"]
    details = pd.DataFrame(catalogue, columns=columns).drop(columns="_old")
    details.insert(0, "gauge_id", [f"TV{i + 1:02d}" for i in range(len(catalogue))])
    return pd.concat([details, frame], axis=1)


# --- sensor readings -----------------------------------------------------------------------------
Columns = dict[str, np.ndarray | list]


def _written(observed: np.ndarray, rng: np.random.Generator, now: int, written_at: int | None) -> np.ndarray:
    """updated_at of new readings: the write time, a minute or two after the observation."""
    if written_at is not None:
        return np.full(len(observed), written_at, dtype=np.int64)
    return np.minimum(observed + rng.integers(20, 180, len(observed)), now)


def traffic_readings(
    world: DemoWorld, times: np.ndarray, rng: np.random.Generator, now: int, written_at: int | None = None
) -> Columns:
    """Vehicles in the fine interval (2 minutes) ending at each time, and their mean speed, per segment."""
    seg = world.segments
    capacity = seg["capacity"].to_numpy() * (TRAFFIC_CADENCE.fine_s / TRAFFIC_CAPACITY_WINDOW_S)
    free_flow = seg["free_flow_kmh"].to_numpy()
    demand = _traffic_demand(_hour_of_day(times), _weekday(times // DAY)) * (
        1 + 0.06 * wobble(world.seed, "traffic", times)
    )
    load = demand[:, None] * seg["demand"].to_numpy()[None, :]
    counts = rng.poisson(load * capacity[None, :])
    ratio = counts / capacity[None, :]
    flood = np.clip(flood_intensity(world.seed, times), 0, 1)[:, None]
    noise = rng.normal(1.0, 0.05, counts.shape)
    speed = free_flow[None, :] / (1 + 0.55 * ratio**4) * (1 - 0.5 * flood) * noise
    speed = np.clip(speed, 3.0, free_flow[None, :] * 1.08).round(1)
    entity, codes = _readings_entities(seg, times)
    observed = np.repeat(times, len(seg))
    return {
        "segment_id": seg["segment_id"].to_numpy()[entity],
        "ward_code": codes,
        "observed_at": observed,
        "vehicle_count": counts.ravel(),
        "avg_speed_kmh": speed.ravel(),
        "free_flow_kmh": free_flow[entity],
        "updated_at": _written(observed, rng, now, written_at),
    }


_ER_PROFILE_RAW = 0.45 + 1.1 * _bump(np.arange(24) + 0.5, 9.5, 2.5) + 0.9 * _bump(np.arange(24) + 0.5, 19.5, 2.5)
_ER_PROFILE = _ER_PROFILE_RAW / _ER_PROFILE_RAW.mean()


def health_occupancy(
    world: DemoWorld, times: np.ndarray, rng: np.random.Generator, now: int, written_at: int | None = None
) -> Columns:
    """Beds, occupied beds and emergency arrivals of the hour ending at each time, per facility."""
    fac = world.facilities
    doy = _day_of_year(times)
    season = 0.5 * _season(doy, 288, 40) + 0.5 * _season(doy, 20, 35)
    weekend = (_weekday(times // DAY) >= 5).astype(float)
    wob = np.column_stack([wobble(world.seed, f"beds-{fid}", times) for fid in fac["facility_id"]])
    rate = (
        fac["occupancy"].to_numpy()[None, :]
        + (0.05 * season - 0.04 * weekend)[:, None]
        + 0.03 * wob
        + rng.normal(0, 0.01, wob.shape)
    )
    beds = fac["beds"].to_numpy()
    occupied = np.round(beds[None, :] * np.clip(rate, 0.03, 1.15)).astype(np.int64)
    hour = ((times - 1) % DAY) // HOUR
    visits = rng.poisson(fac["er_per_day"].to_numpy()[None, :] / 24 * _ER_PROFILE[hour][:, None])
    entity, codes = _readings_entities(fac, times)
    observed = np.repeat(times, len(fac))
    return {
        "facility_id": fac["facility_id"].to_numpy()[entity],
        "ward_code": codes,
        "observed_at": observed,
        "beds": beds[entity],
        "occupied_beds": occupied.ravel(),
        "emergency_visits": visits.ravel(),
        "updated_at": _written(observed, rng, now, written_at),
    }


def env_air_readings(
    world: DemoWorld, times: np.ndarray, rng: np.random.Generator, now: int, written_at: int | None = None
) -> Columns:
    """Hourly pollutant concentrations (µg/m³) per station, with -999 sentinels and a few NULLs."""
    st = world.air_stations
    shape = (len(times), len(st))
    hours = _hour_of_day(times)
    season = 1 + 0.3 * np.cos(2 * np.pi * (_day_of_year(times) - 20) / 365.25)
    diurnal = 1 + 0.25 * _bump(hours, 8, 1.5) + 0.35 * _bump(hours, 20.5, 2.0) - 0.2 * _bump(hours, 14, 2.5)
    washout = 1 - 0.45 * np.clip(flood_intensity(world.seed, times), 0, 1)
    traffic = _traffic_demand(hours, _weekday(times // DAY))
    weather = np.column_stack([wobble(world.seed, f"air-{sid}", times) for sid in st["station_id"]])
    episodes = np.column_stack([wobble(world.seed, f"smoke-{sid}", times) for sid in st["station_id"]])
    spike = np.exp(np.maximum(0, episodes - 1.7))
    pm25 = (
        st["pm25_base"].to_numpy()[None, :]
        * (season * diurnal * washout)[:, None]
        * np.exp(0.3 * weather)
        * spike
        * rng.lognormal(0, 0.12, shape)
    )
    pm10 = pm25 * st["pm10_ratio"].to_numpy()[None, :] * rng.lognormal(0, 0.08, shape)
    no2 = st["no2_base"].to_numpy()[None, :] * (0.5 + 0.8 * traffic)[:, None] * rng.lognormal(0, 0.15, shape)
    o3 = (20 + 55 * _bump(hours, 14, 2.5))[:, None] * np.exp(-0.15 * weather) * rng.lognormal(0, 0.15, shape)
    co = (350 + 700 * traffic)[:, None] * np.exp(0.2 * weather) * rng.lognormal(0, 0.15, shape)
    so2 = st["so2_base"].to_numpy()[None, :] * rng.lognormal(0, 0.25, shape)
    values = np.stack([v.ravel() for v in (pm25, pm10, no2, o3, co, so2)], axis=1).round(1)
    draw = rng.random(values.shape)
    values[draw < 0.005] = -999.0
    values[(draw >= 0.005) & (draw < 0.0058)] = np.nan
    entity, codes = _readings_entities(st, times)
    observed = np.repeat(times, len(st))
    columns: Columns = {"station_id": st["station_id"].to_numpy()[entity], "ward_code": codes, "observed_at": observed}
    for i, name in enumerate(("pm25", "pm10", "no2", "o3", "co", "so2")):
        columns[name] = values[:, i]
    columns["updated_at"] = _written(observed, rng, now, written_at)
    return columns


def env_river_levels(
    world: DemoWorld,
    times: np.ndarray,
    rng: np.random.Generator,
    now: int,
    written_at: int | None = None,
    first_interval_s: int = HOUR,
) -> Columns:
    """Water level (m) and rainfall during the interval ending at each time, per gauge."""
    gauges = world.gauges
    doy = _day_of_year(times)
    interval_h = np.diff(times, prepend=times[:1] - first_interval_s) / HOUR
    shower_chance = 0.03 + 0.15 * _season(doy, 300, 50)
    levels, rain = [], []
    for gauge in gauges.itertuples(index=False):
        shifted = times + int(gauge.lag_h * HOUR)
        crest = gauge.alert_level_3 + 1.0 - gauge.base
        level = (
            gauge.base
            + 0.25 * (gauge.alert_level_1 - gauge.base) * _season(doy, 305, 45)
            + crest * flood_intensity(world.seed, shifted)
            + gauge.tide * np.sin(2 * np.pi * times / (12.42 * HOUR))
            + rng.normal(0, 0.015, len(times))
        )
        showers = (rng.random(len(times)) < shower_chance) * rng.gamma(0.9, 2.5, len(times))
        levels.append(level.round(2))
        rain.append(((flood_rain(world.seed, shifted) + showers) * interval_h).round(1))
    entity, codes = _readings_entities(gauges, times)
    observed = np.repeat(times, len(gauges))
    return {
        "gauge_id": gauges["gauge_id"].to_numpy()[entity],
        "ward_code": codes,
        "observed_at": observed,
        "water_level_m": np.column_stack(levels).ravel(),
        "rainfall_mm": np.column_stack(rain).ravel(),
        "updated_at": _written(observed, rng, now, written_at),
    }


# --- case records --------------------------------------------------------------------------------
def arrivals(
    rng: np.random.Generator,
    start: int,
    end: int,
    daily_rate: Callable[[np.ndarray], np.ndarray],
    hourly: Sequence[float],
) -> np.ndarray:
    """Sorted event times in ``[start, end]``: Poisson counts per local day, spread by an hourly profile."""
    days = np.arange(start // DAY, end // DAY + 1, dtype=np.int64)
    counts = rng.poisson(np.maximum(daily_rate(days), 0))
    weights = np.asarray(hourly, dtype=float)
    total = int(counts.sum())
    times = (
        np.repeat(days, counts) * DAY
        + rng.choice(24, total, p=weights / weights.sum()) * HOUR
        + rng.integers(0, HOUR, total)
    )
    return np.sort(times[(times >= start) & (times <= end)])


def _days_since_2025(days: np.ndarray) -> np.ndarray:
    """Day numbers counted from 1 January 2025."""
    return days - to_seconds(datetime(2025, 1, 1)) // DAY


def _pick(rng: np.random.Generator, options: Sequence, n: int, weights: Sequence[float] | None = None) -> np.ndarray:
    """``n`` options drawn with the given relative weights (uniformly without them)."""
    p = None if weights is None else np.asarray(weights, dtype=float) / np.sum(weights)
    return np.asarray(options, dtype=object)[rng.choice(len(options), n, p=p)]


def _nullable(times: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``times`` where ``mask`` holds, NULL (``NEVER``) elsewhere."""
    return np.where(mask, times, NEVER)


def _places(rng: np.random.Generator, world: DemoWorld, ward_idx: np.ndarray, ward_names: np.ndarray) -> list[str]:
    """'đường Lê Lợi' where the ward has known streets, else a residential group or hamlet."""
    draws = rng.random(len(ward_idx)).tolist()
    groups = rng.integers(1, 20, len(ward_idx)).tolist()
    out = []
    for idx, ward, draw, group in zip(ward_idx.tolist(), ward_names, draws, groups, strict=True):
        streets = world.ward_streets[idx]
        if streets and draw < 0.75:
            out.append(f"đường {streets[int(draw / 0.75 * len(streets))]}")
        else:
            out.append(f"{'thôn' if ward.startswith('Xã') else 'tổ dân phố'} {group}, {names.unit_ward(ward)}")
    return out


FEEDBACK_SHARE = {
    "environment": 0.17,
    "traffic": 0.15,
    "urban_order": 0.17,
    "infrastructure": 0.20,
    "public_services": 0.08,
    "security": 0.08,
    "health": 0.05,
    "other": 0.10,
}
FEEDBACK_SLA_DAYS = {
    "environment": 5,
    "traffic": 5,
    "urban_order": 7,
    "infrastructure": 10,
    "public_services": 7,
    "security": 3,
    "health": 3,
    "other": 10,
}
FEEDBACK_CHANNELS = {"app": 0.40, "zalo": 0.25, "hotline": 0.20, "web": 0.15}
FEEDBACK_HOURLY = (1, 0.5, 0.3, 0.3, 0.4, 1, 3, 6, 8, 8, 7, 6, 5, 6, 7, 7, 6, 6, 6, 6, 5, 4, 3, 2)
RATING_ON_TIME = (0.03, 0.05, 0.15, 0.37, 0.40)
RATING_LATE = (0.20, 0.25, 0.30, 0.15, 0.10)


def feedback_daily_rate(days: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Reports per day: ~85 in January 2025, growing to ~220 on weekdays by late 2026."""
    growth = 85 + 135 * np.clip(_days_since_2025(days) / 690, 0, 1)
    weekday = _weekday(days)
    return scale * growth * np.select([weekday == 5, weekday == 6], [0.8, 0.7], 1.0)


def feedback_unit(category: str, ward_name: str, draw: float) -> str:
    """The agency a report of this category in this ward is assigned to."""
    options = names.FEEDBACK_UNITS[category]
    return options[int(draw * len(options))].format(ward=names.unit_ward(ward_name))


def rating_for(rng: np.random.Generator, late: np.ndarray) -> np.ndarray:
    """Citizen ratings 1-5, lower when the report was handled late."""
    on_time = rng.choice(5, len(late), p=RATING_ON_TIME) + 1
    late_rating = rng.choice(5, len(late), p=RATING_LATE) + 1
    return np.where(late, late_rating, on_time)


def feedback_reports(
    world: DemoWorld, times: np.ndarray, rng: np.random.Generator, now: int, written_at: int | None = None
) -> Columns:
    """Citizen reports created at ``times`` with the lifecycle they would have reached by ``now``."""
    n = len(times)
    categories = list(FEEDBACK_SHARE)
    category = _pick(rng, categories, n, list(FEEDBACK_SHARE.values()))
    ward_idx = world.choose_wards(rng, n, "feedback_weight")
    codes, ward_names, areas = world.ward_codes(ward_idx, times, rng)
    lat, lon = world.positions(ward_idx, rng)
    sla = np.array([FEEDBACK_SLA_DAYS[c] for c in category], dtype=np.int64) * DAY
    deadline = times + sla

    assign = times + (rng.lognormal(np.log(3 * HOUR), 0.8, n)).astype(np.int64)
    progress = assign + (rng.lognormal(np.log(10 * HOUR), 0.9, n)).astype(np.int64)
    close = np.maximum(times + (sla * rng.lognormal(np.log(0.5), 0.5, n)).astype(np.int64), progress + 30 * MINUTE)
    rejected = rng.random(n) < 0.06
    close = np.where(rejected, assign + rng.lognormal(np.log(20 * HOUR), 0.6, n).astype(np.int64), close)
    progress = np.where(rejected, NEVER, progress)
    close = np.where(rng.random(n) < 0.004, NEVER, close)  # forgotten reports stay open
    closed, in_progress, assigned = close <= now, progress <= now, assign <= now
    status = np.select(
        [closed & rejected, closed, in_progress, assigned],
        ["rejected", "resolved", "in_progress", "assigned"],
        "received",
    )
    updated = np.select([closed, in_progress, assigned], [close, progress, assign], times)
    rated = (status == "resolved") & (rng.random(n) < 0.5)
    ratings = rating_for(rng, close > deadline)

    templates = [names.FEEDBACK_TITLES[c] for c in category]
    template_draw = rng.random(n).tolist()
    places = _places(rng, world, ward_idx, ward_names)
    titles = [t[int(d * len(t))].format(place=p) for t, d, p in zip(templates, template_draw, places, strict=True)]
    unit_draw = rng.random(n).tolist()
    units = [
        None if s == "received" else feedback_unit(c, w, d)
        for s, c, w, d in zip(status, category, ward_names, unit_draw, strict=True)
    ]
    citizen, _female = names.person_names(rng, n)
    return {
        "ward_code": codes,
        "category": category,
        "title": titles,
        "lat": lat,
        "lon": lon,
        "status": status,
        "assigned_unit": units,
        "created_at": times,
        "deadline_at": deadline,
        "resolved_at": _nullable(close, closed),
        "rating": [int(r) if k else None for r, k in zip(ratings, rated, strict=True)],
        "citizen_name": citizen,
        "citizen_phone": names.phone_numbers(rng, n),
        "citizen_address": names.addresses(rng, areas, [world.ward_streets[i] for i in ward_idx], world.city),
        "channel": _pick(rng, list(FEEDBACK_CHANNELS), n, list(FEEDBACK_CHANNELS.values())),
        "updated_at": np.full(n, written_at, dtype=np.int64) if written_at is not None else updated,
    }


DOSSIER_BASE_PER_DAY = 315
ONLINE_HOURLY = (1, 0.5, 0.3, 0.3, 0.3, 0.8, 2, 4, 7, 8, 8, 7, 5, 6, 7, 7, 6, 5, 4, 4, 4, 3, 2, 1.5)
COUNTER_HOURLY = (0, 0, 0, 0, 0, 0, 0, 1, 4, 5, 5, 1.5, 0, 1.5, 5, 5, 4, 0, 0, 0, 0, 0, 0, 0)


def _dossier_rate(days: np.ndarray, scale: float, online: bool) -> np.ndarray:
    """Expected online or counter dossiers per day: busy weekdays, a Saturday morning, online Sundays."""
    weekday = _weekday(days)
    volume = np.select([weekday == 5, weekday == 6], [0.6, 0.3], 1.15)
    online_share = np.select([weekday == 5, weekday == 6], [0.8, 1.0], 0.55)
    share = online_share if online else 1 - online_share
    return scale * DOSSIER_BASE_PER_DAY * volume * share


def dossier_times(rng: np.random.Generator, start: int, end: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Receipt times in ``[start, end]`` and channels: online any time, counter in office hours."""
    online = arrivals(rng, start, end, lambda d: _dossier_rate(d, scale, True), ONLINE_HOURLY)
    counter = arrivals(rng, start, end, lambda d: _dossier_rate(d, scale, False), COUNTER_HOURLY)
    times = np.concatenate([online, counter])
    channel = np.concatenate(
        [np.full(len(online), "online", dtype=object), np.full(len(counter), "counter", dtype=object)]
    )
    order = np.argsort(times, kind="stable")
    return times[order], channel[order]


def dossiers(
    world: DemoWorld,
    times: np.ndarray,
    channel: np.ndarray,
    rng: np.random.Generator,
    now: int,
    written_at: int | None = None,
    numbered_from: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> Columns:
    """Administrative dossiers received at ``times``; ``numbered_from(codes, days)`` gives sequence offsets."""
    n = len(times)
    procedure = rng.choice(len(names.PROCEDURES), n, p=[p[3] for p in names.PROCEDURES])
    days_allowed = np.array([p[2] for p in names.PROCEDURES], dtype=np.int64)[procedure]
    ward_idx = world.choose_wards(rng, n, "population")
    codes, _names, _areas = world.ward_codes(ward_idx, times, rng)
    due = times + days_allowed * DAY
    close = times + (days_allowed * DAY * rng.lognormal(np.log(0.5), 0.45, n)).astype(np.int64)
    returned = rng.random(n) < 0.03
    close = np.where(returned, times + (days_allowed * DAY * rng.uniform(0.2, 0.9, n)).astype(np.int64), close)
    close = np.where(rng.random(n) < 0.003, NEVER, close)  # stuck in processing
    closed = close <= now
    status = np.where(closed, np.where(returned, "returned", "resolved"), "processing")

    day = times // DAY
    sequence = pd.Series(np.arange(n)).groupby([codes, day]).cumcount().to_numpy() + 1
    if numbered_from is not None:
        sequence = sequence + numbered_from(codes, day)
    stamps = (day.astype("datetime64[D]")).astype(str)
    numbers = [
        f"{code}-{stamp[2:4]}{stamp[5:7]}{stamp[8:10]}-{seq:04d}"
        for code, stamp, seq in zip(codes, stamps, sequence.tolist(), strict=True)
    ]
    applicant, female = names.person_names(rng, n)
    birth_years = _year(times) - rng.integers(18, 81, n)
    return {
        "dossier_no": numbers,
        "procedure_code": [names.PROCEDURES[i][0] for i in procedure],
        "procedure_name": [names.PROCEDURES[i][1] for i in procedure],
        "ward_code": codes,
        "channel": channel,
        "status": status,
        "received_at": times,
        "due_at": due,
        "resolved_at": _nullable(close, closed),
        "applicant_name": applicant,
        "applicant_phone": names.phone_numbers(rng, n),
        "applicant_id_number": names.id_numbers(rng, birth_years, female),
        "updated_at": np.full(n, written_at, dtype=np.int64)
        if written_at is not None
        else np.where(closed, close, times),
    }


CASE_HOURLY = (0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 2, 4, 6, 6, 6, 5, 4, 5, 5, 5, 4, 3, 2, 2, 1.5, 1, 1, 0.5)


def _case_rates(disease: str, days: np.ndarray, scale: float) -> np.ndarray:
    """Expected cases per day: dengue peaks in autumn, hand-foot-mouth in spring and autumn, flu in winter."""
    doy = _day_of_year(days * DAY)
    if disease == "dengue":
        rate = 1.2 * (0.25 + 2.8 * _season(doy, 275, 45))
    elif disease == "hand_foot_mouth":
        rate = 0.6 * (0.4 + 1.5 * _season(doy, 110, 30) + 1.8 * _season(doy, 293, 35))
    else:
        rate = 1.0 * (0.4 + 2.0 * _season(doy, 20, 40))
    return scale * rate


DISEASES = ("dengue", "hand_foot_mouth", "influenza")


def case_times(rng: np.random.Generator, start: int, end: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Report times in ``[start, end]`` and diseases, each with its own season."""
    parts = [
        arrivals(rng, start, end, lambda d, name=name: _case_rates(name, d, scale), CASE_HOURLY) for name in DISEASES
    ]
    times = np.concatenate(parts)
    disease = np.concatenate([np.full(len(p), name, dtype=object) for p, name in zip(parts, DISEASES, strict=True)])
    order = np.argsort(times, kind="stable")
    return times[order], disease[order]


def health_cases(
    world: DemoWorld,
    times: np.ndarray,
    disease: np.ndarray,
    rng: np.random.Generator,
    now: int,
    written_at: int | None = None,
) -> Columns:
    """Notifiable disease cases with the patient's (synthetic) identity."""
    n = len(times)
    ward_idx = world.choose_wards(rng, n, "population")
    codes, _names, areas = world.ward_codes(ward_idx, times, rng)
    fac = world.facilities
    hospitals = fac[fac["kind"] == "hospital"]
    hospital = _pick(rng, hospitals["facility_id"].tolist(), n, hospitals["beds"].tolist())
    stations = fac[fac["kind"] == "station"]
    station_of = dict(zip(stations["ward_code"], stations["facility_id"], strict=True))
    ward_station = np.array([station_of.get(c, "") for c in world.wards["code"].to_numpy()[ward_idx]], dtype=object)
    use_station = (rng.random(n) < 0.45) & (ward_station != "")
    facility = np.where(use_station, ward_station, hospital)
    age = np.select(
        [disease == "hand_foot_mouth", disease == "dengue"],
        [rng.integers(0, 6, n), np.clip(5 + rng.gamma(2.5, 10, n), 1, 85).astype(int)],
        np.clip(rng.choice([4, 30, 70], n, p=[0.5, 0.3, 0.2]) + rng.integers(-4, 15, n), 0, 95),
    )
    patient, female = names.person_names(rng, n)
    updated = np.minimum(times + rng.integers(20 * MINUTE, 4 * HOUR, n), now)
    return {
        "disease": disease,
        "ward_code": codes,
        "facility_id": facility,
        "reported_at": times,
        "patient_name": patient,
        "patient_phone": names.phone_numbers(rng, n),
        "patient_id_number": names.id_numbers(rng, _year(times) - age, female),
        "patient_address": names.addresses(rng, areas, [world.ward_streets[i] for i in ward_idx], world.city),
        "age": age,
        "updated_at": np.full(n, written_at, dtype=np.int64) if written_at is not None else updated,
    }


ACCIDENT_HOURLY = (1, 0.8, 0.5, 0.4, 0.5, 1, 2, 4, 4, 2.5, 2, 2.5, 3, 2.5, 2, 2.5, 3.5, 4.5, 4, 3, 3, 2.5, 2, 1.5)
BREAKDOWN_HOURLY = (0.5, 0.3, 0.3, 0.3, 0.5, 1, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2.5, 2, 1.5, 1, 1, 0.5)
INCIDENT_MINUTES = {"accident": 90, "breakdown": 60, "flooding": 600}
"""Typical time from report to cleared (log-normal around it)."""
ACCIDENTS_PER_DAY = 8.0
BREAKDOWNS_PER_DAY = 20.0


def incident_times(
    rng: np.random.Generator, seed: int, start: int, end: int, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Report times in ``[start, end]`` and kinds; flooding follows the autumn floods."""
    accidents = arrivals(rng, start, end, lambda d: np.full(len(d), ACCIDENTS_PER_DAY * scale), ACCIDENT_HOURLY)
    breakdowns = arrivals(rng, start, end, lambda d: np.full(len(d), BREAKDOWNS_PER_DAY * scale), BREAKDOWN_HOURLY)
    candidates = arrivals(rng, start, end, lambda d: np.full(len(d), 12.0 * scale), [1] * 24)
    chance = 0.9 * np.clip(flood_intensity(seed, candidates), 0, 1) + 0.004
    floods = candidates[rng.random(len(candidates)) < chance]
    times = np.concatenate([accidents, breakdowns, floods])
    kinds = np.concatenate(
        [
            np.full(len(t), k, dtype=object)
            for t, k in ((accidents, "accident"), (breakdowns, "breakdown"), (floods, "flooding"))
        ]
    )
    order = np.argsort(times, kind="stable")
    return times[order], kinds[order]


def road_label(segment_name: str) -> str:
    """'Đường Lê Lợi' -> 'đường Lê Lợi', for use inside a sentence."""
    for word in ("Đường", "Cầu"):
        if segment_name.startswith(word + " "):
            return word.lower() + segment_name[len(word) :]
    return segment_name


def traffic_incidents(
    world: DemoWorld,
    times: np.ndarray,
    kinds: np.ndarray,
    rng: np.random.Generator,
    now: int,
    written_at: int | None = None,
) -> Columns:
    """Accidents, breakdowns and flooded roads on the segments, cleared after a while."""
    n = len(times)
    seg = world.segments
    weights = (seg["capacity"] * seg["demand"]).to_numpy()
    which = rng.choice(len(seg), n, p=weights / weights.sum())
    codes = np.where(times < REFORM_S, seg["old_code"].to_numpy()[which], seg["ward_code"].to_numpy()[which])
    lat, lon = world.shapes.pull_inside(
        world.ward_index(seg["ward_code"].to_numpy()[which]),
        seg["lat"].to_numpy()[which] + rng.normal(0, 0.002, n),
        seg["lon"].to_numpy()[which] + rng.normal(0, 0.002, n),
    )
    typical = np.array([INCIDENT_MINUTES[k] for k in kinds], dtype=float) * MINUTE
    cleared = times + (typical * rng.lognormal(0, 0.5, n)).astype(np.int64)
    done = cleared <= now
    draws = rng.random(n).tolist()
    descriptions = [
        names.INCIDENT_DESCRIPTIONS[k][int(d * len(names.INCIDENT_DESCRIPTIONS[k]))].format(road=road_label(s))
        for k, d, s in zip(kinds, draws, seg["name"].to_numpy()[which], strict=True)
    ]
    reporter, _female = names.person_names(rng, n)
    phones = names.phone_numbers(rng, n)
    anonymous = (rng.random(n) < 0.3).tolist()
    return {
        "kind": kinds,
        "ward_code": codes,
        "lat": lat,
        "lon": lon,
        "description": descriptions,
        "status": np.where(done, "cleared", "open"),
        "reported_at": times,
        "cleared_at": _nullable(cleared, done),
        "reporter_name": [None if a else r for r, a in zip(reporter, anonymous, strict=True)],
        "reporter_phone": [None if a else p for p, a in zip(phones, anonymous, strict=True)],
        "updated_at": np.full(n, written_at, dtype=np.int64)
        if written_at is not None
        else np.where(done, cleared, times),
    }


# --- entity tables -------------------------------------------------------------------------------
def entity_tables(world: DemoWorld) -> dict[Table, Columns]:
    """Rows of the tables that describe wards and entities rather than events."""
    w, seg, fac, air, gauges = world.wards, world.segments, world.facilities, world.air_stations, world.gauges

    def cols(frame: pd.DataFrame, names_: Sequence[str]) -> Columns:
        """The named columns of ``frame``."""
        return {name: frame[name].to_numpy() for name in names_}

    return {
        schema.ward_population: {
            "ward_code": w["code"].to_numpy(),
            "population": w["population"].to_numpy(),
            "source": np.full(len(w), "synthetic demo population (not official)", dtype=object),
        },
        schema.traffic_segments: cols(
            seg, ["segment_id", "name", "ward_code", "lat", "lon", "length_m", "free_flow_kmh"]
        ),
        schema.health_facilities: cols(fac, ["facility_id", "name", "kind", "ward_code", "lat", "lon", "beds"]),
        schema.env_air_stations: cols(air, ["station_id", "name", "ward_code", "lat", "lon"]),
        schema.env_river_gauges: cols(
            gauges,
            ["gauge_id", "name", "river", "ward_code", "lat", "lon", "alert_level_1", "alert_level_2", "alert_level_3"],
        ),
        schema.dossier_procedures: {
            "procedure_code": [p[0] for p in names.PROCEDURES],
            "procedure_name": [p[1] for p in names.PROCEDURES],
            "field": [names.PROCEDURE_FIELDS.get(p[0]) or names.PROCEDURE_FIELDS[p[0][:2]] for p in names.PROCEDURES],
            "days_allowed": [p[2] for p in names.PROCEDURES],
        },
    }


# --- writing -------------------------------------------------------------------------------------
def _timestamp_strings(seconds: np.ndarray) -> list[str | None]:
    """'YYYY-MM-DD HH:MM:SS.ffffff', the text SQLAlchemy itself stores on SQLite; NULL for NEVER."""
    values, inverse = np.unique(seconds, return_inverse=True)  # readings share few distinct times
    known = values < NEVER
    strings = np.datetime_as_string(values[known].astype("datetime64[s]").astype("datetime64[us]"), unit="us")
    characters = strings.view(np.uint32).reshape(len(strings), strings.dtype.itemsize // 4)
    characters[:, 10] = ord(" ")  # the ISO 'T' separator
    text_values = np.full(len(values), None, dtype=object)
    text_values[known] = strings
    return text_values[inverse].tolist()


def _db_values(values: np.ndarray | list, is_timestamp: bool) -> list:
    """Python values the DBAPI accepts; NaN becomes NULL."""
    if is_timestamp:
        return _timestamp_strings(np.asarray(values, dtype=np.int64))
    if isinstance(values, list):
        return values
    out = values.tolist()
    if values.dtype.kind == "f" and np.isnan(values).any():
        out = [None if v != v else v for v in out]
    return out


def write_rows(conn: Connection, table: Table, columns: Mapping[str, np.ndarray | list]) -> int:
    """Append rows given as columns in bulk: ``executemany`` on SQLite, ``COPY`` on PostgreSQL.

    Timestamp columns are int64 local seconds (``NEVER`` for NULL). Returns the number of rows.
    """
    dialect = conn.dialect.name
    if dialect not in ("sqlite", "postgresql"):
        raise NotImplementedError(f"bulk writes support sqlite and postgresql, not {dialect}")
    quote = conn.dialect.identifier_preparer.quote
    column_list = ", ".join(quote(name) for name in columns)
    timestamp = {name: isinstance(table.c[name].type, DateTime) for name in columns}
    total = len(next(iter(columns.values())))
    driver = conn.connection.driver_connection
    for low in range(0, total, CHUNK_ROWS):
        values = [_db_values(col[low : low + CHUNK_ROWS], timestamp[name]) for name, col in columns.items()]
        rows = list(zip(*values, strict=True))
        if dialect == "sqlite":
            marks = ", ".join("?" for _ in columns)
            driver.executemany(f"INSERT INTO {quote(table.name)} ({column_list}) VALUES ({marks})", rows)
        else:
            with driver.cursor() as cursor, cursor.copy(f"COPY {quote(table.name)} ({column_list}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
    return total


def _create_tables(conn: Connection) -> None:
    """Drop and recreate the demo tables, without their indexes (built after the bulk load)."""
    schema.metadata.drop_all(conn)
    for table in schema.metadata.sorted_tables:
        conn.execute(CreateTable(table))


def _finish(conn: Connection) -> None:
    """Build the indexes and refresh the planner statistics."""
    for table in schema.metadata.sorted_tables:
        for index in sorted(table.indexes, key=lambda ix: ix.name or ""):
            index.create(conn)
    conn.execute(text("ANALYZE"))
    conn.commit()


# --- entry points --------------------------------------------------------------------------------
def generate_warehouse(
    url: str,
    *,
    now: datetime,
    province_code: str = "46",
    seed: int = DEFAULT_SEED,
    start: date = date(2025, 1, 1),
    scale: float = 1.0,
    progress: bool = False,
) -> dict[str, int]:
    """(Re)create the demo tables at ``url`` and fill them from ``start`` up to ``now``; rows per table.

    Existing demo tables are dropped first. ``scale`` multiplies event volumes (and thins the road
    segments and health stations below 1); the same seed, ``now`` and scale give identical rows.
    """
    now_s = to_seconds(now)
    start_s = to_seconds(datetime.combine(start, daytime()))
    world = build_world(province_code, seed, scale)

    def readings(builder: Callable[..., Columns], cadence: Cadence, table: Table) -> Callable[[], Columns]:
        """A step building a sensor table's whole history."""
        return lambda: builder(world, cadence.times(start_s, now_s), stream(seed, table.name), now_s)

    def incidents() -> Columns:
        """Traffic incidents since ``start``."""
        rng = stream(seed, schema.traffic_incidents.name)
        times, kinds = incident_times(rng, seed, start_s, now_s, scale)
        return traffic_incidents(world, times, kinds, rng, now_s)

    def cases() -> Columns:
        """Disease cases since ``start``."""
        rng = stream(seed, schema.health_cases.name)
        times, disease = case_times(rng, start_s, now_s, scale)
        return health_cases(world, times, disease, rng, now_s)

    def dossier_rows() -> Columns:
        """Dossiers since ``start``."""
        rng = stream(seed, schema.dossiers.name)
        times, channel = dossier_times(rng, start_s, now_s, scale)
        return dossiers(world, times, channel, rng, now_s)

    def feedback() -> Columns:
        """Feedback reports since ``start``."""
        rng = stream(seed, schema.feedback_reports.name)
        times = arrivals(rng, start_s, now_s, lambda d: feedback_daily_rate(d, scale), FEEDBACK_HOURLY)
        return feedback_reports(world, times, rng, now_s)

    steps: list[tuple[Table, Callable[[], Columns]]] = [
        *((table, lambda c=columns: c) for table, columns in entity_tables(world).items()),
        (schema.traffic_readings, readings(traffic_readings, TRAFFIC_CADENCE, schema.traffic_readings)),
        (schema.health_occupancy, readings(health_occupancy, OCCUPANCY_CADENCE, schema.health_occupancy)),
        (schema.env_air_readings, readings(env_air_readings, AIR_CADENCE, schema.env_air_readings)),
        (schema.env_river_levels, readings(env_river_levels, RIVER_CADENCE, schema.env_river_levels)),
        (schema.traffic_incidents, incidents),
        (schema.health_cases, cases),
        (schema.dossiers, dossier_rows),
        (schema.feedback_reports, feedback),
    ]
    engine = create_warehouse_engine(url)
    counts: dict[str, int] = {}
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_LOAD_CACHE_KIB}")
            _create_tables(conn)
            conn.commit()
            bar = tqdm(steps, desc="demo warehouse", unit="table", disable=not progress)
            for table, build in bar:
                bar.set_postfix_str(table.name)
                counts[table.name] = write_rows(conn, table, build())
                conn.commit()
            _finish(conn)
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
    return counts


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m data_sources.demo.generate --url sqlite:///var/warehouse.db``: build a demo warehouse."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--url", default="sqlite:///var/warehouse.db")
    parser.add_argument("--province", default="46")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2025, 1, 1))
    parser.add_argument("--now", type=datetime.fromisoformat, default=None, help="ISO time, local if naive")
    args = parser.parse_args(argv)
    now = args.now or system_clock()
    if now.tzinfo is None:
        now = now.replace(tzinfo=LOCAL_TZ)
    began = walltime.perf_counter()
    counts = generate_warehouse(
        args.url,
        now=now,
        province_code=args.province,
        seed=args.seed,
        start=args.start,
        scale=args.scale,
        progress=True,
    )
    for table, rows in counts.items():
        print(f"{table:20s} {rows:>10,d}")
    print(f"{'total':20s} {sum(counts.values()):>10,d} rows in {walltime.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
