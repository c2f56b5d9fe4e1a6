"""Ward boundaries: the official 2025 files load, match the registry, simplify to a clean light coverage.

The official ward files live outside the repository, in ``../shared/data/boundaries`` (override with
``IOC_SHARED_DIR``); these tests fail, not skip, when that folder is missing.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

import geopandas
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import CRS

from data_sources.admin_units import current_units
from data_sources.geo import (
    WardLayer,
    approximate_wards,
    compact_json,
    load_boundaries,
    match_codes,
    prepare_ward_layer,
    province_outline,
    simplify_coverage,
    ward_geojson,
)

PROVINCES = {"46": ("46_hue", 40), "24": ("24_bac_ninh", 99)}
TOLERANCE_M = 60
MAX_SHIFT_M = 150
HUE_LAYER_LIMIT = 160 * 1024

Approximate = tuple[pd.DataFrame, geopandas.GeoDataFrame, np.ndarray]


def shared_dir() -> Path:
    """The shared folder beside the repository, or ``IOC_SHARED_DIR``."""
    return Path(os.environ.get("IOC_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))


@pytest.fixture(scope="module")
def boundaries_root() -> Path:
    root = shared_dir() / "data" / "boundaries"
    if not root.is_dir():
        pytest.fail(f"official ward boundaries not found at {root}; set IOC_SHARED_DIR to the shared folder")
    return root


@cache
def official_wards(root: Path, province: str) -> dict:
    """Registry units, loaded official wards and their simplified coverage for one province (computed once)."""
    folder, expected = PROVINCES[province]
    loaded = load_boundaries(root / folder / "wards")
    return {
        "expected": expected,
        "units": current_units(province),
        "loaded": loaded,
        "simplified": simplify_coverage(loaded, TOLERANCE_M),
        "metric": loaded.estimate_utm_crs(),
    }


@pytest.fixture(scope="module", params=sorted(PROVINCES), ids=lambda code: PROVINCES[code][0])
def official(request: pytest.FixtureRequest, boundaries_root: Path) -> dict:
    return official_wards(boundaries_root, request.param)


def metric_geometries(frame: geopandas.GeoDataFrame, crs: CRS) -> np.ndarray:
    """The frame's geometries in a metric CRS."""
    return frame.to_crs(crs).geometry.to_numpy()


def neighbour_overlap_areas(geometries: np.ndarray) -> np.ndarray:
    """Area of the intersection of every pair of touching polygons."""
    left, right = shapely.STRtree(geometries).query(geometries, predicate="intersects")
    pairs = left < right
    return shapely.area(shapely.intersection(geometries[left[pairs]], geometries[right[pairs]]))


def square(x: float, y: float, size: float = 0.01) -> shapely.Polygon:
    return shapely.box(x, y, x + size, y + size)


def write_wards(folder: Path, wards: list[tuple[str, shapely.Geometry]]) -> None:
    """One GeoJSON file per ward, like the official layout."""
    for index, (code, shape) in enumerate(wards):
        frame = geopandas.GeoDataFrame({"code": [code], "name": [f"Ward {code}"]}, geometry=[shape], crs=4326)
        frame.to_file(folder / f"{index}_{code}.geojson", driver="GeoJSON")


# --- official boundaries --------------------------------------------------------------------------


