"""Snapshot stores: one behaviour on memory, SQLite and Redis, and SQLite and Redis shared by processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime
from multiprocessing.managers import SyncManager
from pathlib import Path
from typing import Any
from uuid import uuid4

import numpy as np
import pandas as pd
import pytest
import redis
from pandas.testing import assert_frame_equal

from data_sources.snapshots import (
    MemorySnapshotStore,
    RedisSnapshotStore,
    SnapshotStore,
    SQLiteSnapshotStore,
    open_snapshot_store,
)

REDIS_URL = "redis://127.0.0.1:6379/0"
SPAWN = multiprocessing.get_context("spawn")
PROCESS_TIMEOUT = 60


def wards_frame(rows: int = 3) -> pd.DataFrame:
    """A frame with the column types the dashboards use, Vietnamese text included."""
    names = ["Phường Thuận Hóa", "Xã Phú Vang", "Phường Kinh Bắc"]
    return pd.DataFrame(
        {
            "ward_code": [f"{22000 + i}" for i in range(rows)],
            "ward_name": [names[i % 3] for i in range(rows)],
            "incidents": np.arange(rows, dtype="int64"),
            "rainfall_mm": np.linspace(0.5, 80.0, rows),
            "flooded": [i % 2 == 0 for i in range(rows)],
            "observed_at": pd.date_range("2025-07-01 06:00", periods=rows, freq="h", tz="Asia/Ho_Chi_Minh"),
        }
    )


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        client.close()
        pytest.fail(f"no Redis server at {REDIS_URL}: the suite needs one (see README)")
    prefix = f"ioc-test-{uuid4().hex}"
    yield prefix
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty store of each kind."""
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/snapshots.db"
    return f"{REDIS_URL}?prefix={request.getfixturevalue('redis_prefix')}"


@pytest.fixture
def store(store_url: str) -> Iterator[SnapshotStore]:
    opened = open_snapshot_store(store_url)
    yield opened
    if isinstance(opened, SQLiteSnapshotStore | RedisSnapshotStore):
        opened.close()


class TestVersions:
    def test_unknown_dataset_has_no_version_and_no_snapshot(self, store: SnapshotStore) -> None:
        assert store.version("rainfall") is None
        assert store.get("rainfall") is None
        assert store.versions() == {}

    def test_first_put_is_version_one_and_each_put_adds_one(self, store: SnapshotStore) -> None:
        returned = [store.put("rainfall", {"i": i}, {"wards": wards_frame()}).version for i in range(4)]

        assert returned == [1, 2, 3, 4]
        assert store.version("rainfall") == 4

    def test_datasets_are_versioned_independently_and_listed_together(self, store: SnapshotStore) -> None:
        for _ in range(3):
            store.put("rainfall", {}, {"wards": wards_frame()})
        store.put("traffic", {}, {})

        assert store.versions() == {"rainfall": 3, "traffic": 1}


class TestGet:
    def test_get_returns_equal_frames_and_meta_of_the_latest_put(self, store: SnapshotStore) -> None:
        store.put("rainfall", {"rows": 2}, {"wards": wards_frame(2)})
        meta = {"rows": 5, "source": "Trạm đo mưa", "as_of": date(2025, 7, 1), "total": np.int64(7)}
        store.put("rainfall", meta, {"wards": wards_frame(5), "empty": pd.DataFrame({"x": []})})

        snapshot = store.get("rainfall")

        assert snapshot is not None
        assert snapshot.version == 2
        assert snapshot.meta == {"rows": 5, "source": "Trạm đo mưa", "as_of": "2025-07-01", "total": 7}
        assert set(snapshot.frames) == {"wards", "empty"}
        assert_frame_equal(snapshot.frame("wards"), wards_frame(5))
        assert snapshot.frame("empty").empty

    def test_put_returns_the_snapshot_readers_get(self, store: SnapshotStore) -> None:
        written = store.put("rainfall", {"rows": 3}, {"wards": wards_frame()})
        read = store.get("rainfall")

        assert read is not None
        assert (read.dataset, read.version, read.meta) == (written.dataset, written.version, written.meta)
        assert_frame_equal(read.frame("wards"), written.frame("wards"))

    def test_created_at_is_an_aware_time_of_the_put(self, store: SnapshotStore) -> None:
        before = datetime.now(UTC)
        store.put("rainfall", {}, {})
        snapshot = store.get("rainfall")

        assert snapshot is not None
        assert snapshot.created_at.tzinfo is not None
        assert before <= snapshot.created_at <= datetime.now(UTC)


