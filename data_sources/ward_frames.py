"""What the poller prepares for the web after each poll: ward frames and the page figures computed ahead.

A sector page refresh after a new snapshot version used to spend most of its time before showing
anything: reading the whole snapshot, decoding history frames stored in dozens of parts (so that a
poll rewrites only the parts it changed), mapping every row's unit code to its current ward, and
computing each figure. The poller now does that once per version, for every web worker and user:
after each successful poll of a dataset, ``WardFramesPublisher`` publishes two derived snapshots in
the same store:

* ``wards:<dataset>``: the frames the figures read, each row with its current ward (raw unit codes
  stay in the dataset's own snapshot, where the pre-merger view reads them), each one Arrow stream;
* ``figures:<dataset>``: the figures a sector page asks for in its usual views, computed by the very
  functions the web would run (``data_sources.figures``) at the time of publication: every KPI over
  the province for each named window, every ward's value of each KPI (map and league table), the
  series, and each entity's latest value (map markers); plus the snapshot's metadata and small
  frames, so a refresh reads neither the big frames nor the raw snapshot;
* ``ward-figures:<dataset>``: the same figures for each ward alone (a ward selected on the page, or a
  department head scoped to one ward): tiles, series and markers, one small frame per ward, read by
  a web worker only when a one-ward view asks (``WardFiguresAhead``), so a province refresh never
  pays for them.

Both name the version they were made from and a fingerprint of the crosswalk used; a web worker
(``load_snapshot``) takes them only when both match its own. Figures are keyed by the part of "now"
they depend on (``figures.moment_key``): a refresh at a moment where a key differs (the window
moved on to the next bucket meanwhile), a scope of several wards, or a custom range computes its
figure in the web from the ward frames, and a missing or late hook only costs time: the web then maps
the raw frames itself. Nothing here changes what a figure is.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.ipc

from config.datasets import Dataset, DatasetCatalogue
from data_sources.clock import Clock, system_clock
from data_sources.kpis import KpiFigure, with_wards
from data_sources.poller import UNIT
from data_sources.snapshots import EncodedFrame, Snapshot, SnapshotStore, encode_frame

log = logging.getLogger(__name__)

WARD_FRAMES_PREFIX = "wards:"
FIGURES_PREFIX = "figures:"
WARD_FIGURES_PREFIX = "ward-figures:"
WARD_PART = "w:"
"""Frame name prefix of one ward's figures in a ``ward-figures:`` snapshot."""
MAPPED_FRAMES = ("recent", "hourly", "daily", "state", "durations")
"""Frames with unit codes that the page figures read (``figures.WardFrames``)."""
COPIED_FRAMES = ("entities",)
"""Small raw frames a page reads (station names and places), copied beside the figures."""
AHEAD_WINDOWS = ("24h", "7d", "30d")
"""The named windows a sector page offers; figures are computed ahead for each (and each KPI's own)."""
FORMAT = 3
"""Layout of the ``figures:`` snapshot; another one (an older poller) is ignored."""
_IPC = pa.ipc.IpcWriteOptions(compression="lz4", use_threads=False)


def ward_frames_name(dataset_id: str) -> str:
    """Store key of a dataset's ward frames."""
    return WARD_FRAMES_PREFIX + dataset_id


def figures_name(dataset_id: str) -> str:
    """Store key of a dataset's figures computed ahead."""
    return FIGURES_PREFIX + dataset_id


def ward_figures_name(dataset_id: str) -> str:
    """Store key of a dataset's one-ward figures computed ahead."""
    return WARD_FIGURES_PREFIX + dataset_id


def crosswalk_fingerprint(crosswalk: Mapping[str, str]) -> str:
    """A digest of a crosswalk (and its pre-2025 readings): equal digests map every row alike."""
    dated = getattr(crosswalk, "pre_reform", None) or {}
    text = repr((sorted(crosswalk.items()), sorted(dated.items())))
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def map_to_wards(frame: pd.DataFrame, crosswalk: Mapping[str, str]) -> pd.DataFrame:
    """Every row with its current ward (NA for unknown codes), without the unit code."""
    return with_wards(frame, crosswalk).drop(columns=[UNIT])


