"""Alert evaluation after a poll: 1,000 rules over the 40 Huế wards, against the issue's 200 ms target.

    python bench/alerts.py [--scale 0.1] [--rules 1000] [--repeat 5] [--postgres] [--dataset feedback]
    python bench/alerts.py --baseline-dir /work/main [--rounds 2] [--repeat 5] [--postgres] [--dataset ...]
    python bench/alerts.py --by-entity-cost [--repeat 7]

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

``--baseline-dir DIR`` runs the same command (this script with the same options) in a subprocess on
another checkout first, then on this one, ``--rounds`` times alternately, and prints both columns side
by side (each cell the median over the rounds) with the machine's load average around every run and
where each checkout's ``data_sources`` was imported from. The other checkout needs no virtualenv: its
own ``bench/alerts.py`` puts its tree first on ``sys.path`` (it builds its own cached warehouse in its
``bench/.cache/`` the first time).

``--dataset`` with entities (``traffic_readings``, ``env_air``, ...) times per-entity rules instead:
60 % each station/segment, 30 % each ward, 10 % province, on the KPIs kept per entity; "moved" then
scales the first measure of every KPI in the fine buckets too.

``--by-entity-cost`` prices ``by_entity = true`` (the per-entity hourly rollup that 7-day previews of
per-entity rules replay) on the full-scale demo warehouse (40 days, cached): for every dataset with
entities, with the flag off and on, the rows, pandas memory and stored (Arrow IPC) size of
``hourly_entity``, the first (full) poll, the median poll that re-reads the newest 10 minutes
(``--repeat`` polls), and on, the 7-day preview of a per-entity rule.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dataclasses import replace  # noqa: E402

from sqlalchemy import delete, func, select, text  # noqa: E402

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
from data_sources.alerts.values import HOURLY_ENTITY, SubjectValues, preview  # noqa: E402
from data_sources.clock import LOCAL_TZ  # noqa: E402
from data_sources.poller import DatasetPoller  # noqa: E402
from data_sources.quality import QualityRules  # noqa: E402
from data_sources.scheduler import Poller  # noqa: E402
from data_sources.snapshots import MemorySnapshotStore, Snapshot, SQLiteSnapshotStore, encode_frame  # noqa: E402
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


def by_entity_cost(args) -> None:
    """Print what ``by_entity = true`` costs per dataset with entities (see the module docstring)."""
    source = Path(warehouse(1.0).removeprefix("sqlite:///"))
    base = load_datasets()
    units = current_units("46")
    wards, crosswalk = list(units["code"]), unit_crosswalk("46")
    print("\nby_entity on the full-scale demo warehouse (40 days):")
    print(
        f"{'dataset':<18} {'by_entity':>9} {'entities':>8} {'rows':>7} {'memory MB':>9} {'stored MB':>9}"
        f" {'1st poll ms':>11} {'poll ms':>8} {'preview ms':>10}"
    )
    for flag in (False, True):
        datasets = tuple(replace(d, by_entity=flag) if d.entity else d for d in base)
        catalogue = replace(base, datasets=datasets)
        with tempfile.TemporaryDirectory() as folder:
            copy = Path(folder) / "warehouse.db"
            shutil.copy(source, copy)
            engine = create_warehouse_engine(f"sqlite:///{copy}")
            store = SQLiteSnapshotStore(Path(folder) / "snapshots.db")
            for dataset in (d for d in catalogue if d.entity):
                clock = [NOW]
                poller = DatasetPoller(dataset, engine, store, lambda clock=clock: clock[0], QualityRules())
                started = time.perf_counter()
                poller.poll()
                first = (time.perf_counter() - started) * 1000
                polls = []
                for k in range(1, args.repeat + 1):  # the newest 10 minutes change before every poll
                    clock[0] = NOW + timedelta(seconds=30 * k)
                    with engine.begin() as connection:
                        connection.execute(
                            text(
                                f"UPDATE {dataset.table} SET {dataset.watermark} = :s WHERE {dataset.event_time} >= :t"
                            ),
                            {
                                "s": clock[0].replace(tzinfo=None),
                                "t": (NOW - timedelta(minutes=10)).replace(tzinfo=None),
                            },
                        )
                    started = time.perf_counter()
                    poller.poll()
                    polls.append((time.perf_counter() - started) * 1000)
                snapshot = store.get(dataset.id)
                frame = snapshot.frame(HOURLY_ENTITY) if HOURLY_ENTITY in snapshot.frames else None
                rows = 0 if frame is None else len(frame)
                memory = 0 if frame is None else frame.memory_usage(deep=True).sum() / 1e6
                stored = 0 if frame is None else len(encode_frame(frame)) / 1e6
                entities = 0 if frame is None else frame["entity"].nunique()
                shown = "-"
                kpi = next((k for k in dataset.kpis if kpi_has_entity_detail(dataset, k)), None)
                if flag and kpi is not None:
                    rule = Rule("bench", dataset.id, kpi.id, "each_entity", ">", Threshold(1e12), None)
                    started = time.perf_counter()
                    preview(rule, dataset, kpi, snapshot, clock[0], crosswalk, wards)
                    shown = f"{(time.perf_counter() - started) * 1000:.0f}"
                print(
                    f"{dataset.id:<18} {str(flag).lower():>9} {entities:>8} {rows:>7} {memory:>9.2f} {stored:>9.2f}"
                    f" {first:>11.0f} {statistics.median(polls):>8.1f} {shown:>10}"
                )
            engine.dispose()


ROOT = Path(__file__).resolve().parent.parent
ROW = re.compile(r"^((?:SQLite|PostgreSQL) app DB \w+)\s+([\d.]+)\s+\d+\s+(\d+)\s+(\d+)\s+(\d+)")
"""A result line of ``main``: situation, median ms, (target), changes, subjects, active alerts."""


def load_average() -> str:
    """The 1, 5 and 15-minute load averages."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_python(arguments: list[str], cwd: Path | None = None) -> str:
    """Standard output of this interpreter run with ``arguments`` (without ``PYTHONPATH``, so a checkout's
    own tree decides what is imported); stops with its error output when it fails."""
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, *arguments], cwd=cwd, env=environment, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(arguments)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def checkout_run(checkout: Path, args) -> tuple[dict[str, tuple[float, int, int, int]], str]:
    """This script's table on ``checkout`` (its own code, in a subprocess), and the load average around it."""
    command = [str(checkout / "bench" / "alerts.py"), "--scale", str(args.scale), "--rules", str(args.rules)]
    command += ["--repeat", str(args.repeat), "--dataset", args.dataset] + (["--postgres"] if args.postgres else [])
    before = load_average()
    output = run_python(command, cwd=checkout)
    rows = {}
    for line in output.splitlines():
        found = ROW.match(line)
        if found:
            name, median, *counts = found.groups()
            rows[name] = (float(median), *(int(c) for c in counts))
    return rows, f"{before} -> {load_average()}"