class TestOfficialBoundaries:
    def test_every_current_unit_has_exactly_one_shape_and_none_is_unknown(self, official: dict) -> None:
        report = match_codes(official["loaded"], official["units"])
        assert len(report["matched"]) == official["expected"]
        assert report["missing_in_boundaries"] == []
        assert report["unknown_in_registry"] == []

    def test_codes_load_as_zero_padded_strings_in_wgs84(self, official: dict) -> None:
        loaded = official["loaded"]
        assert list(loaded.columns) == ["code", "name", "geometry"]
        assert loaded.crs.to_epsg() == 4326
        assert all(isinstance(code, str) and len(code) == 5 for code in loaded["code"])
        assert not loaded["code"].duplicated().any()

    def test_every_simplified_ward_is_valid(self, official: dict) -> None:
        simplified = official["simplified"].geometry.to_numpy()
        assert shapely.is_valid(simplified).all()
        assert not shapely.is_empty(simplified).any()

    def test_every_simplified_ward_stays_within_150_m_of_its_outline(self, official: dict) -> None:
        original = metric_geometries(official["loaded"], official["metric"])
        simplified = metric_geometries(official["simplified"], official["metric"])
        shift = shapely.hausdorff_distance(original, simplified)
        assert shift.max() <= MAX_SHIFT_M, dict(zip(official["loaded"]["code"], shift.round(), strict=True))

    def test_simplified_coverage_has_no_gaps_or_overlaps(self, official: dict) -> None:
        original = metric_geometries(official["loaded"], official["metric"])
        simplified = metric_geometries(official["simplified"], official["metric"])
        assert shapely.coverage_is_valid(simplified, gap_width=1.0)
        union_area = shapely.union_all(simplified).area
        assert union_area == pytest.approx(shapely.area(simplified).sum(), rel=1e-9)
        assert union_area == pytest.approx(shapely.union_all(original).area, rel=1e-3)
        assert neighbour_overlap_areas(simplified).max() < 1.0  # m²

    def test_simplification_cuts_vertices_at_least_fivefold(self, official: dict) -> None:
        before = shapely.get_num_coordinates(official["loaded"].geometry.to_numpy()).sum()
        after = shapely.get_num_coordinates(official["simplified"].geometry.to_numpy()).sum()
        assert after * 5 < before

    def test_province_outline_is_the_union_of_the_wards(self, official: dict) -> None:
        simplified = official["simplified"].geometry.to_numpy()
        outline = province_outline(official["simplified"])
        assert outline.area == pytest.approx(shapely.area(simplified).sum(), rel=1e-6)
        assert shapely.covers(outline, simplified).all()


def test_hue_layer_as_sent_is_under_160_kb(boundaries_root: Path) -> None:
    hue = official_wards(boundaries_root, "46")
    sent = json.dumps(ward_geojson(hue["simplified"]), separators=(",", ":"))
    assert len(sent) < HUE_LAYER_LIMIT


# --- GeoJSON for the browser ----------------------------------------------------------------------


def test_ward_geojson_is_compact_rounded_and_wound_for_d3() -> None:
    wards = geopandas.GeoDataFrame(
        {"code": ["00001", "00002"], "name": ["Một", "Hai"], "extra": [1, 2]},
        geometry=[square(107.123456789, 16.1), square(107.133456789, 16.1)],
        crs=4326,
    )
    geojson = ward_geojson(wards, precision=5)
    assert "bbox" not in geojson
    first = geojson["features"][0]
    assert first["id"] == "00001"
    assert first["properties"] == {"code": "00001", "name": "Một"}
    assert "bbox" not in first
    ring = np.asarray(first["geometry"]["coordinates"][0])
    assert np.array_equal(ring, np.round(ring, 5))
    assert not shapely.is_ccw(shapely.LinearRing(ring))  # d3-geo wants clockwise exterior rings
    numbers = compact_json(geojson).split('"coordinates":')[1]
    decimals = [len(token.split(".")[1].rstrip("]},")) for token in numbers.split(",") if "." in token]
    assert max(decimals) <= 5


def test_ward_geojson_keeps_neighbours_touching_after_rounding() -> None:
    wards = geopandas.GeoDataFrame(
        {"code": ["1", "2"]}, geometry=[square(107.123456789, 16.1), square(107.133456789, 16.1)], crs=4326
    )
    shapes = [shapely.geometry.shape(f["geometry"]) for f in ward_geojson(wards)["features"]]
    assert shapely.coverage_is_valid(np.array(shapes))
    assert shapes[0].intersection(shapes[1]).length > 0