class TestStatus:
    def test_status_round_trips_and_the_last_write_wins(self, store: SnapshotStore) -> None:
        assert store.get_status("poller") is None

        store.put_status("poller", {"healthy": True, "beat": datetime(2025, 7, 1, 8, 0, tzinfo=UTC)})
        store.put_status("poller", {"healthy": False, "error": "Kho dữ liệu không phản hồi"})

        assert store.get_status("poller") == {"healthy": False, "error": "Kho dữ liệu không phản hồi"}


class TestLocks:
    def test_second_owner_is_refused_while_the_lock_is_held(self, store: SnapshotStore) -> None:
        assert store.acquire_lock("poller", "host-a", ttl_seconds=30)
        assert not store.acquire_lock("poller", "host-b", ttl_seconds=30)
        assert store.acquire_lock("other-job", "host-b", ttl_seconds=30)

    def test_another_owner_gets_the_lock_after_it_expires(self, store: SnapshotStore) -> None:
        assert store.acquire_lock("poller", "host-a", ttl_seconds=0.2)
        time.sleep(0.35)

        assert store.acquire_lock("poller", "host-b", ttl_seconds=30)
        assert not store.acquire_lock("poller", "host-a", ttl_seconds=30)

    def test_owner_renewing_extends_the_lock(self, store: SnapshotStore) -> None:
        assert store.acquire_lock("poller", "host-a", ttl_seconds=0.2)
        time.sleep(0.1)
        assert store.acquire_lock("poller", "host-a", ttl_seconds=30)
        time.sleep(0.25)

        assert not store.acquire_lock("poller", "host-b", ttl_seconds=30)

    def test_only_the_owner_can_release(self, store: SnapshotStore) -> None:
        store.acquire_lock("poller", "host-a", ttl_seconds=30)

        store.release_lock("poller", "host-b")
        assert not store.acquire_lock("poller", "host-b", ttl_seconds=30)

        store.release_lock("poller", "host-a")
        assert store.acquire_lock("poller", "host-b", ttl_seconds=30)

    def test_releasing_a_lock_nobody_holds_does_nothing(self, store: SnapshotStore) -> None:
        store.release_lock("poller", "")
        assert store.acquire_lock("poller", "host-a", ttl_seconds=30)


class TestPruning:
    def test_sqlite_keeps_only_the_newest_versions_and_their_frames(self, tmp_path: Path) -> None:
        store = SQLiteSnapshotStore(tmp_path / "snapshots.db", keep_versions=2)
        for _ in range(5):
            store.put("rainfall", {}, {"wards": wards_frame(), "stations": wards_frame(1)})
        store.put("traffic", {}, {"roads": wards_frame()})
        store.close()

        with sqlite3.connect(tmp_path / "snapshots.db") as db:
            kept = db.execute("SELECT dataset, version FROM snapshots ORDER BY 1, 2").fetchall()
            frames = db.execute("SELECT DISTINCT dataset, version FROM snapshot_frames ORDER BY 1, 2").fetchall()
        db.close()
        assert kept == [("rainfall", 4), ("rainfall", 5), ("traffic", 1)]
        assert frames == kept

    def test_sqlite_stores_an_unchanged_frame_once_and_drops_bytes_no_version_uses(self, tmp_path: Path) -> None:
        store = SQLiteSnapshotStore(tmp_path / "snapshots.db", keep_versions=2)
        for rows in (3, 3, 3, 2, 1):  # "wards" changes twice; "stations" never
            store.put("rainfall", {}, {"wards": wards_frame(rows), "stations": wards_frame(5)})
        assert_frame_equal(store.get("rainfall").frame("wards"), wards_frame(1))
        store.close()

        with sqlite3.connect(tmp_path / "snapshots.db") as db:
            blobs = db.execute("SELECT count(*) FROM frame_blobs").fetchone()[0]
        db.close()
        assert blobs == 3, "versions 4 and 5 hold wards(2), wards(1) and the one stations frame"

    def test_a_store_file_of_the_inline_frame_layout_is_rebuilt(self, tmp_path: Path) -> None:
        with sqlite3.connect(tmp_path / "snapshots.db") as db:
            db.execute("CREATE TABLE snapshots (dataset TEXT, version INTEGER, created_at TEXT, meta TEXT)")
            db.execute("CREATE TABLE snapshot_frames (dataset TEXT, version INTEGER, name TEXT, payload BLOB)")
            db.execute("INSERT INTO snapshots VALUES ('rainfall', 7, '2026-01-01T00:00:00+00:00', '{}')")
        db.close()
        store = SQLiteSnapshotStore(tmp_path / "snapshots.db")
        assert store.version("rainfall") is None, "old snapshots are dropped; the poller republishes"
        assert store.put("rainfall", {}, {"wards": wards_frame()}).version == 1
        store.close()

    def test_redis_keeps_only_the_newest_versions(self, redis_prefix: str) -> None:
        store = RedisSnapshotStore(REDIS_URL, prefix=redis_prefix, keep_versions=2)
        for _ in range(5):
            store.put("rainfall", {}, {"wards": wards_frame()})
        store.close()

        client = redis.Redis.from_url(REDIS_URL)
        snapshot_keys = sorted(key.decode() for key in client.scan_iter(f"{redis_prefix}:snapshot:*"))
        client.close()
        assert snapshot_keys == [f"{redis_prefix}:snapshot:rainfall:4", f"{redis_prefix}:snapshot:rainfall:5"]

    def test_keeping_no_version_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="keep_versions"):
            SQLiteSnapshotStore(tmp_path / "snapshots.db", keep_versions=0)


