"""Rollup buckets are whole buckets of the configured size on every dialect (regression: SQLite
divided epoch seconds with SQLAlchemy 2's true division, so every distinct timestamp was a bucket)."""

from __future__ import annotations

from datetime import timedelta

from config.datasets import load_datasets
from data_sources.demo.generate import generate_warehouse
from data_sources.poller import BUCKET, DatasetPoller
from data_sources.snapshots import MemorySnapshotStore
from data_sources.warehouse import create_warehouse_engine
from tests.conftest import FIXED_NOW


def test_rollup_buckets_are_multiples_of_the_bucket_and_hold_several_readings(warehouse_url):
    generate_warehouse(warehouse_url, now=FIXED_NOW, scale=0.02, start=(FIXED_NOW - timedelta(days=2)).date())
    engine = create_warehouse_engine(warehouse_url)
    try:
        dataset = load_datasets().get("env_air")  # 10-minute readings in 1-hour buckets
        poller = DatasetPoller(dataset, engine, MemorySnapshotStore(), lambda: FIXED_NOW)
        assert poller.poll().error is None
        rollup = poller.rollup_frames()["recent"]
        assert (rollup[BUCKET] % dataset.bucket_seconds == 0).all()
        assert rollup["_rows"].max() == 6
    finally:
        engine.dispose()