# --- approximate wards ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hue_approximate() -> Approximate:
    """Huế's registry, its approximate wards, and those in metres."""
    units = current_units("46")
    wards = approximate_wards(units)
    return units, wards, metric_geometries(wards, wards.estimate_utm_crs())


class TestApproximateWards:
    def test_gives_one_valid_polygon_per_unit(self, hue_approximate: Approximate) -> None:
        units, wards, geometries = hue_approximate
        assert len(wards) == 40
        assert sorted(wards["code"]) == sorted(units["code"])
        assert shapely.is_valid(geometries).all()
        assert set(shapely.get_type_id(geometries)) <= {3, 6}  # Polygon, MultiPolygon

    def test_is_flagged_approximate_in_wgs84(self, hue_approximate: Approximate) -> None:
        _, wards, _ = hue_approximate
        assert wards["approximate"].all()
        assert wards.crs.to_epsg() == 4326

    def test_cells_do_not_overlap(self, hue_approximate: Approximate) -> None:
        _, _, geometries = hue_approximate
        assert shapely.coverage_is_valid(geometries)
        assert neighbour_overlap_areas(geometries).max() < 1.0

    def test_each_centroid_lies_inside_its_own_cell(self, hue_approximate: Approximate) -> None:
        units, wards, _ = hue_approximate
        assert shapely.contains_xy(wards.geometry.to_numpy(), units["lon"], units["lat"]).all()

    def test_total_area_matches_the_registry(self, hue_approximate: Approximate) -> None:
        units, _, geometries = hue_approximate
        assert shapely.area(geometries).sum() / 1e6 == pytest.approx(units["area_km2"].sum(), rel=0.05)

    def test_most_cells_come_close_to_their_stated_area(self, hue_approximate: Approximate) -> None:
        units, _, geometries = hue_approximate
        ratio = shapely.area(geometries) / (units["area_km2"].to_numpy() * 1e6)
        assert np.median(np.abs(np.log(ratio))) < 0.1

    def test_rejects_units_sharing_a_centroid(self) -> None:
        units = current_units("46").head(3)
        units.loc[units.index[1], ["lat", "lon"]] = units.loc[units.index[0], ["lat", "lon"]].to_numpy()
        with pytest.raises(ValueError, match="share a centroid"):
            approximate_wards(units)


def test_layer_without_a_boundary_file_is_approximate_and_complete() -> None:
    units = current_units("46")
    layer = prepare_ward_layer(units, None)
    assert isinstance(layer, WardLayer)
    assert layer.approximate is True
    assert sorted(layer.codes) == sorted(units["code"])
    assert layer.report["missing_in_boundaries"] == []
    names = {f["id"]: f["properties"]["name"] for f in layer.geojson["features"]}
    assert names == dict(zip(units["code"], units["name"], strict=True))


# --- loading errors and code matching -------------------------------------------------------------


def test_empty_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"no boundary files .* in folder {tmp_path}"):
        load_boundaries(tmp_path)


def test_repeated_codes_are_a_clear_error(tmp_path: Path) -> None:
    write_wards(tmp_path, [("00101", square(106.0, 21.0)), ("00101", square(106.01, 21.0))])
    with pytest.raises(ValueError, match=f"codes repeat in {tmp_path}: 00101"):
        load_boundaries(tmp_path)


def test_missing_code_field_is_a_clear_error(tmp_path: Path) -> None:
    write_wards(tmp_path, [("00101", square(106.0, 21.0))])
    with pytest.raises(ValueError, match="no field 'ma_xa'"):
        load_boundaries(tmp_path, code_field="ma_xa")