def encode_whole(frame: pd.DataFrame) -> EncodedFrame:
    """A frame as one Arrow record batch (LZ4): decoded in one go, however many parts it was built from."""
    table = pa.Table.from_pandas(frame, preserve_index=False, nthreads=1).combine_chunks()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=_IPC) as writer:
        writer.write_table(table)
    return EncodedFrame(sink.getvalue().to_pybytes())


def mapped_frames(snapshot: Snapshot, crosswalk: Mapping[str, str]) -> dict[str, pd.DataFrame]:
    """The snapshot's frames the figures read, each row with its current ward."""
    frames = {}
    for name in MAPPED_FRAMES:
        frame = snapshot.frames.get(name)
        if frame is not None and UNIT in frame:
            frames[name] = map_to_wards(frame, crosswalk)
    return frames


# --- figures as stored -----------------------------------------------------------------------------
SCALARS = (str, int, float, bool, type(None))


def key_to_json(key: Any, codes: tuple[str, ...] = ()) -> Any:
    """A figure key (tuples, frozensets of wards, str, int, None) as JSON; the tuple ``codes`` (every
    ward of the province, part of many keys) as a short reference."""
    if isinstance(key, tuple):
        if codes and key == codes:
            return {"w": 1}
        if all(isinstance(k, SCALARS) and not isinstance(k, np.integer) for k in key):
            return {"T": list(key)}
        return {"t": [key_to_json(k, codes) for k in key]}
    if isinstance(key, frozenset):
        return {"s": sorted(key)}
    if isinstance(key, np.integer):
        return int(key)
    if isinstance(key, SCALARS):
        return key
    raise TypeError(f"cannot store a figure key part {key!r}")


def key_from_json(value: Any, codes: tuple[str, ...] = ()) -> Hashable:
    """Inverse of ``key_to_json``."""
    if not isinstance(value, dict):
        return value
    if "T" in value:
        return tuple(value["T"])
    if "t" in value:
        return tuple(key_from_json(v, codes) for v in value["t"])
    if "w" in value:
        return codes
    return frozenset(value["s"])


def _figure_to_json(value: Any, codes: tuple[str, ...] = ()) -> dict[str, Any] | None:
    if isinstance(value, KpiFigure):
        return {
            "type": "kpi",
            "kpi": value.kpi.id,
            "value": value.value,
            "entity": value.entity,
            "baseline": value.baseline,
            "change": value.change,
            "entities": list(value.entities),
        }
    if isinstance(value, pd.Series) and value.dtype == "float64" and value.index.dtype == object:
        index = list(value.index)
        stored = {"type": "series", "name": value.name, "values": value.tolist()}
        return stored if codes and tuple(index) == codes else stored | {"index": index}
    if isinstance(value, pd.DataFrame):
        table = frame_to_json(value)
        return {"type": "frame", **table} if table is not None else None
    return None


PLAIN_DTYPES = ("float64", "int64", "bool", "object", "str", "string")


