"""Two-level administrative units (since 1 July 2025) and the crosswalk from pre-2025 wards.

Built from the ``vietnamadminunits`` package (MIT): its SQLite database holds the 34-province
units with official codes, centroids and areas, the 63-province (pre-2025) units with their codes,
and its JSON conversion tables say which old wards each new ward absorbed.

Old wards that went whole into one new ward map onto it. An old ward split across several new ones
(``merge_kind == "partial"``; Hà Nội has 199, Huế and Bắc Ninh none) cannot be divided row by row,
so its data is attributed to one of them by a configurable rule (docs/configuration.md,
``split_rule`` and ``split_overrides``): ``default`` (the package's default new ward, the one the
conversion tables name first for the old ward), ``nearest`` (the new ward whose centroid is nearest
the old ward's centroid), and per-ward overrides that a province decides.

A code can mean two different wards on either side of the reform (Hà Nội reuses nine old codes for
other new wards): ``crosswalk`` reads codes as today's scheme first, ``pre_reform_crosswalk`` reads
them as the pre-2025 scheme, and ``map_to_current`` picks per row by its date.
"""

from __future__ import annotations

import json
import sqlite3
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import vietnamadminunits

REFORM_DATE = date(2025, 7, 1)
"""Day the two-level local government (province, commune/ward) took effect."""

_PACKAGE_DATA = Path(vietnamadminunits.__file__).parent / "data"

REFORM_EPOCH = int((datetime.combine(REFORM_DATE, datetime.min.time()) - datetime(1970, 1, 1)).total_seconds())
"""00:00 on 1 July 2025, local wall time, as epoch seconds (how snapshot buckets are stamped)."""

UNIT_TYPES_EN = {"Phường": "Ward", "Xã": "Commune", "Đặc khu": "Special zone"}
UNIT_TYPE_KEYS = {"Phường": "ward", "Xã": "commune", "Đặc khu": "special_zone"}
"""Unit type -> catalogue suffix (``unit_type.<suffix>``), so the interface translates it."""

SPLIT_RULES = ("default", "nearest")
"""How the data of an old ward split across several new wards is attributed (see the module docstring)."""

CURRENT = "current"
PRE_2025 = "pre_2025"
UNKNOWN = "unknown"
CODE_STATUSES = (CURRENT, PRE_2025, UNKNOWN)
"""What a unit code found in data is: a ward today, a pre-2025 ward of the province, or neither."""


def ascii_name(name: str) -> str:
    """Strip Vietnamese diacritics: 'Phường Vỹ Dạ' -> 'Phuong Vy Da'."""
    name = name.replace("Đ", "D").replace("đ", "d")
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _query(sql: str, params: tuple = ()) -> pd.DataFrame:
    with sqlite3.connect(_PACKAGE_DATA / "dataset.db") as conn:
        return pd.read_sql_query(sql, conn, params=params)


@cache
def _conversion_tables() -> dict:
    with open(_PACKAGE_DATA / "converter_2025.json", encoding="utf-8") as handle:
        return json.load(handle)


@dataclass(frozen=True)
class Province:
    """A province after the 2025 reform."""

    code: str
    name: str
    key: str
    lat: float
    lon: float


@cache
def province(code: str) -> Province:
    """The current province with this two-digit official code; ``KeyError`` if there is none."""
    frame = _query(
        "SELECT DISTINCT provinceCode, province, provinceKey, provinceLat, provinceLon "
        "FROM admin_units WHERE provinceCode = ?",
        (code,),
    )
    if frame.empty:
        raise KeyError(f"no province with code {code!r} in the 2025 unit list")
    row = frame.iloc[0]
    return Province(row.provinceCode, row.province, row.provinceKey, row.provinceLat, row.provinceLon)


@cache
def _current_units(province_code: str) -> pd.DataFrame:
    frame = _query(
        "SELECT wardCode AS code, ward AS name, wardShort AS short_name, wardType AS type, "
        "wardKey AS key, wardLat AS lat, wardLon AS lon, wardAreaKm2 AS area_km2 "
        "FROM admin_units WHERE provinceCode = ? ORDER BY wardCode",
        (province_code,),
    )
    frame["name_en"] = [
        f"{ascii_name(short)} {UNIT_TYPES_EN.get(kind, kind)}"
        for short, kind in zip(frame["short_name"], frame["type"], strict=True)
    ]
    frame["type_en"] = frame["type"].map(UNIT_TYPES_EN).fillna(frame["type"])
    frame["type_key"] = frame["type"].map(UNIT_TYPE_KEYS).fillna("other")
    return frame


def current_units(province_code: str) -> pd.DataFrame:
    """Communes/wards of the province today: code, name, name_en, short_name, type, type_en, type_key, lat, lon,
    area_km2."""
    return _current_units(province_code).copy()