def test_single_file_loads_with_zero_padded_codes(tmp_path: Path) -> None:
    frame = geopandas.GeoDataFrame(
        {"code": ["00101", "00102"], "name": ["A", "B"]},
        geometry=[square(106.0, 21.0), square(106.01, 21.0)],
        crs=4326,
    ).to_crs(32648)
    frame.to_file(tmp_path / "wards.gpkg", driver="GPKG")
    loaded = load_boundaries(tmp_path / "wards.gpkg")
    assert list(loaded["code"]) == ["00101", "00102"]
    assert loaded.crs.to_epsg() == 4326
    assert shapely.hausdorff_distance(loaded.geometry.iloc[0], square(106.0, 21.0)) < 1e-7


def test_match_codes_reports_a_dropped_shape_as_missing(official: dict) -> None:
    dropped = official["loaded"]["code"].iloc[0]
    report = match_codes(official["loaded"].iloc[1:], official["units"])
    assert report["missing_in_boundaries"] == [dropped]
    assert dropped not in report["matched"]
    assert report["unknown_in_registry"] == []


def test_match_codes_reports_shapes_not_in_the_registry() -> None:
    units = current_units("46")
    shapes = pd.DataFrame({"code": [*units["code"], "99999"]})
    report = match_codes(shapes, units)
    assert report["unknown_in_registry"] == ["99999"]
    assert len(report["matched"]) == 40


def test_unknown_shapes_are_reported_not_drawn(tmp_path: Path) -> None:
    units = pd.DataFrame({"code": ["00101"], "name": ["Phường Một"]})
    write_wards(tmp_path, [("00101", square(106.0, 21.0)), ("99999", square(106.01, 21.0))])
    layer = prepare_ward_layer(units, tmp_path)
    assert layer.codes == ("00101",)
    assert layer.report["unknown_in_registry"] == ["99999"]
    assert layer.geojson["features"][0]["properties"]["name"] == "Phường Một"


def test_simplify_keeps_every_ward_even_when_the_input_overlaps(caplog: pytest.LogCaptureFixture) -> None:
    wards = geopandas.GeoDataFrame({"code": ["1", "2"]}, geometry=[square(106.0, 21.0), square(106.0, 21.0)], crs=4326)
    with caplog.at_level("WARNING", logger="data_sources.geo"):
        simplified = simplify_coverage(wards, TOLERANCE_M)
    assert "coverage_simplify" in caplog.text
    assert list(simplified["code"]) == ["1", "2"]
    assert not shapely.is_empty(simplified.geometry.to_numpy()).any()


# --- the layer as the app builds it: one file of any kind, a folder, and the on-disk cache ---------