def frame_to_json(frame: pd.DataFrame) -> dict[str, Any] | None:
    """A small figure frame as JSON columns with their dtypes (None for a frame this cannot restore exactly:
    other dtypes, labels or index). Small frames rebuild from JSON several times faster than from Arrow."""
    if not isinstance(frame.index, pd.RangeIndex) or frame.index.start != 0 or frame.index.step != 1:
        return None
    columns, dtypes, values = [], [], []
    for name in frame.columns:
        column = frame[name]
        dtype = str(column.dtype)
        if not isinstance(name, str) or not (dtype in PLAIN_DTYPES or dtype.startswith("datetime64[")):
            return None
        if dtype.startswith("datetime64["):
            if column.isna().any():
                return None
            data = column.to_numpy().astype("int64").tolist()
        elif dtype in ("str", "string"):
            data = [
                None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else v for v in column.tolist()
            ]
        else:
            data = column.tolist()
        columns.append(name)
        dtypes.append(dtype)
        values.append(data)
    return {"columns": columns, "dtypes": dtypes, "values": values, "rows": len(frame)}


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def frame_from_json(table: dict[str, Any]) -> pd.DataFrame:
    """Inverse of ``frame_to_json``."""
    data: dict[str, Any] = {}
    for name, dtype, values in zip(table["columns"], table["dtypes"], table["values"], strict=True):
        if dtype.startswith("datetime64["):
            data[name] = np.asarray(values, dtype="int64").astype(dtype)
        elif dtype == "object":
            column = np.empty(len(values), dtype=object)
            column[:] = values
            data[name] = column
        elif dtype in ("str", "string"):
            data[name] = pd.api.types.pandas_dtype(dtype).__from_arrow__(pa.array(values, type=pa.large_string()))
        else:
            data[name] = np.asarray(values, dtype=dtype)
    if not data:
        return pd.DataFrame(index=pd.RangeIndex(table["rows"]))
    return pd.DataFrame(data, copy=False)


def _figure_from_json(entry: dict[str, Any], dataset: Dataset, codes: tuple[str, ...]) -> Any:
    from data_sources.figures import Deferred

    if entry["type"] == "kpi":
        return KpiFigure(
            dataset.kpi(entry["kpi"]),
            entry["value"],
            entry["entity"],
            entry["baseline"],
            entry["change"],
            tuple(entry["entities"]),
        )
    if entry["type"] == "series":
        return Deferred(
            lambda: pd.Series(
                entry["values"],
                index=pd.Index(entry.get("index", codes), dtype="object"),
                dtype="float64",
                name=entry["name"],
            )
        )
    return Deferred(lambda: frame_from_json(entry))


def compute_ahead(
    dataset: Dataset,
    snapshot: Snapshot,
    crosswalk: Mapping[str, str],
    mapped: Mapping[str, pd.DataFrame],
    ward_codes: list[str],
    now: datetime,
) -> tuple[dict[Hashable, Any], int]:
    """The figures a sector page asks for in its usual views (province, named windows), and the
    latest duration end (-1: none); computed by ``data_sources.figures`` as the web would, at ``now``."""
    from data_sources import figures

    prepared = figures.ward_frames(snapshot, crosswalk, mapped, max_figures=100_000)
    for kpi in dataset.kpis:
        for window in dict.fromkeys((kpi.window, *AHEAD_WINDOWS)):
            figures.kpi_value(dataset, kpi, snapshot, now, crosswalk, wards=None, window=window)
            if kpi.kind in figures.GROUPED_KINDS and window in AHEAD_WINDOWS:
                figures.kpi_per_ward(dataset, kpi, snapshot, now, crosswalk, ward_codes, window=window)
        if kpi.kind in (*figures.ENTITY_KINDS, "latest_ratio", "latest_max"):
            figures.entity_latest(dataset, kpi.id, snapshot, now, crosswalk)
    for window in AHEAD_WINDOWS:
        figures.series_frame(dataset, [], snapshot, now, crosswalk, wards=None, window=window)
    last_end = prepared.last_end()
    return prepared.figures(), -1 if last_end is None else last_end


def ward_template(key: Hashable) -> tuple[str, str] | None:
    """(template, ward) of a KPI, series or map-marker key of exactly one ward: the key with that ward as
    ``*``, as JSON (the same template for every ward); None for any other key."""
    if not isinstance(key, tuple) or not key or key[0] not in ("kpi", "series", "entity_latest"):
        return None
    for position, part in enumerate(key):
        if isinstance(part, frozenset):
            if len(part) != 1:
                return None
            (code,) = part
            template = (*key[:position], "*", *key[position + 1 :])
            return json.dumps(key_to_json(template), separators=(",", ":")), code
    return None


