"""Ward boundaries for choropleth maps: load, match to the unit registry, simplify, approximate, export.

A deployment points ``prepare_ward_layer`` at its boundary data (one file, or a folder with one file per
ward such as the official 2025 ward files). Without boundary data, ``approximate_wards`` draws stand-in
polygons from the registry's centroids and areas alone; they are approximate (right neighbours, roughly
right sizes, invented edges) and flagged as such so the interface can say so.

Coverage rules: neighbouring wards must keep shared edges through every step. Simplification therefore
works on the shared edges (arcs) of the whole coverage, never ward by ward, and the GeoJSON sent to the
browser has exterior rings wound clockwise, the convention of d3-geo (Plotly's ``go.Choropleth``);
MapLibre-based ``choropleth_map`` accepts either winding.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas
import numpy as np
import pandas as pd
import shapely

logger = logging.getLogger(__name__)

WGS84 = "EPSG:4326"
BOUNDARY_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp")
"""File types read when a boundary folder is configured."""

_OUTLINE_QUAD_SEGS = 8
_SNAP_GRID_M = 0.01
_POWER_MARGIN = 0.9
_AREA_SAMPLES = 20_000
_WEIGHT_ITERATIONS = 25
_CANDIDATE_SITES = 16


# --- loading and matching -------------------------------------------------------------------------


def load_boundaries(path: str | Path, *, code_field: str = "code") -> geopandas.GeoDataFrame:
    """Ward polygons from one file or a folder of files: columns code (str), name (if present), geometry.

    Codes keep their zero-padding as stored; the result is in EPSG:4326. Raises ``ValueError`` naming the
    path when a folder holds no boundary file, a file lacks ``code_field`` or a CRS, or codes repeat.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"boundary path {path} does not exist")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in BOUNDARY_SUFFIXES)
        if not files:
            raise ValueError(f"no boundary files ({', '.join(BOUNDARY_SUFFIXES)}) in folder {path}")
    else:
        files = [path]
    parts = [_read_boundary_file(file, code_field) for file in files]
    frame = geopandas.GeoDataFrame(
        pd.concat([part for part, _ in parts], ignore_index=True),
        geometry=np.concatenate([geometry for _, geometry in parts]),
        crs=WGS84,
    )
    repeated = sorted(frame.loc[frame["code"].duplicated(), "code"].unique())
    if repeated:
        shown = ", ".join(repeated[:10]) + (" ..." if len(repeated) > 10 else "")
        raise ValueError(f"boundary codes repeat in {path}: {shown}")
    return frame


def _read_boundary_file(file: Path, code_field: str) -> tuple[pd.DataFrame, np.ndarray]:
    """One file's attributes (code, name if present) and valid polygonal geometry in WGS84."""
    raw = geopandas.read_file(file)
    if code_field not in raw.columns:
        fields = ", ".join(c for c in raw.columns if c != raw.geometry.name) or "none"
        raise ValueError(f"{file}: no field {code_field!r} to take ward codes from (fields: {fields})")
    if raw.crs is None:
        raise ValueError(f"{file}: no coordinate reference system (a Shapefile needs its .prj)")
    if raw[code_field].isna().any():
        raise ValueError(f"{file}: {int(raw[code_field].isna().sum())} feature(s) without a {code_field!r}")
    kinds = set(raw.geometry.geom_type.dropna())
    if not kinds <= {"Polygon", "MultiPolygon"}:
        raise ValueError(f"{file}: ward boundaries must be polygons, found {', '.join(sorted(kinds))}")
    codes = raw[code_field]
    if pd.api.types.is_float_dtype(codes):  # a numeric field read as float: 7210.0 -> "7210"
        codes = codes.astype("Int64")
    attributes = pd.DataFrame({"code": codes.astype(str).str.strip()})
    if "name" in raw.columns:
        attributes["name"] = raw["name"].astype(str)
    geometry = raw.geometry if raw.crs.to_epsg() == 4326 else raw.geometry.to_crs(WGS84)
    geometry = geometry.to_numpy()
    invalid = ~shapely.is_valid(geometry)
    if invalid.any():
        geometry[invalid] = shapely.make_valid(geometry[invalid], method="structure", keep_collapsed=False)
    return attributes, geometry


