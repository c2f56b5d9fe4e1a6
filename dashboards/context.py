"""What every page and callback of one web process shares: settings, stores and reference data.

Built once at start-up by ``app.create_app``; nothing in it changes afterwards except the decoded
snapshot cache, which is keyed by snapshot version so it can never serve stale figures (and, beside
it, each version's ward frames and figures: ``data_sources.figures.ward_frames``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

import pandas as pd
from flask import g, has_request_context
from sqlalchemy import Engine

from config.datasets import DatasetCatalogue
from config.roles import Scope
from config.settings import Settings
from data_sources.clock import Clock
from data_sources.release import release_later
from data_sources.snapshots import Snapshot, SnapshotStore
from data_sources.sql import ReflectedDataset
from data_sources.ward_frames import crosswalk_fingerprint, load_snapshot


@dataclass
class AppContext:
    """Shared, read-only state of one web process."""

    settings: Settings
    catalogue: DatasetCatalogue
    store: SnapshotStore
    warehouse: Engine
    app_db: Engine
    units: pd.DataFrame
    crosswalk: dict[str, str]
    ward_geojson: dict
    wards_approximate: bool
    population: pd.Series
    clock: Clock
    legacy: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Pre-2025 wards with the current ward each maps onto (``admin_units.legacy_units`` under the split rule)."""
    pre_reform_crosswalk: dict[str, str] = field(default_factory=dict)
    """Codes read as the pre-2025 scheme -> current ward (rows dated before 1 July 2025)."""
    boundary_report: dict[str, list[str]] = field(default_factory=dict)
    """Boundary codes matched, missing and unknown (``geo.match_codes``), for Data health and the units page."""
    population_sources: tuple[str, ...] = ()
    """Where the population figures come from (the demo's say they are synthetic)."""
    split_rule: str = "default"
    """How the data of a split old ward is attributed (``admin_units.SPLIT_RULES``)."""
    reflected: dict[str, ReflectedDataset] = field(default_factory=dict)
    _cache: dict[str, Snapshot] = field(default_factory=dict)
    _mutex: threading.Lock = field(default_factory=threading.Lock)

    def snapshot(self, dataset_id: str) -> Snapshot | None:
        """The newest snapshot of a dataset, decoded once per version; one request sees one version of it
        however many times it asks (the store is asked once per request)."""
        if not has_request_context():
            return self._newest(dataset_id)
        seen = g.setdefault("ioc_snapshots", {})
        if dataset_id not in seen:
            seen[dataset_id] = self._newest(dataset_id)
        return seen[dataset_id]

    def _newest(self, dataset_id: str) -> Snapshot | None:
        version = self.store.version(dataset_id)
        if version is None:
            return None
        cached = self._cache.get(dataset_id)
        if cached is not None and cached.version == version:
            return cached
        dataset = next((d for d in self.catalogue if d.id == dataset_id), None)
        if dataset is None:
            fresh = self.store.get(dataset_id)
        else:  # with what the poller prepared for this version, when it did
            fresh = load_snapshot(self.store, dataset, version, self.crosswalk, self.crosswalk_fingerprint)
        if fresh is not None:
            with self._mutex:
                replaced = self._cache.get(dataset_id)
                self._cache[dataset_id] = fresh
            release_later(replaced)  # freed off this request
        return fresh

    @cached_property
    def crosswalk_fingerprint(self) -> str:
        """Digest of the crosswalk, to recognise ward frames the poller mapped with the same one."""
        return crosswalk_fingerprint(self.crosswalk)

    @cached_property
    def ward_codes(self) -> frozenset[str]:
        """Codes of the province's current wards."""
        return frozenset(self.units["code"])

    def units_in_scope(self, scope: Scope) -> pd.DataFrame:
        """Current wards an account may see."""
        if scope.wards is None:
            return self.units
        return self.units.loc[self.units["code"].isin(scope.wards)]

    def now(self) -> datetime:
        """The current local time (injectable in tests)."""
        return self.clock()

    def ward_name(self, code: str, lang: str) -> str:
        """Display name of a current ward in the interface language."""
        return self._ward_names["name" if lang != "en" else "name_en"].get(code, code)

    @cached_property
    def _ward_names(self) -> dict[str, dict[str, str]]:
        """Ward names by code, Vietnamese and English (the first row of a code, as a lookup gave before)."""
        names: dict[str, dict[str, str]] = {"name": {}, "name_en": {}}
        for column, by_code in names.items():
            for code, name in zip(self.units["code"], self.units[column], strict=True):
                by_code.setdefault(str(code), str(name))
        return names

    def old_codes_of(self, ward_code: str) -> tuple[str, ...]:
        """Every unit code (the ward's own and pre-2025 ones) whose rows belong to ``ward_code`` today."""
        return tuple(sorted(code for code, current in self.crosswalk.items() if current == ward_code))


_context: AppContext | None = None


def set_context(context: AppContext) -> None:
    """Install the process's context (app start-up, tests)."""
    global _context
    _context = context


def get_context() -> AppContext:
    """The process's context; raises if the app was not created."""
    if _context is None:
        raise RuntimeError("the app context is not set: create the app with app.create_app()")
    return _context