def ward_figure_frames(computed: Mapping[Hashable, Any]) -> dict[str, EncodedFrame]:
    """One-ward figures as one small frame per ward (template, figure as JSON), read only when asked for."""
    by_ward: dict[str, tuple[list[str], list[str]]] = {}
    for key, value in computed.items():
        found = ward_template(key)
        stored = _figure_to_json(value)
        if found is None or stored is None:
            continue
        templates, entries = by_ward.setdefault(found[1], ([], []))
        templates.append(found[0])
        entries.append(json.dumps(stored, separators=(",", ":")))
    return {
        WARD_PART + code: EncodedFrame(encode_frame(pd.DataFrame({"template": templates, "figure": entries})))
        for code, (templates, entries) in by_ward.items()
    }


@dataclass
class WardFramesPublisher:
    """After-poll hook (``Poller(after_poll=...)``): publish the ward frames and the figures computed
    ahead of the version just polled (``ward_codes``: the province's current wards, in the order the
    web lists them); ``each_ward``, a later hook, publishes every ward's figures of that version."""

    catalogue: DatasetCatalogue
    store: SnapshotStore
    crosswalk: Mapping[str, str]
    ward_codes: list[str]
    clock: Clock = system_clock
    fingerprint: str = field(init=False)
    _published: dict[str, tuple[Snapshot, datetime]] = field(init=False, default_factory=dict)
    _ward_frames_of: dict[str, tuple[tuple[str, tuple[str, ...]], dict[str, EncodedFrame]]] = field(
        init=False, default_factory=dict
    )
    """Per dataset, what the last ``each_ward`` published from: (frames' digest, key templates), and its frames."""
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.fingerprint = crosswalk_fingerprint(self.crosswalk)

    def __call__(self, dataset_id: str, _result: Any = None) -> None:
        snapshot = self.store.get(dataset_id)
        if snapshot is None:
            return
        dataset = self.catalogue.get(dataset_id)
        source = {"source_version": snapshot.version, "crosswalk": self.fingerprint}
        mapped = mapped_frames(snapshot, self.crosswalk)
        self.store.put(ward_frames_name(dataset_id), source, {n: encode_whole(f) for n, f in mapped.items()})
        now = self.clock()
        computed, last_end = compute_ahead(dataset, snapshot, self.crosswalk, mapped, self.ward_codes, now)
        frames: dict[str, EncodedFrame] = {}
        entries = []
        codes = tuple(self.ward_codes)
        for key, value in computed.items():
            stored = _figure_to_json(value, codes)
            if stored is not None:
                entries.append({"key": key_to_json(key, codes), **stored})
        copies = {}
        for name in COPIED_FRAMES:
            if name in snapshot.frames:
                copies[name] = frame_to_json(snapshot.frames[name])
                if copies[name] is None:  # not plain enough for JSON columns: as the store keeps frames
                    frames[f"raw:{name}"] = EncodedFrame(encode_frame(snapshot.frames[name]))
        meta = source | {
            "format": FORMAT,
            "created_at": snapshot.created_at.isoformat(),
            "meta": snapshot.meta,
            "frames": list(snapshot.frames),
            "computed_at": now.isoformat(),
            "last_end": last_end,
            "ward_codes": list(codes),
            "copies": {name: table for name, table in copies.items() if table is not None},
            "figures": entries,
        }
        self.store.put(figures_name(dataset_id), meta, frames)
        with self._lock:
            self._published[dataset_id] = (snapshot, now)

    def each_ward(self, dataset_id: str, _result: Any = None) -> None:
        """Second after-poll hook, installed after the others (alerts, map points), which it need not delay:
        publish every ward's figures of the version the first hook just published, from the same figures."""
        from data_sources.figures import ward_figures_ahead

        with self._lock:
            published = self._published.pop(dataset_id, None)
        if published is None:
            return
        snapshot, now = published
        dataset = self.catalogue.get(dataset_id)
        source = {"source_version": snapshot.version, "crosswalk": self.fingerprint}
        basis = _ward_basis(dataset, snapshot, self.crosswalk, now, self.ward_codes[0]) if self.ward_codes else None
        last = self._ward_frames_of.get(dataset_id)
        if basis is not None and last is not None and last[0] == basis:
            # the same frames and the same moments: the same figures, published for this version as they were
            self.store.put(ward_figures_name(dataset_id), source, last[1])
            return
        per_ward = ward_figures_ahead(dataset, snapshot, self.crosswalk, now, self.ward_codes, AHEAD_WINDOWS)
        frames = ward_figure_frames(per_ward)
        self.store.put(ward_figures_name(dataset_id), source, frames)
        if basis is not None:
            self._ward_frames_of[dataset_id] = (basis, frames)

    def hooks(self) -> tuple[Callable[[str, Any], None], Callable[[str, Any], None]]:
        """The province hook and the every-ward hook, for a poller that runs nothing between them."""
        return self, self.each_ward


