"""Versioned snapshots per dataset: the one read path between the poller and the web workers.

The poller writes a ``Snapshot`` per dataset after each poll; web workers ask for the version first
(cheap) and load the snapshot only when it changed. Frames travel as Arrow IPC streams, metadata
as JSON, so nothing executable ever crosses the store.

Stores: ``SQLiteSnapshotStore`` (default: a file shared by the poller and web processes, no server),
``RedisSnapshotStore`` (several web workers, several hosts), ``MemorySnapshotStore`` (unit tests).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol, cast
from urllib.parse import parse_qs, unquote, urlencode, urlsplit, urlunsplit

import pandas as pd
import pyarrow as pa
import pyarrow.ipc
import redis

_IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4", use_threads=False)
_PARQUET_MAGIC = b"PAR1"


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


def encode_frame(frame: pd.DataFrame | EncodedFrame) -> bytes:
    """Serialise a frame as an Arrow IPC stream, LZ4-compressed (an encoded frame passes through).

    Arrow IPC rather than Parquet: the poller re-encodes its newest rollup frame every poll and web
    workers decode it at every new version; IPC does both three times faster (about 6 ms and 3 ms for
    a 58,000-row frame) for a larger payload. Like Parquet it carries data only, never code.
    """
    if isinstance(frame, EncodedFrame):
        return frame.payload
    table = pa.Table.from_pandas(frame, preserve_index=False, nthreads=1)  # threads cost more than they save here
    return encode_table(table)


def encode_table(table: pa.Table) -> bytes:
    """An Arrow table as an LZ4-compressed IPC stream (what ``decode_frame`` reads)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=_IPC_OPTIONS) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def decode_frame(payload: bytes) -> pd.DataFrame:
    """Inverse of ``encode_frame``; Parquet payloads written by earlier versions are read too."""
    if payload[:4] == _PARQUET_MAGIC:
        return pd.read_parquet(io.BytesIO(payload))
    return pa.ipc.open_stream(payload).read_all().to_pandas()


@dataclass(frozen=True)
class EncodedFrame:
    """A frame already serialised by ``encode_frame``, with a digest of its bytes: a writer that
    publishes an unchanged frame again (most polls change one frame of five) hands the store the bytes
    and digest it computed last time, and the SQLite store keeps one copy per digest."""

    payload: bytes
    digest: str = ""

    def __post_init__(self) -> None:
        if not self.digest:
            object.__setattr__(self, "digest", hashlib.blake2b(self.payload, digest_size=16).hexdigest())


def encoded_frame(frame: pd.DataFrame | EncodedFrame) -> EncodedFrame:
    """``frame`` serialised, with its digest (an encoded frame is returned as it is)."""
    return frame if isinstance(frame, EncodedFrame) else EncodedFrame(encode_frame(frame))


def encode_meta(meta: dict[str, Any]) -> str:
    """Metadata as JSON; dates and datetimes as ISO strings."""
    return json.dumps(meta, default=_json_default, ensure_ascii=False)