def match_codes(boundaries: pd.DataFrame, units: pd.DataFrame) -> dict[str, list[str]]:
    """Join shapes to registry units on the code: matched, missing_in_boundaries, unknown_in_registry."""
    shapes = set(boundaries["code"].astype(str))
    registry = set(units["code"].astype(str))
    return {
        "matched": sorted(shapes & registry),
        "missing_in_boundaries": sorted(registry - shapes),
        "unknown_in_registry": sorted(shapes - registry),
    }


# --- coverage simplification ----------------------------------------------------------------------


def simplify_coverage(gdf: geopandas.GeoDataFrame, tolerance_m: float) -> geopandas.GeoDataFrame:
    """Simplify all wards together so shared edges stay shared; no ward moves more than ``tolerance_m``.

    The coverage is split into arcs (edges between junctions, each shared by at most two wards); each
    arc is simplified once with topology-preserving Douglas-Peucker, which bounds the Hausdorff distance
    by the tolerance, and wards are rebuilt from the simplified arcs. This keeps ~half the vertices of
    GEOS's area-based ``coverage_simplify`` at the same worst-case displacement. If the input coverage
    is too irregular to rebuild every ward, it falls back to ``shapely.coverage_simplify``. Geographic
    input is simplified in its UTM zone; a projected CRS is taken to be in metres.
    """
    if gdf.crs is None:
        raise ValueError("boundaries have no CRS; cannot simplify in metres")
    result = gdf.copy()
    if tolerance_m <= 0 or gdf.empty:
        return result
    metric = gdf.estimate_utm_crs() if gdf.crs.is_geographic else gdf.crs
    original = gdf.geometry.to_crs(metric).to_numpy()
    simplified = _simplify_arcs(original, tolerance_m)
    if simplified is None:
        logger.warning("arc simplification could not rebuild every ward; using shapely.coverage_simplify")
        simplified = shapely.coverage_simplify(original, tolerance_m)
    result[gdf.geometry.name] = geopandas.GeoSeries(simplified, index=gdf.index, crs=metric).to_crs(gdf.crs)
    return result


def _simplify_arcs(polygons: np.ndarray, tolerance: float) -> np.ndarray | None:
    """Douglas-Peucker on the shared arcs, faces reassigned to wards; ``None`` if a ward got no face."""
    arcs = shapely.line_merge(shapely.union_all(shapely.boundary(polygons)))
    simplified = shapely.simplify(arcs, tolerance, preserve_topology=True)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(simplified).tolist()))
    owner = _face_owners(faces, polygons, tolerance)
    kept = owner >= 0
    if set(owner[kept]) != set(range(len(polygons))):
        return None
    out = np.array([shapely.coverage_union_all(faces[owner == i]) for i in range(len(polygons))])
    if not (shapely.is_valid(out).all() and shapely.coverage_is_valid(out)):
        return None
    return out


def _face_owners(faces: np.ndarray, polygons: np.ndarray, tolerance: float) -> np.ndarray:
    """Index of the original polygon each simplified face belongs to, -1 for holes in the coverage.

    Edges moved at most ``tolerance``, so a point deeper than that inside a face lies in the face's
    ward; shallow faces go to the ward they overlap most, or to none if that is under half the face.
    """
    tree = shapely.STRtree(polygons)
    owner = np.full(len(faces), -1)
    probes = shapely.point_on_surface(faces)
    deep = np.flatnonzero(shapely.distance(probes, shapely.boundary(faces)) > tolerance)
    probe_idx, ward_idx = tree.query(probes[deep], predicate="within")
    owner[deep[probe_idx]] = ward_idx
    shallow = np.setdiff1d(np.arange(len(faces)), deep)
    face_idx, ward_idx = tree.query(faces[shallow], predicate="intersects")
    overlap = shapely.area(shapely.intersection(faces[shallow][face_idx], polygons[ward_idx]))
    pairs = pd.DataFrame({"face": shallow[face_idx], "ward": ward_idx, "overlap": overlap})
    best = pairs.sort_values("overlap").drop_duplicates("face", keep="last")
    best = best[best["overlap"] >= 0.5 * shapely.area(faces[best["face"].to_numpy()])]
    owner[best["face"].to_numpy()] = best["ward"].to_numpy()
    return owner


# --- approximate wards from centroids and areas ---------------------------------------------------