def _ward_basis(
    dataset: Dataset, snapshot: Snapshot, crosswalk: Mapping[str, str], now: datetime, code: str
) -> tuple[str, tuple[str, ...]] | None:
    """What every ward's figures are computed from: the snapshot's frames (a digest of their stored bytes)
    and the keys' templates, which hold the moments the figures depend on (the same for every ward);
    None when the frames cannot be digested (a store keeping frames in memory)."""
    from data_sources.figures import entity_latest_key, kpi_key, series_key, ward_frames

    fingerprint = getattr(snapshot.frames, "fingerprint", None)
    if fingerprint is None:
        return None
    prepared = ward_frames(snapshot, crosswalk)
    wards = frozenset([code])
    keys = [
        kpi_key(dataset, kpi, prepared, now, wards=wards, window=window)
        for kpi in dataset.kpis
        for window in dict.fromkeys((kpi.window, *AHEAD_WINDOWS))
    ]
    keys += [series_key(dataset, now, wards=wards, window=window) for window in AHEAD_WINDOWS]
    keys += [entity_latest_key(dataset, kpi.id, snapshot, now, crosswalk, wards=wards) for kpi in dataset.kpis]
    return fingerprint(), tuple(ward_template(key)[0] for key in keys)


# --- the web side ----------------------------------------------------------------------------------
class _Later(Mapping[str, pd.DataFrame]):
    """Frames of another stored snapshot, read from the store only when one is asked for."""

    def __init__(self, read: Callable[[], Mapping[str, pd.DataFrame] | None], names: list[str] | None = None) -> None:
        self._read = read
        self._names = names
        self._frames: Mapping[str, pd.DataFrame] | None = None

    def _loaded(self) -> Mapping[str, pd.DataFrame]:
        if self._frames is None:
            self._frames = self._read() or {}
        return self._frames

    def __contains__(self, name: object) -> bool:
        if self._names is not None:
            return name in self._names
        return name in self._loaded()

    def __getitem__(self, name: str) -> pd.DataFrame:
        if self._names is not None and name not in self._names:
            raise KeyError(name)
        return self._loaded()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names if self._names is not None else self._loaded())

    def __len__(self) -> int:
        return len(self._names) if self._names is not None else len(self._loaded())


class _RawFrames(_Later):
    """A snapshot's own frames: the small ones copied beside the figures, the others read on first use."""

    def __init__(
        self, read: Callable[[], Mapping[str, pd.DataFrame] | None], names: list[str], ahead: Snapshot
    ) -> None:
        super().__init__(read, names)
        self._tables = ahead.meta.get("copies") or {}
        self._encoded = ahead.frames
        self._copies: dict[str, pd.DataFrame] = {}

    def __getitem__(self, name: str) -> pd.DataFrame:
        found = self._copies.get(name)
        if found is not None:
            return found
        if name in self._tables:
            found = self._copies[name] = frame_from_json(self._tables[name])
            return found
        if f"raw:{name}" in self._encoded:
            return self._encoded[f"raw:{name}"]
        return super().__getitem__(name)


def _derived(store: SnapshotStore, name: str, version: int, fingerprint: str) -> Snapshot | None:
    """A derived snapshot made from ``version`` with the same crosswalk, None otherwise."""
    try:
        found = store.get(name)
    except Exception:  # an unreadable copy only makes the refresh slower: the web computes itself
        log.exception("cannot read %s", name)
        return None
    if found is None or found.meta.get("source_version") != version or found.meta.get("crosswalk") != fingerprint:
        return None
    return found


