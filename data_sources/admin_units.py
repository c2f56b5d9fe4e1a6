"""Two-level administrative units (since 1 July 2025) and the crosswalk from pre-2025 wards.

Built from the ``vietnamadminunits`` package (MIT): its SQLite database holds the 34-province
units with official codes, centroids and areas, the 63-province (pre-2025) units with their codes,
and its JSON conversion tables say which old wards each new ward absorbed.
"""

from __future__ import annotations

import json
import sqlite3
import unicodedata
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

import pandas as pd
import vietnamadminunits

REFORM_DATE = date(2025, 7, 1)
"""Day the two-level local government (province, commune/ward) took effect."""

_PACKAGE_DATA = Path(vietnamadminunits.__file__).parent / "data"

UNIT_TYPES_EN = {"Phường": "Ward", "Xã": "Commune", "Đặc khu": "Special zone"}


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
    return frame


def current_units(province_code: str) -> pd.DataFrame:
    """Communes/wards of the province today: code, name, name_en, short_name, type, lat, lon, area_km2."""
    return _current_units(province_code).copy()


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
                "merge_kind": merge,
            }
        )
    return pd.DataFrame(rows)


def legacy_units(province_code: str) -> pd.DataFrame:
    """Crosswalk of pre-2025 wards: old_code, old_name, old_district, lat, lon, new_code, new_codes, merge_kind.

    ``merge_kind`` is ``whole`` when the old ward went entirely into one new ward, ``partial`` when it was
    split; ``new_code`` is then the package's default new ward (see docs/admin-units.md).
    """
    return _legacy_units(province_code).copy()


def crosswalk(province_code: str) -> dict[str, str]:
    """Map every known code (current or pre-2025) of the province onto a current ward code."""
    mapping = {code: code for code in _current_units(province_code)["code"]}
    legacy = _legacy_units(province_code)
    for old_code, new_code in zip(legacy["old_code"], legacy["new_code"], strict=True):
        mapping.setdefault(old_code, new_code)
    return mapping