def approximate_wards(units: pd.DataFrame) -> geopandas.GeoDataFrame:
    """Stand-in ward polygons from the registry's centroids (lat, lon) and areas (area_km2) only.

    APPROXIMATE: for demos without a boundary file. The province outline is the union of discs around
    the centroids, grown until its area equals the registry's total and closed into one blob per land
    mass; wards are the cells of a power (weighted Voronoi) diagram of the centroids clipped to it, with
    weights fitted so each cell's area approaches its stated area. Every centroid stays inside its own
    cell and the cells form a clean coverage. Columns: code, name, approximate (True), geometry.
    """
    if units.empty:
        raise ValueError("no units to approximate")
    repeated = units[units.duplicated(["lat", "lon"], keep=False)]
    if not repeated.empty:
        raise ValueError(f"units share a centroid, cannot separate them: {', '.join(repeated['code'])}")
    points = geopandas.GeoSeries.from_xy(units["lon"], units["lat"], crs=WGS84)
    metric = points.estimate_utm_crs()
    sites = shapely.get_coordinates(points.to_crs(metric).to_numpy())
    areas = _usable_areas(units["area_km2"].to_numpy(dtype=float) * 1e6)
    outline = _approximate_outline(sites, np.sqrt(areas / np.pi), areas.sum())
    if len(sites) == 1:
        cells = np.array([outline])
    else:
        weights = _fit_power_weights(sites, areas * outline.area / areas.sum(), outline)
        cells = _power_coverage(sites, weights, outline)
    frame = {"code": units["code"].astype(str).to_numpy()}
    if "name" in units.columns:
        frame["name"] = units["name"].to_numpy()
    result = geopandas.GeoDataFrame(frame, geometry=cells, crs=metric).to_crs(WGS84)
    result["approximate"] = True
    return result


def _usable_areas(areas: np.ndarray) -> np.ndarray:
    """Areas in m²; a missing or non-positive one takes the median of the others (1 km² if none)."""
    known = areas[np.isfinite(areas) & (areas > 0)]
    fill = float(np.median(known)) if known.size else 1e6
    return np.where(np.isfinite(areas) & (areas > 0), areas, fill)


def _approximate_outline(sites: np.ndarray, radii: np.ndarray, target_area: float) -> shapely.Geometry:
    """Closed, hole-free union of discs around the sites, scaled by bisection to ``target_area``."""
    closing = float(np.median(radii))

    def outline(scale: float) -> shapely.Geometry:
        discs = shapely.buffer(shapely.points(sites), scale * radii, quad_segs=_OUTLINE_QUAD_SEGS)
        closed = shapely.union_all(discs).buffer(closing, _OUTLINE_QUAD_SEGS).buffer(-closing, _OUTLINE_QUAD_SEGS)
        shells = shapely.polygons(shapely.get_exterior_ring(shapely.get_parts(closed)))
        return shapely.union_all(shells)

    low, high = 0.5, 3.0
    for _ in range(16):
        middle = (low + high) / 2
        if outline(middle).area > target_area:
            high = middle
        else:
            low = middle
    return outline((low + high) / 2)