def _json_default(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in snapshot metadata")


class SnapshotStore(Protocol):
    """What the poller writes to and the web reads from."""

    def put(self, dataset: str, meta: dict[str, Any], frames: dict[str, pd.DataFrame | EncodedFrame]) -> Snapshot:
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

    def put(self, dataset: str, meta: dict[str, Any], frames: dict[str, pd.DataFrame | EncodedFrame]) -> Snapshot:
        with self._mutex:
            previous = self._snapshots.get(dataset)
            snapshot = Snapshot(
                dataset=dataset,
                version=(previous.version + 1) if previous else 1,
                created_at=datetime.now().astimezone(),
                meta=json.loads(encode_meta(meta)),
                frames=LazyFrames({name: encode_frame(frame) for name, frame in frames.items()}),
            )
            self._snapshots[dataset] = snapshot
            return snapshot

    def version(self, dataset: str) -> int | None:
        with self._mutex:
            found = self._snapshots.get(dataset)
        return found.version if found else None

    def versions(self) -> dict[str, int]:
        with self._mutex:
            return {name: snap.version for name, snap in self._snapshots.items()}

    def get(self, dataset: str) -> Snapshot | None:
        with self._mutex:
            return self._snapshots.get(dataset)

    def put_status(self, name: str, status: dict[str, Any]) -> None:
        self._status[name] = encode_meta(status)

    def get_status(self, name: str) -> dict[str, Any] | None:
        found = self._status.get(name)
        return json.loads(found) if found else None

    def acquire_lock(self, name: str, owner: str, ttl_seconds: float) -> bool:
        with self._mutex:
            now = time.monotonic()
            holder = self._locks.get(name)
            if holder is None or holder[0] == owner or holder[1] < now:
                self._locks[name] = (owner, now + ttl_seconds)
                return True
            return False

    def release_lock(self, name: str, owner: str) -> None:
        with self._mutex:
            holder = self._locks.get(name)
            if holder is not None and holder[0] == owner:
                del self._locks[name]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _check_keep_versions(keep_versions: int) -> int:
    if keep_versions < 1:
        raise ValueError(f"keep_versions must be at least 1, got {keep_versions}")
    return keep_versions


_SQLITE_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS snapshots (
        dataset TEXT NOT NULL,
        version INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        meta TEXT NOT NULL,
        PRIMARY KEY (dataset, version)
    )""",
    """CREATE TABLE IF NOT EXISTS snapshot_frames (
        dataset TEXT NOT NULL,
        version INTEGER NOT NULL,
        name TEXT NOT NULL,
        digest TEXT NOT NULL,
        PRIMARY KEY (dataset, version, name)
    )""",
    """CREATE TABLE IF NOT EXISTS frame_blobs (
        digest TEXT PRIMARY KEY,
        payload BLOB NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS status (
        name TEXT PRIMARY KEY,
        json TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS locks (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        expires_at REAL NOT NULL
    )""",
)


class SQLiteSnapshotStore:
    """Snapshots in one SQLite file shared by the poller (writer) and web processes (readers).

    WAL mode lets readers run while the poller writes; every write is one short ``BEGIN IMMEDIATE``
    transaction, so a reader sees a whole snapshot or none of it. Connections are pooled per process
    (one in use per thread at a time) and never reused across a fork.
    """

    def __init__(self, path: str | Path, *, keep_versions: int = 3, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.keep_versions = _check_keep_versions(keep_versions)
        self._busy_timeout = busy_timeout
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._pool_lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._inherited: list[sqlite3.Connection] = []
        self._pid = os.getpid()
        self._schema_ready = False

    # -- connections -----------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA journal_size_limit=67108864")
            if not self._schema_ready:
                self._prepare(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """Switch the file to WAL and create the tables; safe when several processes race to do it."""
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower()
            except sqlite3.OperationalError as error:  # another process is switching it right now
                if "locked" not in str(error):
                    raise
                mode = "locked"
            if mode == "wal":
                break
            if time.monotonic() > deadline:
                raise sqlite3.OperationalError(f"cannot switch {self.path} to WAL (journal mode: {mode})")
            time.sleep(0.01)
        with self._write(conn):
            columns = {row[1] for row in conn.execute("PRAGMA table_info(snapshot_frames)")}
            if "payload" in columns:  # frames stored inline by an earlier version: the poller republishes
                conn.execute("DROP TABLE snapshot_frames")
                conn.execute("DELETE FROM snapshots")
            for statement in _SQLITE_SCHEMA:
                conn.execute(statement)
        self._schema_ready = True

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        if self._pid != os.getpid():
            # Forked: the parent's connections must not be used, nor closed, in the child.
            self._inherited.extend(self._idle)
            self._idle, self._pool_lock, self._pid = [], threading.Lock(), os.getpid()
        with self._pool_lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._open()
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            with self._pool_lock:
                self._idle.append(conn)

    @contextmanager
    def _write(self, conn: sqlite3.Connection) -> Iterator[None]:
        """One write transaction; the write lock is taken up front so it never upgrades mid-way."""
        conn.execute("BEGIN IMMEDIATE")
        yield
        conn.execute("COMMIT")

    @contextmanager
    def _read(self, conn: sqlite3.Connection) -> Iterator[None]:
        """One read transaction: every query inside sees the same committed state."""
        conn.execute("BEGIN")
        yield
        conn.execute("COMMIT")

    def close(self) -> None:
        """Close the idle connections of this process (at shutdown, or at the end of a test)."""
        with self._pool_lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    # -- snapshots -------------------------------------------------------------------------------

    def put(self, dataset: str, meta: dict[str, Any], frames: dict[str, pd.DataFrame | EncodedFrame]) -> Snapshot:
        """Frames are stored once per content: a frame unchanged since the last version (most of them
        on most polls) costs a reference, not another copy of its bytes."""
        meta_json = encode_meta(meta)
        encoded = {name: encoded_frame(frame) for name, frame in frames.items()}
        created_at = _utc_now()
        with self._connection() as conn, self._write(conn):
            (previous,) = conn.execute("SELECT MAX(version) FROM snapshots WHERE dataset = ?", (dataset,)).fetchone()
            version = (previous or 0) + 1
            conn.execute(
                "INSERT INTO snapshots (dataset, version, created_at, meta) VALUES (?, ?, ?, ?)",
                (dataset, version, created_at.isoformat(), meta_json),
            )
            conn.executemany(  # a frame already stored under its digest is kept as it is
                "INSERT OR IGNORE INTO frame_blobs (digest, payload) VALUES (?, ?)",
                [(frame.digest, frame.payload) for frame in {e.digest: e for e in encoded.values()}.values()],
            )
            conn.executemany(
                "INSERT INTO snapshot_frames (dataset, version, name, digest) VALUES (?, ?, ?, ?)",
                [(dataset, version, name, frame.digest) for name, frame in encoded.items()],
            )
            oldest_kept = version - self.keep_versions + 1
            pruned = conn.execute(
                "DELETE FROM snapshot_frames WHERE dataset = ? AND version < ?", (dataset, oldest_kept)
            ).rowcount
            conn.execute("DELETE FROM snapshots WHERE dataset = ? AND version < ?", (dataset, oldest_kept))
            if pruned:
                conn.execute("DELETE FROM frame_blobs WHERE digest NOT IN (SELECT digest FROM snapshot_frames)")
        return _snapshot(dataset, version, created_at, meta_json, {n: e.payload for n, e in encoded.items()})

    def version(self, dataset: str) -> int | None:
        with self._connection() as conn:
            (found,) = conn.execute("SELECT MAX(version) FROM snapshots WHERE dataset = ?", (dataset,)).fetchone()
        return found

    def versions(self) -> dict[str, int]:
        with self._connection() as conn:
            rows = conn.execute("SELECT dataset, MAX(version) FROM snapshots GROUP BY dataset").fetchall()
        return dict(rows)

    def get(self, dataset: str) -> Snapshot | None:
        with self._connection() as conn, self._read(conn):
            row = conn.execute(
                "SELECT version, created_at, meta FROM snapshots WHERE dataset = ? ORDER BY version DESC LIMIT 1",
                (dataset,),
            ).fetchone()
            if row is None:
                return None
            version, created_at, meta_json = row
            payloads = dict(
                conn.execute(
                    "SELECT f.name, b.payload FROM snapshot_frames AS f JOIN frame_blobs AS b ON b.digest = f.digest "
                    "WHERE f.dataset = ? AND f.version = ?",
                    (dataset, version),
                ).fetchall()
            )
        return _snapshot(dataset, version, datetime.fromisoformat(created_at), meta_json, payloads)

    # -- status and locks ------------------------------------------------------------------------

    def put_status(self, name: str, status: dict[str, Any]) -> None:
        with self._connection() as conn:
            conn.execute(
                "INSERT INTO status (name, json, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET json = excluded.json, updated_at = excluded.updated_at",
                (name, encode_meta(status), _utc_now().isoformat()),
            )

    def get_status(self, name: str) -> dict[str, Any] | None:
        with self._connection() as conn:
            row = conn.execute("SELECT json FROM status WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else None

    def acquire_lock(self, name: str, owner: str, ttl_seconds: float) -> bool:
        now = time.time()
        with self._connection() as conn, self._write(conn):
            claimed = conn.execute(
                "INSERT INTO locks (name, owner, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at "
                "WHERE locks.owner = excluded.owner OR locks.expires_at <= ?",
                (name, owner, now + ttl_seconds, now),
            ).rowcount
        return claimed == 1

    def release_lock(self, name: str, owner: str) -> None:
        with self._connection() as conn:
            conn.execute("DELETE FROM locks WHERE name = ? AND owner = ?", (name, owner))


def _snapshot(dataset: str, version: int, created_at: datetime, meta_json: str, payloads: dict[str, bytes]) -> Snapshot:
    return Snapshot(
        dataset=dataset,
        version=version,
        created_at=created_at,
        meta=json.loads(meta_json),
        frames=LazyFrames(payloads),
    )


PART_SEPARATOR = "@"
"""A frame may be stored in parts named ``<frame>@<part>`` (the poller cuts its history by period so
that a poll re-encodes and rewrites only the periods it changed); readers see one frame."""


class LazyFrames(Mapping[str, pd.DataFrame]):
    """Frames decoded on first access (parts joined): a card reading one frame does not pay for five,
    and the poller, which only wants the new version, decodes nothing."""

    def __init__(self, payloads: dict[str, bytes]) -> None:
        self._payloads = payloads
        self._decoded: dict[str, pd.DataFrame] = {}
        self._names = list(dict.fromkeys(name.split(PART_SEPARATOR, 1)[0] for name in payloads))

    def __getitem__(self, name: str) -> pd.DataFrame:
        found = self._decoded.get(name)
        if found is not None:
            return found
        if name in self._payloads:
            found = decode_frame(self._payloads[name])
        else:
            prefix = name + PART_SEPARATOR
            parts = [decode_frame(payload) for key, payload in sorted(self._payloads.items()) if key.startswith(prefix)]
            if not parts:
                raise KeyError(name)
            found = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        self._decoded[name] = found
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def fingerprint(self) -> str:
        """A digest of every stored frame's bytes: equal digests, equal frames (whatever the version says)."""
        digest = hashlib.blake2b(digest_size=16)
        for name in sorted(self._payloads):
            digest.update(name.encode("utf-8") + b"\0")
            digest.update(hashlib.blake2b(self._payloads[name], digest_size=16).digest())
        return digest.hexdigest()


_REDIS_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return 1
end
return 0
"""

_REDIS_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisSnapshotStore:
    """Snapshots in Redis, for several web workers or hosts.

    Keys under ``prefix``: ``versions`` (hash dataset -> latest version, so ``versions()`` is one
    HGETALL), ``snapshot:<dataset>:<version>`` (hash: meta, created_at and one ``frame:<name>`` field
    per encoded frame), ``history:<dataset>`` (sorted set of kept versions), ``status:<name>`` and
    ``lock:<name>``. A put writes the snapshot and publishes its version in one MULTI/EXEC guarded by
    WATCH, so versions never repeat and a published version always has its data.
    """

    def __init__(self, url: str, *, prefix: str = "ioc", keep_versions: int = 3) -> None:
        self.prefix = prefix
        self.keep_versions = _check_keep_versions(keep_versions)
        self._client = redis.Redis.from_url(url)
        self._acquire = self._client.register_script(_REDIS_ACQUIRE)
        self._release = self._client.register_script(_REDIS_RELEASE)

    def _key(self, *parts: str | int) -> str:
        return ":".join([self.prefix, *map(str, parts)])

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def put(self, dataset: str, meta: dict[str, Any], frames: dict[str, pd.DataFrame | EncodedFrame]) -> Snapshot:
        meta_json = encode_meta(meta)
        payloads = {name: encode_frame(frame) for name, frame in frames.items()}
        created_at = _utc_now()
        versions_key, history_key = self._key("versions"), self._key("history", dataset)
        fields: dict[str, str | bytes] = {"meta": meta_json, "created_at": created_at.isoformat()}
        fields.update({f"frame:{name}": payload for name, payload in payloads.items()})
        with self._client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(versions_key, history_key)
                    previous = pipe.hget(versions_key, dataset)
                    version = int(previous or 0) + 1
                    expired = [int(v) for v in pipe.zrangebyscore(history_key, "-inf", version - self.keep_versions)]
                    pipe.multi()
                    pipe.hset(self._key("snapshot", dataset, version), mapping=fields)
                    pipe.zadd(history_key, {str(version): version})
                    pipe.hset(versions_key, dataset, version)
                    if expired:
                        pipe.delete(*(self._key("snapshot", dataset, v) for v in expired))
                        pipe.zrem(history_key, *map(str, expired))
                    pipe.execute()
                    break
                except redis.WatchError:  # another writer published first: take the next version
                    continue
        return _snapshot(dataset, version, created_at, meta_json, payloads)

    def version(self, dataset: str) -> int | None:
        found = self._client.hget(self._key("versions"), dataset)
        return int(cast(bytes, found)) if found is not None else None

    def versions(self) -> dict[str, int]:
        found = cast(dict[bytes, bytes], self._client.hgetall(self._key("versions")))
        return {name.decode(): int(version) for name, version in found.items()}

    def get(self, dataset: str) -> Snapshot | None:
        version = self.version(dataset)
        while version is not None:
            fields = cast(dict[bytes, bytes], self._client.hgetall(self._key("snapshot", dataset, version)))
            if fields:
                payloads = {
                    key.decode().removeprefix("frame:"): value
                    for key, value in fields.items()
                    if key.startswith(b"frame:")
                }
                created_at = datetime.fromisoformat(fields[b"created_at"].decode())
                return _snapshot(dataset, version, created_at, fields[b"meta"].decode(), payloads)
            # Pruned by newer puts between the two reads: read the newest one. Unchanged means the
            # data was deleted behind the store's back.
            latest = self.version(dataset)
            version = latest if latest != version else None
        return None

    def put_status(self, name: str, status: dict[str, Any]) -> None:
        self._client.set(self._key("status", name), encode_meta(status))

    def get_status(self, name: str) -> dict[str, Any] | None:
        found = self._client.get(self._key("status", name))
        return json.loads(cast(bytes, found)) if found is not None else None

    def acquire_lock(self, name: str, owner: str, ttl_seconds: float) -> bool:
        ttl_ms = max(1, round(ttl_seconds * 1000))
        return bool(self._acquire(keys=[self._key("lock", name)], args=[owner, ttl_ms]))

    def release_lock(self, name: str, owner: str) -> None:
        self._release(keys=[self._key("lock", name)], args=[owner])


_STORE_SCHEMES = "sqlite:///path.db, redis://host:port/db?prefix=name (or rediss://), memory://"


def open_snapshot_store(url: str) -> SnapshotStore:
    """The store a URL names.

    ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (SQLAlchemy's convention),
    ``redis://host:port/db?prefix=ioc`` or ``rediss://...``, ``memory://`` (a new, process-local
    store). ``keep_versions`` may be given as a query parameter to the SQLite and Redis stores.
    """
    parts = urlsplit(url)
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    keep_versions = int(query.pop("keep_versions", 3))
    if parts.scheme == "sqlite":
        path = unquote(parts.path[1:])
        if parts.netloc or not path or path == ":memory:":
            raise ValueError(f"snapshot store URL needs a file path, like sqlite:///var/snapshots.db: {url!r}")
        return SQLiteSnapshotStore(path, keep_versions=keep_versions)
    if parts.scheme in ("redis", "rediss"):
        prefix = query.pop("prefix", "ioc")
        redis_url = urlunsplit(parts._replace(query=urlencode(query)))
        return RedisSnapshotStore(redis_url, prefix=prefix, keep_versions=keep_versions)
    if parts.scheme == "memory":
        return MemorySnapshotStore()
    raise ValueError(f"unknown snapshot store URL scheme {parts.scheme!r} in {url!r}; accepted: {_STORE_SCHEMES}")