class TestOpenSnapshotStore:
    def test_sqlite_url_with_absolute_path_creates_parent_folders(self, tmp_path: Path) -> None:
        store = open_snapshot_store(f"sqlite:///{tmp_path}/var/cache/snapshots.db?keep_versions=5")
        store.put("rainfall", {}, {})

        assert isinstance(store, SQLiteSnapshotStore)
        assert store.keep_versions == 5
        assert (tmp_path / "var" / "cache" / "snapshots.db").is_file()
        store.close()

    def test_sqlite_url_with_relative_path_is_relative_to_the_working_folder(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        store = open_snapshot_store("sqlite:///var/snapshots.db")
        store.put("rainfall", {}, {})

        assert isinstance(store, SQLiteSnapshotStore)
        assert (tmp_path / "var" / "snapshots.db").is_file()
        store.close()

    @pytest.mark.redis
    def test_redis_url_prefix_names_the_keys(self, redis_prefix: str) -> None:
        store = open_snapshot_store(f"{REDIS_URL}?prefix={redis_prefix}")
        store.put_status("poller", {"healthy": True})

        client = redis.Redis.from_url(REDIS_URL)
        assert client.exists(f"{redis_prefix}:status:poller")
        client.close()
        assert isinstance(store, RedisSnapshotStore)
        store.close()

    def test_redis_url_without_prefix_uses_ioc(self) -> None:
        store = open_snapshot_store("redis://127.0.0.1:6379/0")

        assert isinstance(store, RedisSnapshotStore)
        assert store.prefix == "ioc"
        store.close()

    def test_memory_url_gives_a_memory_store(self) -> None:
        assert isinstance(open_snapshot_store("memory://"), MemorySnapshotStore)

    @pytest.mark.parametrize("url", ["postgresql://localhost/ioc", "snapshots.db", "file:///tmp/x.db"])
    def test_unknown_scheme_is_refused_with_the_accepted_ones(self, url: str) -> None:
        with pytest.raises(ValueError, match=r"scheme .* accepted: sqlite:///.*redis://.*memory://"):
            open_snapshot_store(url)

    @pytest.mark.parametrize("url", ["sqlite:///:memory:", "sqlite://", "sqlite://host/snapshots.db"])
    def test_sqlite_url_without_a_file_path_is_refused(self, url: str) -> None:
        with pytest.raises(ValueError, match="file path"):
            open_snapshot_store(url)


# -- several processes ---------------------------------------------------------------------------
# Workers run in separate 'spawn' processes from one pool shared by these tests (starting a process
# costs a pandas import), and meet at barriers from a multiprocessing manager.


def _write(url: str, puts: int, start: Any) -> list[int]:
    store = open_snapshot_store(url)
    start.wait()
    return [store.put("rainfall", {"rows": 10}, {"wards": wards_frame(10)}).version for _ in range(puts)]


def _write_varied(url: str, puts: int, start: Any) -> int:
    store = open_snapshot_store(url)
    start.wait()
    for tag in range(puts):
        rows, names = 100 + 97 * (tag % 10), [f"part{k}" for k in range(1 + tag % 3)]
        frames = {name: wards_frame(rows).assign(tag=tag) for name in names}
        store.put("rainfall", {"rows": rows, "frames": names, "tag": tag}, frames)
    return puts


def _read_until(url: str, start: Any, done: Any) -> tuple[set[int], list[str]]:
    store = open_snapshot_store(url)
    start.wait()
    seen, problems, last_version = set(), [], 0
    while not done.is_set():
        snapshot = store.get("rainfall")
        if snapshot is None:
            if last_version:
                problems.append(f"no snapshot after v{last_version}")
            continue
        seen.add(snapshot.version)
        meta = snapshot.meta
        if snapshot.version < last_version:
            problems.append(f"version went back from {last_version} to {snapshot.version}")
        last_version = snapshot.version
        if sorted(snapshot.frames) != sorted(meta["frames"]):
            problems.append(f"v{snapshot.version}: frames {sorted(snapshot.frames)} != {meta['frames']}")
        for name, frame in snapshot.frames.items():
            if len(frame) != meta["rows"] or set(frame["tag"]) != {meta["tag"]}:
                problems.append(f"v{snapshot.version}: frame {name} does not match its meta")
    return seen, problems


def _claim_locks(url: str, owner: str, rounds: int, start: Any) -> list[bool]:
    store = open_snapshot_store(url)
    won = []
    for round_ in range(rounds):
        start.wait()
        won.append(store.acquire_lock(f"poller-{round_}", owner, ttl_seconds=30))
    return won


def _latest_version(url: str) -> int | None:
    store = open_snapshot_store(url)
    try:
        return store.version("rainfall")
    finally:
        if isinstance(store, SQLiteSnapshotStore | RedisSnapshotStore):
            store.close()


RACERS = 4


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    with ProcessPoolExecutor(max_workers=RACERS, mp_context=SPAWN) as executor:
        yield executor


@pytest.fixture(scope="module")
def manager() -> Iterator[SyncManager]:
    with SPAWN.Manager() as started:
        yield started


def _in_parallel(pool: ProcessPoolExecutor, *jobs: tuple[Any, ...]) -> list[Any]:
    """Run each (work, *args) at once in separate processes; their results in order, or their error."""
    futures = [pool.submit(*job) for job in jobs]
    return [future.result(timeout=PROCESS_TIMEOUT) for future in futures]


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL that several processes open on their own; nothing is created beforehand."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/shared/snapshots.db"
    return f"{REDIS_URL}?prefix={request.getfixturevalue('redis_prefix')}"


class TestSeveralProcesses:
    def test_concurrent_writers_never_repeat_or_skip_a_version(
        self, shared_url: str, pool: ProcessPoolExecutor, manager: SyncManager
    ) -> None:
        start = manager.Barrier(2, timeout=PROCESS_TIMEOUT)

        first, second = _in_parallel(pool, (_write, shared_url, 30, start), (_write, shared_url, 30, start))

        assert sorted(first + second) == list(range(1, 61))
        assert first == sorted(first)
        assert second == sorted(second)
        assert _latest_version(shared_url) == 60

    def test_reader_only_ever_sees_complete_snapshots_while_a_writer_writes(
        self, shared_url: str, pool: ProcessPoolExecutor, manager: SyncManager
    ) -> None:
        start, done = manager.Barrier(2, timeout=PROCESS_TIMEOUT), manager.Event()
        reader = pool.submit(_read_until, shared_url, start, done)
        try:
            _in_parallel(pool, (_write_varied, shared_url, 60, start))
        finally:
            done.set()
        versions_seen, problems = reader.result(timeout=PROCESS_TIMEOUT)

        assert len(versions_seen) > 1, "the reader should have read while the writer wrote"
        assert problems == []

    def test_exactly_one_of_several_processes_racing_for_a_lock_wins(
        self, shared_url: str, pool: ProcessPoolExecutor, manager: SyncManager
    ) -> None:
        rounds = 20
        start = manager.Barrier(RACERS, timeout=PROCESS_TIMEOUT)

        outcomes = _in_parallel(
            pool, *[(_claim_locks, shared_url, f"worker-{i}", rounds, start) for i in range(RACERS)]
        )

        assert [sum(won[round_] for won in outcomes) for round_ in range(rounds)] == [1] * rounds