def _fit_power_weights(sites: np.ndarray, targets: np.ndarray, outline: shapely.Geometry) -> np.ndarray:
    """Power-diagram weights (m²) that bring cell areas towards ``targets``, estimated on a point grid.

    Every pair keeps w_j - w_i <= 0.9·d_ij², so each site stays strictly inside its own cell.
    """
    x0, y0, x1, y1 = outline.bounds
    step = np.sqrt(outline.area / _AREA_SAMPLES)
    gx, gy = np.meshgrid(np.arange(x0 + step / 2, x1, step), np.arange(y0 + step / 2, y1, step))
    inside = shapely.contains_xy(outline, gx.ravel(), gy.ravel())
    samples = np.column_stack([gx.ravel()[inside], gy.ravel()[inside]])
    squared = ((samples[:, None, :] - sites[None, :, :]) ** 2).sum(axis=2)
    k = min(_CANDIDATE_SITES, len(sites))
    candidates = np.argpartition(squared, k - 1, axis=1)[:, :k]
    candidate_sq = np.take_along_axis(squared, candidates, axis=1)
    sample_area = outline.area / len(samples)
    slack = _POWER_MARGIN * ((sites[:, None, :] - sites[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(slack, np.inf)
    weights = np.zeros(len(sites))
    for _ in range(_WEIGHT_ITERATIONS):
        owner = candidates[np.arange(len(samples)), np.argmin(candidate_sq - weights[candidates], axis=1)]
        step_by_site = (targets - np.bincount(owner, minlength=len(sites)) * sample_area) / np.pi
        for i, change in enumerate(step_by_site):
            low, high = (weights - slack[i]).max(), (weights + slack[i]).min()
            weights[i] = min(max(weights[i] + change, low), high)
    return weights


def _power_cell(index: int, sites: np.ndarray, weights: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Vertices of one (convex) power cell inside ``box``, by clipping with each bisecting half-plane."""
    normals = 2 * (sites - sites[index])
    offsets = (sites**2).sum(axis=1) - sites[index] @ sites[index] - weights + weights[index]
    order = np.argsort((normals**2).sum(axis=1))[1:]
    polygon = box
    for j in order:
        side = polygon @ normals[j] - offsets[j]
        if (side <= 0).all():
            continue
        kept = []
        for k in range(len(polygon)):
            nxt = (k + 1) % len(polygon)
            if side[k] <= 0:
                kept.append(polygon[k])
            if (side[k] <= 0) != (side[nxt] <= 0):
                kept.append(polygon[k] + side[k] / (side[k] - side[nxt]) * (polygon[nxt] - polygon[k]))
        polygon = np.array(kept)
    return polygon


def _power_coverage(sites: np.ndarray, weights: np.ndarray, outline: shapely.Geometry) -> np.ndarray:
    """Power cells clipped to the outline as an exact coverage (shared edges noded once, then polygonized)."""
    x0, y0, x1, y1 = shapely.buffer(outline, 1000).bounds
    box = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    rings = [shapely.linearrings(_power_cell(i, sites, weights, box)) for i in range(len(sites))]
    linework = shapely.union_all([*rings, outline.boundary], grid_size=_SNAP_GRID_M)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(linework).tolist()))
    probes = shapely.get_coordinates(shapely.point_on_surface(faces))
    faces = faces[shapely.contains_xy(outline, probes[:, 0], probes[:, 1])]
    probes = shapely.get_coordinates(shapely.point_on_surface(faces))
    power = ((probes[:, None, :] - sites[None, :, :]) ** 2).sum(axis=2) - weights
    owner = np.argmin(power, axis=1)
    return np.array([shapely.coverage_union_all(faces[owner == i]) for i in range(len(sites))])


# --- export ---------------------------------------------------------------------------------------


def ward_geojson(gdf: geopandas.GeoDataFrame, *, precision: int = 5) -> dict[str, Any]:
    """Compact FeatureCollection for Plotly: id = code, properties code and name, rounded, clockwise shells.

    ``precision`` is decimals of a degree (5 ≈ 1.1 m). Rounding snaps each ward separately but shared
    vertices round alike, so neighbours still meet. No bbox, no other properties.
    """
    geometry = gdf.to_crs(WGS84).geometry.to_numpy()
    rounded = shapely.set_precision(geometry, 10.0**-precision)
    rounded = shapely.transform(rounded, lambda xy: np.round(xy, precision))
    rounded = shapely.orient_polygons(rounded, exterior_cw=True)
    codes = gdf["code"].astype(str).tolist()
    if "name" in gdf.columns:
        properties = [{"code": c, "name": n} for c, n in zip(codes, gdf["name"].astype(str), strict=True)]
    else:
        properties = [{"code": c} for c in codes]
    features = [
        {"type": "Feature", "id": p["code"], "properties": p, "geometry": shapely.geometry.mapping(shape)}
        for p, shape in zip(properties, rounded, strict=True)
    ]
    return {"type": "FeatureCollection", "features": features}


def province_outline(gdf: geopandas.GeoDataFrame) -> shapely.Geometry:
    """The union of all wards (the province outline), in the frame's CRS."""
    return gdf.geometry.union_all()


def compact_json(geojson: dict[str, Any]) -> str:
    """The JSON text as sent: ``json.dumps`` with compact separators (ASCII, names escaped)."""
    return json.dumps(geojson, separators=(",", ":"))


# --- the layer a map card uses --------------------------------------------------------------------


@dataclass(frozen=True)
class WardLayer:
    """Ward shapes ready for a choropleth, with how they were obtained."""

    geojson: dict[str, Any]
    approximate: bool
    codes: tuple[str, ...]
    report: dict[str, list[str]]
    size_bytes: int
    cached: bool = False
    """True when the simplified boundaries came from the on-disk cache."""


CACHE_FORMAT = 1
"""Bumped whenever the cached layer's content or the simplification changes, so old entries are ignored."""


def boundary_fingerprint(path: str | Path, *, code_field: str, tolerance_m: float) -> str:
    """Hash of the boundary input (every file of the folder or beside the file, names and bytes) and the
    parameters that shape the simplified layer: the on-disk cache key."""
    path = Path(path)
    digest = hashlib.sha256(f"{CACHE_FORMAT}|{code_field}|{float(tolerance_m)!r}".encode())
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file())
    else:  # a Shapefile's .dbf/.prj/.shx sit beside it
        files = sorted(p for p in path.parent.iterdir() if p.is_file() and p.stem == path.stem)
    for file in files:
        digest.update(f"|{file.name}|{file.stat().st_size}|".encode())
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _simplified_geojson(
    path: Path, *, code_field: str, tolerance_m: float, cache_dir: Path | None
) -> tuple[dict[str, Any], bool]:
    """The simplified coverage of every shape in ``path`` as GeoJSON (id = code), and whether it came from
    the cache. Simplification runs once per distinct input; the result is kept in ``cache_dir``."""
    cache_file = None
    if cache_dir is not None:
        key = boundary_fingerprint(path, code_field=code_field, tolerance_m=tolerance_m)
        cache_file = Path(cache_dir) / f"wards-{key[:32]}.geojson"
        if cache_file.is_file():
            try:
                return json.loads(cache_file.read_text(encoding="utf-8")), True
            except (OSError, ValueError) as error:
                logger.warning("ignoring unreadable boundary cache %s: %s", cache_file, error)
    loaded = load_boundaries(path, code_field=code_field)
    geojson = json.loads(compact_json(ward_geojson(simplify_coverage(loaded, tolerance_m))))  # as cached: lists
    if cache_file is not None:
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            partial = cache_file.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text(compact_json(geojson), encoding="utf-8")
            os.replace(partial, cache_file)
        except OSError as error:
            logger.warning("cannot write the boundary cache in %s: %s", cache_dir, error)
    return geojson, False


def prepare_ward_layer(
    units: pd.DataFrame,
    boundary_path: str | Path | None,
    *,
    tolerance_m: float = 60,
    code_field: str = "code",
    cache_dir: str | Path | None = None,
) -> WardLayer:
    """Boundaries for the registry's units: loaded, matched and simplified, or approximated without a path.

    Only shapes whose code is a current unit are drawn; mismatches are in ``report`` and logged. Names
    come from the registry so the map agrees with the rest of the dashboard. With ``cache_dir`` the
    simplified layer is kept on disk, keyed by a hash of the input files and the tolerance, so a restart
    skips loading and simplifying.
    """
    cached = False
    if boundary_path is None:
        wards = approximate_wards(units)
        report = match_codes(wards, units)
        features = ward_geojson(wards)["features"]
    else:
        geojson, cached = _simplified_geojson(
            Path(boundary_path),
            code_field=code_field,
            tolerance_m=tolerance_m,
            cache_dir=Path(cache_dir) if cache_dir is not None else None,
        )
        report = match_codes(pd.DataFrame({"code": [f["id"] for f in geojson["features"]]}), units)
        if report["missing_in_boundaries"] or report["unknown_in_registry"]:
            logger.warning(
                "boundaries %s: %d unit(s) without a shape %s, %d shape(s) not in the registry %s",
                boundary_path,
                len(report["missing_in_boundaries"]),
                report["missing_in_boundaries"][:10],
                len(report["unknown_in_registry"]),
                report["unknown_in_registry"][:10],
            )
        matched = set(report["matched"])
        features = [f for f in geojson["features"] if f["id"] in matched]
    names = dict(zip(units["code"].astype(str), units["name"], strict=True)) if "name" in units else {}
    for feature in features:
        feature["properties"] = {"code": feature["id"], "name": names.get(feature["id"], feature["id"])}
    layer = {"type": "FeatureCollection", "features": features}
    return WardLayer(
        geojson=layer,
        approximate=boundary_path is None,
        codes=tuple(f["id"] for f in features),
        report=report,
        size_bytes=len(compact_json(layer)),
        cached=cached,
    )
