"""Ward boundaries at start-up: load + simplify once, then from the on-disk cache; the layer as sent.

    python bench/boundaries.py [/path/to/shared/data/boundaries]

Prints, per province, the time to build the layer without a cache (load every official ward file,
simplify the coverage) and with the cache warm (what every restart costs), the size of the GeoJSON
sent to the browser next to the issue's limit for Huế (160 KB), and the largest distance of a
simplified ward from its official outline next to the 150 m limit. Never run in CI.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import geopandas
import numpy as np
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_sources.admin_units import current_units  # noqa: E402
from data_sources.geo import load_boundaries, prepare_ward_layer  # noqa: E402

PROVINCES = (("46", "46_hue"), ("24", "24_bac_ninh"))
TOLERANCE_M = 60
HUE_LIMIT_BYTES = 160 * 1024
SHIFT_LIMIT_M = 150


def max_shift_m(folder: Path, layer_geojson: dict) -> float:
    """Largest Hausdorff distance (m) between an official ward and its simplified shape as sent."""
    official = load_boundaries(folder).set_index("code")
    sent = geopandas.GeoDataFrame.from_features(layer_geojson["features"], crs=4326).set_index("code")
    metric = official.estimate_utm_crs()
    before = official.loc[sent.index].geometry.to_crs(metric).to_numpy()
    after = sent.geometry.to_crs(metric).to_numpy()
    return float(np.max(shapely.hausdorff_distance(before, after, densify=0.25)))


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared/data/boundaries"
    header = ("province", "cold start", "warm cache", "layer sent", "limit", "max shift", "limit")
    print("{:<14}{:>12}{:>12}{:>14}{:>10}{:>11}{:>8}".format(*header))
    for code, name in PROVINCES:
        units = current_units(code)
        folder = root / name / "wards"
        with tempfile.TemporaryDirectory() as cache:
            tick = time.perf_counter()
            cold = prepare_ward_layer(units, folder, tolerance_m=TOLERANCE_M, cache_dir=cache)
            cold_s = time.perf_counter() - tick
            tick = time.perf_counter()
            warm = prepare_ward_layer(units, folder, tolerance_m=TOLERANCE_M, cache_dir=cache)
            warm_s = time.perf_counter() - tick
        assert warm.cached and not cold.cached and warm.geojson == cold.geojson
        limit = f"{HUE_LIMIT_BYTES / 1024:.0f} KB" if code == "46" else "–"
        shift = max_shift_m(folder, warm.geojson)
        print(
            f"{name:<14}{cold_s:>10.2f} s{warm_s:>10.2f} s{warm.size_bytes / 1024:>11.1f} KB{limit:>10}"
            f"{shift:>9.1f} m{SHIFT_LIMIT_M:>6} m"
        )


if __name__ == "__main__":
    main()
