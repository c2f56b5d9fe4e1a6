"""Alert evaluation after a poll: 1,000 rules over the 40 Huế wards, against the issue's 200 ms target.

    python bench/alerts.py [--scale 0.1] [--rules 1000] [--repeat 5] [--postgres] [--dataset feedback]

Builds (once, cached in bench/.cache/) a demo warehouse, polls the ``feedback`` dataset into a
snapshot store, stores N rules on its KPIs (60 % "each ward", 30 % "one ward", 10 % province;
thresholds drawn around each KPI's own spread so a few per cent of subjects breach), then times
``AlertEngine.evaluate_dataset`` — exactly what the poller's after-poll hook runs: read the rules,
read the snapshot, compute the KPI per subject, load states, evaluate, write changes and events,
queue notifications. Three situations:

* cold:   the first evaluation, every breaching subject fires at once (many inserts);
* steady: the next polls, the data unchanged (nothing to write);
* moved:  the data moved: a share of alerts resolve and others fire.

Prints the median of ``--repeat`` runs next to the target.

``--dataset`` with entities (``traffic_readings``, ``env_air``, ...) times per-entity rules instead:
60 % each station/segment, 30 % each ward, 10 % province, on the KPIs kept per entity; "moved" then
scales the first measure of every KPI in the fine buckets too.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import delete, func, select  # noqa: E402

from config.datasets import load_datasets  # noqa: E402
from data_sources.admin_units import crosswalk as unit_crosswalk  # noqa: E402
from data_sources.admin_units import current_units  # noqa: E402
from data_sources.alerts.engine import AlertEngine  # noqa: E402
from data_sources.alerts.model import Rule, Threshold, kpi_has_entity_detail  # noqa: E402
from data_sources.alerts.store import save_rule  # noqa: E402
from data_sources.alerts.tables import (  # noqa: E402
    alert_deliveries,
    alert_events,
    alert_rules,
    alert_states,
    create_alert_schema,
)
from data_sources.alerts.values import SubjectValues  # noqa: E402
from data_sources.clock import LOCAL_TZ  # noqa: E402
from data_sources.scheduler import Poller  # noqa: E402
from data_sources.snapshots import MemorySnapshotStore, Snapshot  # noqa: E402
from data_sources.warehouse import create_warehouse_engine  # noqa: E402

TARGET_MS = 200.0
DATASET = "feedback"
CACHE = Path(__file__).resolve().parent / ".cache"
NOW = pd.Timestamp("2026-11-20 15:30", tz=LOCAL_TZ).to_pydatetime()


def warehouse(scale: float) -> str:
    from data_sources.demo.generate import generate_warehouse

    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"alerts-warehouse-{scale}.db"
    if not path.exists():
        generate_warehouse(f"sqlite:///{path}", now=NOW, scale=scale, start=(NOW - timedelta(days=40)).date())
    return f"sqlite:///{path}"


def make_rules(count: int, values: SubjectValues, wards: list[str], seed: int = 6) -> list[Rule]:
    """Rules on every KPI of the dataset (per entity: the KPIs kept per entity), thresholds near the top
    of each KPI's spread over wards (or entities)."""
    rng = random.Random(seed)
    dataset = values.dataset
    per_entity = dataset.entity is not None
    kpis = [k for k in dataset.kpis if kpi_has_entity_detail(dataset, k)] if per_entity else list(dataset.kpis)
    rules = []
    for index in range(count):
        kpi = kpis[index % len(kpis)]
        rising = kpi.good == "down"
        quantile = rng.uniform(0.95, 0.999) if rising else rng.uniform(0.001, 0.05)
        draw = rng.random()
        if per_entity:
            scope, ward = (
                ("each_entity", None) if draw < 0.6 else ("each_ward", None) if draw < 0.9 else ("province", None)
            )
        else:
            scope, ward = (
                ("each_ward", None) if draw < 0.6 else ("ward", rng.choice(wards)) if draw < 0.9 else ("province", None)
            )
        found = values.by_entity(kpi) if scope == "each_entity" else values.by_ward(kpi)
        spread = sorted(v for v in found.values() if v is not None) or [0.0]
        warning = spread[min(len(spread) - 1, int(quantile * len(spread)))]
        step = max(abs(warning) * 0.2, 1.0)
        critical = warning + step if rising else warning - step
        if scope == "province":
            province = values.province(kpi) or 0.0
            warning = province * (0.9 if rising else 1.1)
            critical = province * (1.3 if rising else 0.7) + (1 if rising else -1)
        rules.append(
            Rule(
                name=f"bench {index}",
                dataset=dataset.id,
                kpi=kpi.id,
                scope=scope,
                ward=ward,
                comparator=">" if rising else "<",
                warning=Threshold(warning),
                critical=Threshold(critical),
                hold_minutes=rng.choice((0, 0, 5, 15)),
                clear_margin=step / 4,
                no_data="keep",
                owner="bench",
                targets=("https://hook.example.vn/ioc",) if index % 10 == 0 else (),
            )
        )
    return rules