class WardFiguresAhead:
    """``WardFrames``' ``ward_lookup``: the poller's one-ward figures of one version, read from the store
    when the first one is asked for, each ward's decoded when one of its figures is. The poller publishes
    them after the version itself: until they are there, the store is asked again at most once every
    ``RETRY_SECONDS`` (meanwhile the web computes what it is asked)."""

    RETRY_SECONDS = 1.0

    def __init__(self, store: SnapshotStore, dataset: Dataset, version: int, fingerprint: str) -> None:
        self._read = lambda: _derived(store, ward_figures_name(dataset.id), version, fingerprint)
        self._dataset = dataset
        self._stored: Snapshot | None = None
        self._read_at: float | None = None
        self._wards: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def _ward(self, code: str) -> dict[str, str] | None:
        found = self._wards.get(code)
        if found is not None:
            return found
        with self._lock:
            moment = time.monotonic()
            if self._stored is None and (self._read_at is None or moment - self._read_at >= self.RETRY_SECONDS):
                self._stored, self._read_at = self._read(), moment
        if self._stored is None:
            return None
        frame = self._stored.frames.get(WARD_PART + code)
        found = dict(zip(frame["template"], frame["figure"], strict=True)) if frame is not None else {}
        with self._lock:
            self._wards[code] = found
        return found

    def __call__(self, key: Hashable) -> Any:
        from data_sources.figures import MISSING, Deferred

        found = ward_template(key)
        figures = self._ward(found[1]) if found is not None else None
        entry = figures.get(found[0]) if figures is not None else None
        if entry is None:
            return MISSING
        value = _figure_from_json(json.loads(entry), self._dataset, ())
        return value.load() if isinstance(value, Deferred) else value


def load_snapshot(
    store: SnapshotStore, dataset: Dataset, version: int, crosswalk: Mapping[str, str], fingerprint: str
) -> Snapshot | None:
    """The dataset's snapshot ``version`` for the web, with its ``figures.WardFrames`` prepared.

    With the figures the poller computed ahead for this version, the snapshot's metadata comes from
    them and its frames are read from the store only if something asks for one. Should the dataset
    have moved on by then, the newer frames are read (the next refresh tick moves to that version).
    Without them, the raw snapshot is read as it is; either way the ward frames are read, when a
    figure must be computed, from the poller's ``wards:`` copy if it matches.
    """
    from data_sources.figures import ward_frames

    def ward_copy() -> Mapping[str, pd.DataFrame] | None:
        found = _derived(store, ward_frames_name(dataset.id), version, fingerprint)
        return found.frames if found is not None else None

    published = _Later(ward_copy)
    ahead = _derived(store, figures_name(dataset.id), version, fingerprint)
    if ahead is None or ahead.meta.get("format") != FORMAT:
        snapshot = store.get(dataset.id)
        if snapshot is not None:
            ward_frames(snapshot, crosswalk, published)
        return snapshot

    def raw() -> Mapping[str, pd.DataFrame] | None:
        found = store.get(dataset.id)
        if found is not None and found.version != version:
            log.info("%s moved from version %s to %s while it was read", dataset.id, version, found.version)
        return found.frames if found is not None else None

    meta = ahead.meta
    snapshot = Snapshot(
        dataset=dataset.id,
        version=version,
        created_at=datetime.fromisoformat(meta["created_at"]),
        meta=meta["meta"],
        frames=_RawFrames(raw, list(meta["frames"]), ahead),
    )
    codes = tuple(meta["ward_codes"])
    computed = {key_from_json(e["key"], codes): _figure_from_json(e, dataset, codes) for e in meta["figures"]}
    ward_lookup = WardFiguresAhead(store, dataset, version, fingerprint)
    ward_frames(
        snapshot,
        crosswalk,
        published,
        computed=computed,
        last_end=meta["last_end"],
        ward_lookup=ward_lookup,
        ward_codes=codes,
    )
    return snapshot
