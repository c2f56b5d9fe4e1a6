"""Map points: rows in a current state (open incidents, open reports) at their own coordinates.

Rollups keep counts per ward, not places, so the poller also publishes, after each successful poll
of a dataset that declares ``latitude``/``longitude`` and state measures, the rows matching each
state measure (one parameterised query per measure, on the same selective filter the state count
uses, capped at ``MAX_POINTS``). They go to the snapshot store as a status document
``points:<dataset>`` holding one Parquet frame per state measure (base64: thousands of points
decode in a few milliseconds, where the same points as JSON lists took tens), so the web reads
them like every other figure: from the store, never from the warehouse. Only non-personal columns
travel (key, unit, coordinates, event time, and the dataset's required non-personal columns such
as kind, category, status).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

from config.datasets import Dataset, DatasetCatalogue
from data_sources.clock import Clock, system_clock, to_local_naive
from data_sources.snapshots import SnapshotStore, decode_frame, encode_frame
from data_sources.sql import ReflectedDataset, reflect_dataset, where_conditions

log = logging.getLogger(__name__)

POINTS_PREFIX = "points:"
MAX_POINTS = 5000
"""Most points kept per state measure (newest first); the document says when it was cut."""


def points_status_name(dataset_id: str) -> str:
    """Store key of a dataset's points document."""
    return POINTS_PREFIX + dataset_id


def publishes_points(dataset: Dataset) -> bool:
    """True when the dataset has row coordinates and at least one state measure."""
    return bool(dataset.latitude and dataset.longitude and dataset.state)


def point_columns(dataset: Dataset) -> list[str]:
    """Columns a point carries: key, unit, coordinates, event time, required non-personal columns."""
    base = [dataset.key, dataset.unit, dataset.latitude, dataset.longitude, dataset.event_time]
    extra = [c for c in dataset.required if c not in base and c not in dataset.personal]
    return [c for c in dict.fromkeys(base + extra) if c]


def fetch_points(engine: Engine, reflected: ReflectedDataset, now: datetime, limit: int = MAX_POINTS) -> dict[str, Any]:
    """Per state measure, the newest ``limit`` matching rows with coordinates, as a storable document."""
    dataset = reflected.dataset
    table = reflected.table
    columns = point_columns(dataset)
    document: dict[str, Any] = {"columns": columns, "frames": {}, "truncated": {}}
    latitude, longitude = table.c[dataset.latitude], table.c[dataset.longitude]
    with engine.connect() as connection:
        for measure in dataset.state:
            statement = (
                select(*(table.c[c] for c in columns))
                .where(*where_conditions(reflected, measure, now), latitude.is_not(None), longitude.is_not(None))
                .order_by(table.c[dataset.event_time].desc(), table.c[dataset.key].desc())
                .limit(limit + 1)
            )
            rows = connection.execute(statement).fetchall()
            frame = pd.DataFrame([tuple(r) for r in rows[:limit]], columns=columns)
            document["truncated"][measure.name] = len(rows) > limit
            document["frames"][measure.name] = base64.b64encode(encode_frame(frame)).decode("ascii")
    return document


DECODED_KEPT = 32
"""Decoded point frames kept per process, by digest (least recently used dropped first)."""
_decoded: OrderedDict[str, pd.DataFrame] = OrderedDict()
_decoded_lock = threading.Lock()


def read_points(store: SnapshotStore, dataset_id: str, state: str) -> tuple[pd.DataFrame, str]:
    """The published points of one state measure and a digest of them ("" and an empty frame when none).

    Points unchanged since an earlier read (same digest) are not decoded again; the frame is shared:
    never modify it.
    """
    document = store.get_status(points_status_name(dataset_id))
    encoded = (document or {}).get("frames", {}).get(state)
    if not encoded:
        return pd.DataFrame(), ""
    digest = hashlib.blake2b(encoded.encode("ascii"), digest_size=8).hexdigest()
    with _decoded_lock:
        found = _decoded.get(digest)
        if found is not None:
            _decoded.move_to_end(digest)
            return found, digest
    frame = decode_frame(base64.b64decode(encoded))
    with _decoded_lock:
        _decoded[digest] = frame
        while len(_decoded) > DECODED_KEPT:
            _decoded.popitem(last=False)
    return frame, digest


@dataclass
class PointsPublisher:
    """After-poll hook (``Poller(after_poll=...)``): publish the points of a dataset just polled."""

    catalogue: DatasetCatalogue
    engine: Engine
    store: SnapshotStore
    clock: Clock = system_clock
    _reflected: dict[str, ReflectedDataset] = field(default_factory=dict)

    def __call__(self, dataset_id: str, _result: Any = None) -> None:
        dataset = self.catalogue.get(dataset_id)
        if not publishes_points(dataset):
            return
        reflected = self._reflected.get(dataset_id)
        if reflected is None:
            reflected = self._reflected[dataset_id] = reflect_dataset(self.engine, dataset)
        now = self.clock()
        document = fetch_points(self.engine, reflected, to_local_naive(now))
        document["published_at"] = now.isoformat()
        self.store.put_status(points_status_name(dataset_id), document)