def unit_registry(province_code: str, population: pd.Series | None = None) -> pd.DataFrame:
    """The province's current units with their population where the deployment supplies one.

    Columns of ``current_units`` plus ``population`` (float, NaN where not supplied). ``population`` is
    indexed by current ward code (``data_sources.population.load_population``); where it came from
    (official census, or the demo's synthetic figures) is the deployment's to say, not this registry's.
    """
    units = current_units(province_code)
    values = population.reindex(units["code"]) if population is not None else None
    units["population"] = values.to_numpy(dtype="float64") if values is not None else float("nan")
    return units


@cache
def _legacy_units(province_code: str) -> pd.DataFrame:
    """Pre-2025 wards that now belong to the province, with the new ward each maps onto."""
    current = _current_units(province_code)
    new_province_key = province(province_code).key
    tables = _conversion_tables()
    old_province_keys = tables["DICT_PROVINCE"][new_province_key]
    new_code_by_key = dict(zip(current["key"], current["code"], strict=True))

    whole: dict[str, str] = {}
    for new_key, old_keys in tables["DICT_PROVINCE_WARD_NO_DIVIDED"][new_province_key].items():
        for old_key in old_keys:
            whole[old_key] = new_key
    divided = tables["DICT_PROVINCE_WARD_DIVIDED"].get(new_province_key, {})

    placeholders = ",".join("?" for _ in old_province_keys)
    legacy = _query(
        "SELECT wardCode AS old_code, ward AS old_name, district AS old_district, province AS old_province, "
        "provinceKey, districtKey, wardKey, wardLat AS lat, wardLon AS lon "
        f"FROM admin_units_legacy WHERE provinceKey IN ({placeholders}) ORDER BY wardCode",
        tuple(old_province_keys),
    )
    rows = []
    for record in legacy.itertuples(index=False):
        full_key = f"{record.provinceKey}_{record.districtKey}_{record.wardKey}"
        if full_key in whole:
            candidates = [new_code_by_key[whole[full_key]]]
            default = candidates[0]
            merge = "whole"
        elif full_key in divided:
            parts = divided[full_key]
            candidates = [new_code_by_key[p["newWardKey"]] for p in parts]
            default = next(new_code_by_key[p["newWardKey"]] for p in parts if p["isDefaultNewWard"])
            merge = "partial"
        else:
            continue
        rows.append(
            {
                "old_code": record.old_code,
                "old_name": record.old_name,
                "old_district": record.old_district,
                "old_province": record.old_province,
                "lat": record.lat,
                "lon": record.lon,
                "new_code": default,
                "new_codes": tuple(candidates),
                "default_code": default,
                "merge_kind": merge,
            }
        )
    return pd.DataFrame(rows)


def _nearest(old_lat: float, old_lon: float, candidates: tuple[str, ...], units: pd.DataFrame) -> str:
    """The candidate new ward whose centroid is nearest the old ward's centroid (equirectangular metres)."""
    places = units.set_index("code").loc[list(candidates), ["lat", "lon"]]
    scale = np.cos(np.radians(old_lat))
    distance = np.hypot(places["lat"] - old_lat, (places["lon"] - old_lon) * scale)
    return str(distance.idxmin())


def validate_split_overrides(province_code: str, overrides: Mapping[str, str]) -> list[str]:
    """Problems with per-ward split overrides (empty when they are all usable).

    Each key must be an old ward of the province that was split, each value one of the new wards it
    was split into.
    """
    legacy = _legacy_units(province_code).set_index("old_code")
    problems = []
    for old_code, new_code in sorted(overrides.items()):
        if old_code not in legacy.index:
            problems.append(f"{old_code} is not a pre-2025 ward of province {province_code}")
        elif legacy.at[old_code, "merge_kind"] != "partial":
            problems.append(f"{old_code} ({legacy.at[old_code, 'old_name']}) was not split; it maps whole")
        elif new_code not in legacy.at[old_code, "new_codes"]:
            allowed = ", ".join(legacy.at[old_code, "new_codes"])
            problems.append(f"{old_code} was split into {allowed}, not {new_code}")
    return problems


