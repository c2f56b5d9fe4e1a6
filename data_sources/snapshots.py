"""Versioned snapshots per dataset: the one read path between the poller and the web workers.

The poller writes a ``Snapshot`` per dataset after each poll; web workers ask for the version first
(cheap) and load the snapshot only when it changed. Frames travel as Parquet, metadata as JSON, so
nothing executable ever crosses the store.

Stores: ``SQLiteSnapshotStore`` (default: a file shared by the poller and web processes, no server),
``RedisSnapshotStore`` (several web workers, several hosts), ``MemorySnapshotStore`` (unit tests).
"""

from __future__ import annotations

import io
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import pandas as pd


@dataclass(frozen=True)
class Snapshot:
    """What the dashboards know about one dataset at one moment."""

    dataset: str
    version: int
    created_at: datetime
    meta: dict[str, Any] = field(default_factory=dict)
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)

    def frame(self, name: str) -> pd.DataFrame:
        """A copy of one frame, empty when the poller did not produce it."""
        found = self.frames.get(name)
        return found.copy() if found is not None else pd.DataFrame()


def encode_frame(frame: pd.DataFrame) -> bytes:
    """Serialise a frame to Parquet bytes."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def decode_frame(payload: bytes) -> pd.DataFrame:
    """Inverse of ``encode_frame``."""
    return pd.read_parquet(io.BytesIO(payload))


def encode_meta(meta: dict[str, Any]) -> str:
    """Metadata as JSON; datetimes as ISO strings."""
    return json.dumps(meta, default=_json_default, ensure_ascii=False)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in snapshot metadata")


class SnapshotStore(Protocol):
    """What the poller writes to and the web reads from."""

    def put(self, dataset: str, meta: dict[str, Any], frames: dict[str, pd.DataFrame]) -> Snapshot:
        """Store a new snapshot for ``dataset``; its version is one above the previous one."""

    def version(self, dataset: str) -> int | None:
        """The latest version of ``dataset``, or None when there is none yet. Must be cheap."""

    def versions(self) -> dict[str, int]:
        """Latest version of every dataset, in one round trip."""

    def get(self, dataset: str) -> Snapshot | None:
        """The latest snapshot of ``dataset``."""

    def put_status(self, name: str, status: dict[str, Any]) -> None:
        """Store a small JSON status document (poll health, poller heartbeat) under ``name``."""

    def get_status(self, name: str) -> dict[str, Any] | None:
        """The status document stored under ``name``."""

    def acquire_lock(self, name: str, owner: str, ttl_seconds: float) -> bool:
        """Take or renew an expiring lock; True when ``owner`` holds it afterwards."""

    def release_lock(self, name: str, owner: str) -> None:
        """Give up a lock held by ``owner``; no effect otherwise."""


class MemorySnapshotStore:
    """In-process store, for unit tests only: it cannot be shared between processes."""

    def __init__(self) -> None:
        self._snapshots: dict[str, Snapshot] = {}
        self._status: dict[str, str] = {}
        self._locks: dict[str, tuple[str, float]] = {}
        self._mutex = threading.Lock()

    def put(self, dataset: str, meta: dict[str, Any], frames: dict[str, pd.DataFrame]) -> Snapshot:
        with self._mutex:
            previous = self._snapshots.get(dataset)
            snapshot = Snapshot(
                dataset=dataset,
                version=(previous.version + 1) if previous else 1,
                created_at=datetime.now().astimezone(),
                meta=json.loads(encode_meta(meta)),
                frames={name: decode_frame(encode_frame(frame)) for name, frame in frames.items()},
            )
            self._snapshots[dataset] = snapshot
            return snapshot

    def version(self, dataset: str) -> int | None:
        found = self._snapshots.get(dataset)
        return found.version if found else None

    def versions(self) -> dict[str, int]:
        return {name: snap.version for name, snap in self._snapshots.items()}

    def get(self, dataset: str) -> Snapshot | None:
        return self._snapshots.get(dataset)

    def put_status(self, name: str, status: dict[str, Any]) -> None:
        self._status[name] = encode_meta(status)

    def get_status(self, name: str) -> dict[str, Any] | None:
        found = self._status.get(name)
        return json.loads(found) if found else None

    def acquire_lock(self, name: str, owner: str, ttl_seconds: float) -> bool:
        import time

        with self._mutex:
            now = time.monotonic()
            holder = self._locks.get(name)
            if holder is None or holder[0] == owner or holder[1] < now:
                self._locks[name] = (owner, now + ttl_seconds)
                return True
            return False

    def release_lock(self, name: str, owner: str) -> None:
        with self._mutex:
            if self._locks.get(name, ("", 0))[0] == owner:
                del self._locks[name]