class TestOfficialLayer:
    def test_hue_folder_layer_as_sent_matches_every_code_and_is_under_160_kb(self, boundaries_root: Path) -> None:
        units = current_units("46")
        layer = prepare_ward_layer(units, boundaries_root / "46_hue" / "wards")
        assert layer.approximate is False
        assert sorted(layer.codes) == sorted(units["code"])
        assert layer.report["missing_in_boundaries"] == [] and layer.report["unknown_in_registry"] == []
        assert layer.size_bytes == len(compact_json(layer.geojson)) < HUE_LAYER_LIMIT

    def test_bac_ninh_folder_layer_matches_all_99_codes(self, boundaries_root: Path) -> None:
        units = current_units("24")
        layer = prepare_ward_layer(units, boundaries_root / "24_bac_ninh" / "wards")
        assert sorted(layer.codes) == sorted(units["code"]) and len(layer.codes) == 99

    @pytest.mark.parametrize(("name", "driver", "crs"), [("wards.gpkg", "GPKG", 4326), ("wards.shp", None, 32648)])
    def test_one_geopackage_or_shapefile_round_trips_the_official_wards(
        self, boundaries_root: Path, tmp_path: Path, name: str, driver: str | None, crs: int
    ) -> None:
        hue = official_wards(boundaries_root, "46")
        written = hue["loaded"].to_crs(crs)
        written.to_file(tmp_path / name, **({"driver": driver} if driver else {}))
        if name.endswith(".shp"):
            assert {p.suffix for p in tmp_path.iterdir()} >= {".shp", ".dbf", ".prj", ".shx"}
        loaded = load_boundaries(tmp_path / name)
        assert list(loaded["code"]) == list(hue["loaded"]["code"])
        assert loaded.crs.to_epsg() == 4326
        # the same shapes, whatever the container, CRS, ring orientation or single-part Polygon/MultiPolygon
        before = metric_geometries(hue["loaded"], hue["metric"])
        after = metric_geometries(loaded, hue["metric"])
        assert (shapely.get_num_coordinates(after) == shapely.get_num_coordinates(before)).all()
        assert shapely.area(shapely.symmetric_difference(after, before)).max() < 1.0  # m²
        layer = prepare_ward_layer(hue["units"], tmp_path / name)
        assert len(layer.codes) == 40 and layer.size_bytes < HUE_LAYER_LIMIT
        shapes = np.array([shapely.geometry.shape(f["geometry"]) for f in layer.geojson["features"]])
        assert shapely.is_valid(shapes).all()

    def test_a_shape_missing_from_the_file_is_reported_and_logged(
        self, boundaries_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        hue = official_wards(boundaries_root, "46")
        hue["loaded"].iloc[1:].to_file(tmp_path / "wards.gpkg", driver="GPKG")
        with caplog.at_level("WARNING", logger="data_sources.geo"):
            layer = prepare_ward_layer(hue["units"], tmp_path / "wards.gpkg")
        dropped = hue["loaded"]["code"].iloc[0]
        assert layer.report["missing_in_boundaries"] == [dropped]
        assert dropped not in layer.codes and len(layer.codes) == 39
        assert f"1 unit(s) without a shape ['{dropped}']" in caplog.text


class TestBoundaryCache:
    def test_second_start_reads_the_cached_layer_keyed_by_input_and_tolerance(
        self, boundaries_root: Path, tmp_path: Path
    ) -> None:
        units = current_units("46")
        source = tmp_path / "wards"
        source.mkdir()
        for file in sorted((boundaries_root / "46_hue" / "wards").iterdir())[:6]:
            (source / file.name).write_bytes(file.read_bytes())
        cache = tmp_path / "cache"
        first = prepare_ward_layer(units, source, cache_dir=cache)
        assert first.cached is False and len(list(cache.glob("wards-*.geojson"))) == 1
        second = prepare_ward_layer(units, source, cache_dir=cache)
        assert second.cached is True
        assert second.geojson == first.geojson and second.report == first.report
        coarser = prepare_ward_layer(units, source, cache_dir=cache, tolerance_m=120)
        assert coarser.cached is False and len(list(cache.glob("wards-*.geojson"))) == 2
        # a changed input file is a new key: the old entry is not served
        changed = sorted(source.iterdir())[0]
        frame = geopandas.read_file(changed)
        frame = frame.set_geometry(frame.geometry.to_crs(32648).buffer(-50).to_crs(4326))
        changed.unlink()
        frame.to_file(changed, driver="GeoJSON")
        assert prepare_ward_layer(units, source, cache_dir=cache).cached is False

    def test_a_corrupt_cache_entry_is_ignored_and_rewritten(self, tmp_path: Path) -> None:
        units = pd.DataFrame({"code": ["00101"], "name": ["Phường Một"]})
        write_wards(
            tmp_path / "in" if (tmp_path / "in").mkdir() is None else tmp_path, [("00101", square(106.0, 21.0))]
        )
        cache = tmp_path / "cache"
        prepare_ward_layer(units, tmp_path / "in", cache_dir=cache)
        entry = next(cache.glob("wards-*.geojson"))
        entry.write_text("{not json", encoding="utf-8")
        layer = prepare_ward_layer(units, tmp_path / "in", cache_dir=cache)
        assert layer.cached is False and layer.codes == ("00101",)
        assert prepare_ward_layer(units, tmp_path / "in", cache_dir=cache).cached is True