def legacy_units(
    province_code: str, *, split_rule: str = "default", overrides: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Crosswalk of pre-2025 wards: old_code, old_name, old_district, old_province, lat, lon, new_code, new_codes,
    default_code, merge_kind.

    ``merge_kind`` is ``whole`` when the old ward went entirely into one new ward, ``partial`` when it was
    split; ``new_codes`` lists every new ward it went into, ``default_code`` is the package's default new
    ward, and ``new_code`` the one its data is attributed to under ``split_rule`` and ``overrides``.
    Raises ``ValueError`` for an unknown rule or an unusable override.
    """
    if split_rule not in SPLIT_RULES:
        raise ValueError(f"unknown split rule {split_rule!r}; expected one of {', '.join(SPLIT_RULES)}")
    overrides = dict(overrides or {})
    problems = validate_split_overrides(province_code, overrides)
    if problems:
        raise ValueError("; ".join(problems))
    legacy = _legacy_units(province_code).copy()
    if split_rule == "nearest" and not legacy.empty:
        units = _current_units(province_code)
        partial = legacy["merge_kind"] == "partial"
        legacy.loc[partial, "new_code"] = [
            _nearest(lat, lon, codes, units)
            for lat, lon, codes in zip(
                legacy.loc[partial, "lat"], legacy.loc[partial, "lon"], legacy.loc[partial, "new_codes"], strict=True
            )
        ]
    if overrides:
        chosen = legacy["old_code"].map(overrides)
        legacy["new_code"] = chosen.fillna(legacy["new_code"])
    return legacy


def split_wards(province_code: str, **rule: object) -> pd.DataFrame:
    """The old wards that were split across several new ones (``legacy_units`` rows with merge_kind partial)."""
    legacy = legacy_units(province_code, **rule)  # type: ignore[arg-type]
    return legacy.loc[legacy["merge_kind"] == "partial"].reset_index(drop=True)


def pre_reform_crosswalk(
    province_code: str, *, split_rule: str = "default", overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Codes read as the pre-2025 scheme (rows dated before 1 July 2025) -> the current ward they belong to.

    Old codes map through the crosswalk; a current code that no old ward had (a unit created by the
    reform, recorded under its new code) maps to itself.
    """
    legacy = legacy_units(province_code, split_rule=split_rule, overrides=overrides)
    mapping = dict(zip(legacy["old_code"], legacy["new_code"], strict=True)) if not legacy.empty else {}
    for code in _current_units(province_code)["code"]:
        mapping.setdefault(code, code)
    return mapping


class Crosswalk(dict):
    """Code -> current ward, plus ``pre_reform``: what the codes that changed meaning in 2025 meant
    before 1 July 2025 (empty for provinces without such codes, such as Huế and Bắc Ninh)."""

    def __init__(self, mapping: Mapping[str, str], pre_reform: Mapping[str, str] | None = None) -> None:
        super().__init__(mapping)
        self.pre_reform = dict(pre_reform or {})


def crosswalk(
    province_code: str, *, split_rule: str = "default", overrides: Mapping[str, str] | None = None
) -> Crosswalk:
    """Map every known code (current or pre-2025) of the province onto a current ward code.

    A code that is both a current ward and an old one means the current ward here (today's scheme);
    its pre-reform meaning is kept in ``pre_reform`` so rows dated before the reform are read by
    date wherever rollups meet the crosswalk (``data_sources.kpis.with_wards``).
    """
    mapping = {code: code for code in _current_units(province_code)["code"]}
    before = pre_reform_crosswalk(province_code, split_rule=split_rule, overrides=overrides)
    for old_code, new_code in before.items():
        mapping.setdefault(old_code, new_code)
    changed = {code: ward for code, ward in before.items() if mapping.get(code, ward) != ward}
    return Crosswalk(mapping, changed)


def ambiguous_codes(province_code: str) -> list[str]:
    """Codes that name one ward before the reform and another after it (data must be read by date)."""
    return sorted(crosswalk(province_code).pre_reform)


def map_to_current(
    codes: pd.Series,
    buckets: pd.Series | None,
    current: Mapping[str, str],
    pre_reform: Mapping[str, str],
) -> pd.Series:
    """The current ward of each row: rows whose bucket (epoch seconds of local wall time) is before
    1 July 2025 read their code as the pre-2025 scheme, later rows as today's. Unknown codes give NA."""
    codes = codes.astype("string")
    after = codes.map(current).astype("string")
    if buckets is None:
        return after
    before = codes.map(pre_reform).astype("string")
    return before.where(buckets.to_numpy() < REFORM_EPOCH, after)


def classify_codes(province_code: str, codes: Iterable[object]) -> pd.Series:
    """Status of each distinct code: ``current``, ``pre_2025`` (an old ward of the province) or ``unknown``.

    Indexed by the code as text (stripped); blanks and NULLs are ``unknown``. A code that is both a
    current ward and an old one is ``current``. Data health counts the ``unknown`` ones.
    """
    current = set(_current_units(province_code)["code"])
    legacy = set(_legacy_units(province_code)["old_code"]) if not _legacy_units(province_code).empty else set()
    distinct = pd.Series(list(codes), dtype="object").astype("string").str.strip().fillna("").unique()
    status = {
        code: CURRENT if code in current else PRE_2025 if code in legacy else UNKNOWN for code in sorted(distinct)
    }
    return pd.Series(status, dtype="object", name="status")


def classify_code(province_code: str, code: object) -> str:
    """``current``, ``pre_2025`` or ``unknown`` for one code (see ``classify_codes``)."""
    return str(classify_codes(province_code, [code]).iloc[0])