def moved(snapshot: Snapshot, factor: float, numerators: set[str]) -> Snapshot:
    """The same snapshot with every state count and, in the fine buckets, the KPIs' first measures scaled
    (data that moved between polls)."""
    frames = dict(snapshot.frames)
    state = frames["state"].copy()
    for column in state.columns:
        if column not in ("unit", "entity"):
            state[column] = (state[column] * factor).round()
    frames["state"] = state
    recent = frames["recent"].copy()
    for column in numerators & set(recent.columns):
        recent[column] = recent[column] * factor
    frames["recent"] = recent
    return Snapshot(snapshot.dataset, snapshot.version + 1, snapshot.created_at, snapshot.meta, frames)


def run(app_db_url: str, label: str, args) -> list[tuple[str, float, int, int, int]]:
    catalogue = load_datasets()
    store = MemorySnapshotStore()
    Poller(catalogue, create_warehouse_engine(warehouse(args.scale)), store, lambda: NOW).poll_all()
    units = current_units("46")
    wards = list(units["code"])
    crosswalk = unit_crosswalk("46")
    dataset = catalogue.get(args.dataset)
    snapshot = store.get(args.dataset)
    numerators = {k.measures[0] for k in dataset.kpis if k.measures} if dataset.entity else set()
    app_db = create_warehouse_engine(app_db_url)
    create_alert_schema(app_db)
    with app_db.begin() as connection:
        for table in (alert_deliveries, alert_events, alert_states, alert_rules):
            connection.execute(delete(table))
    values = SubjectValues(dataset, snapshot, NOW, crosswalk, wards)
    for rule in make_rules(args.rules, values, wards):
        save_rule(app_db, rule, actor="bench", now=NOW)
    engine = AlertEngine(app_db, store, catalogue, crosswalk, wards, lambda: NOW)
    subjects = None

    def clear_states() -> None:
        with app_db.begin() as connection:
            for table in (alert_deliveries, alert_events, alert_states):
                connection.execute(delete(table))

    def at(minutes: int, base: Snapshot = snapshot) -> tuple:
        now = NOW + timedelta(minutes=minutes)
        return now, Snapshot(base.dataset, base.version, base.created_at, {"polled_at": now.isoformat()}, base.frames)

    results = []
    for situation in ("cold", "steady", "moved"):
        timings, changes = [], 0
        for repeat in range(args.repeat):
            clear_states()
            if situation != "cold":  # settle: first poll fires, the next fires what was held
                for minutes in (0, 30):
                    now, current = at(minutes)
                    engine.evaluate_dataset(args.dataset, now=now, snapshot=current)
            factor = 0.6 if repeat % 2 else 1.5
            base = moved(snapshot, factor, numerators) if situation == "moved" else snapshot
            now, current = at(60 if situation != "cold" else 0, base)
            started = time.perf_counter()
            report = engine.evaluate_dataset(args.dataset, now=now, snapshot=current)
            timings.append((time.perf_counter() - started) * 1000)
            changes = report.changes
            subjects = report.subjects
        with app_db.connect() as connection:
            live = connection.execute(
                select(func.count()).select_from(alert_states).where(alert_states.c.state.in_(("firing", "pending")))
            ).scalar_one()
        results.append((f"{label} {situation}", statistics.median(timings), changes, subjects, live))
    app_db.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--postgres", action="store_true", help="also with the app database on PostgreSQL")
    parser.add_argument("--dataset", default=DATASET, help="dataset whose rules are timed (with entities: per entity)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        rows += run(f"sqlite:///{folder}/app.db", "SQLite app DB", args)
    if args.postgres:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from tests.conftest import create_postgres_database, drop_postgres_database

        name, url = create_postgres_database()
        try:
            rows += run(url, "PostgreSQL app DB", args)
        finally:
            drop_postgres_database(name)
    print(f"\nAlert evaluation after one poll of '{args.dataset}': {args.rules} rules, 40 wards, scale {args.scale}")
    header = f"{'situation':<30} {'median ms':>10} {'target ms':>10} {'changes':>8} {'subjects':>9} {'active':>7}"
    print(header + "  verdict")
    for name, median, changes, subjects, live in rows:
        verdict = "ok" if median < TARGET_MS else "OVER TARGET"
        print(f"{name:<30} {median:>10.1f} {TARGET_MS:>10.0f} {changes:>8} {subjects:>9} {live:>7}  {verdict}")


if __name__ == "__main__":
    main()