def imported_from(checkout: Path) -> str:
    """Where ``checkout``'s bench script imports ``data_sources`` from (its tree first on ``sys.path``)."""
    code = f"import sys; sys.path.insert(0, {str(checkout)!r}); import data_sources; print(data_sources.__file__)"
    return str(Path(run_python(["-c", code]).strip()).parent)


def revision(checkout: Path) -> str:
    """The checkout's commit, marked when it has uncommitted changes."""
    head = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "-C", str(checkout), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
    )
    return head.stdout.strip() + (" (modified)" if dirty.stdout.strip() else "")


def compare(args) -> None:
    """Baseline and this checkout side by side (see the module docstring)."""
    checkouts = {"baseline": args.baseline_dir.resolve(), "this": ROOT}
    runs: dict[str, list[dict]] = {"baseline": [], "this": []}
    for round_number in range(1, args.rounds + 1):
        for name, checkout in checkouts.items():
            rows, load = checkout_run(checkout, args)
            runs[name].append(rows)
            print(f"round {round_number} {name:<8} load average {load}", flush=True)
    print(f"\nAlert evaluation after one poll of '{args.dataset}': {args.rules} rules, 40 wards, scale {args.scale};")
    print(f"median of {args.repeat} evaluations per run, median over {args.rounds} round(s) per cell")
    for name, checkout in checkouts.items():
        print(f"  {name:<8} {checkout} at {revision(checkout)}, imports {imported_from(checkout)}")
    print(
        f"{'situation':<28} {'baseline ms':>11} {'this ms':>8} {'target':>6} {'changes':>8} {'subjects':>9}"
        f" {'active':>7}  verdict"
    )
    for situation in runs["this"][0]:
        before = statistics.median(r[situation][0] for r in runs["baseline"] if situation in r)
        after = statistics.median(r[situation][0] for r in runs["this"])
        _, changes, subjects, live = runs["this"][0][situation]
        verdict = "ok" if after < TARGET_MS else "OVER TARGET"
        counted = {r[situation][1:] for run in runs.values() for r in run if situation in r}
        if len(counted) > 1:  # the same evaluation must change the same states on both checkouts
            verdict += f"; counts differ between checkouts: {sorted(counted)}"
        print(
            f"{situation:<28} {before:>11.1f} {after:>8.1f} {TARGET_MS:>6.0f} {changes:>8} {subjects:>9}"
            f" {live:>7}  {verdict}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--postgres", action="store_true", help="also with the app database on PostgreSQL")
    parser.add_argument("--dataset", default=DATASET, help="dataset whose rules are timed (with entities: per entity)")
    parser.add_argument("--by-entity-cost", action="store_true", help="price by_entity instead (full-scale demo)")
    parser.add_argument("--baseline-dir", type=Path, default=None, help="another checkout to measure first")
    parser.add_argument("--rounds", type=int, default=1, help="with --baseline-dir: alternate runs this many times")
    args = parser.parse_args()
    if args.by_entity_cost:
        by_entity_cost(args)
        return
    if args.baseline_dir is not None:
        compare(args)
        return
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
    print(f"load average {load_average()}")
    header = f"{'situation':<30} {'median ms':>10} {'target ms':>10} {'changes':>8} {'subjects':>9} {'active':>7}"
    print(header + "  verdict")
    for name, median, changes, subjects, live in rows:
        verdict = "ok" if median < TARGET_MS else "OVER TARGET"
        print(f"{name:<30} {median:>10.1f} {TARGET_MS:>10.0f} {changes:>8} {subjects:>9} {live:>7}  {verdict}")


if __name__ == "__main__":
    main()
