"""Warehouse polling figures for issue 3, printed side by side with their targets in one run.

    python bench/poll.py [--url postgresql+psycopg://postgres@127.0.0.1:5432/ioc_bench] [--reps 7]

Never run in CI. Readings tables are generated inside PostgreSQL with ``generate_series`` in the
database ``ioc_bench`` (created if missing, kept between runs; rows a previous run appended are
deleted first). Each table: 100 sensors reporting every 6 s (1,000 rows a minute) across 40 wards of
Huế, ending at a fixed moment, with indexes on the watermark (``updated_at``) and the event time.
``readings_1m`` covers 16.7 hours, ``readings_10m`` 6.9 days: the same stream, ten times the history.

The poller runs exactly as in production (``DatasetPoller`` with the shipped sensor-dataset rules:
5-minute buckets, 10-minute late window, a natural key, a valid range) and publishes to a SQLite
snapshot store. Figures:

1. a poll taking 10,000 new rows (ten minutes of the stream) against the same SQL statements the
   poller sent in that poll, replayed bare on a psycopg connection (target <= 1.5x);
2. that poll on the 1-million-row and the 10-million-row table (target: within 20 %);
3. a poll with no new rows, the late-window re-read included (target < 20 ms);
4. the poller's resident memory over 1,000 polls of 100 new rows each (target: flat within 10 %).

And, not targets of the issue but costs worth knowing: a poll that also reconciles the history with
the warehouse (every ``reconcile_every``, one count per day over the event-time index), and a poll of
10,000 new rows carrying coordinates (``points_1m``: the 1M stream with each sensor at its ward's
centre, three sensors out at sea) checked against Huế's outline from ``../shared`` versus its bounding
box only, with the outline test of 10,000 points alone.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config.datasets import load_datasets  # noqa: E402
from data_sources.admin_units import crosswalk, current_units  # noqa: E402
from data_sources.clock import LOCAL_TZ, SteppingClock  # noqa: E402
from data_sources.poller import DatasetPoller  # noqa: E402
from data_sources.quality import QualityRules, province_rules  # noqa: E402
from data_sources.snapshots import SQLiteSnapshotStore  # noqa: E402
from data_sources.warehouse import create_warehouse_engine  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/ioc_bench"
SENSORS = 100
STEP_SECONDS = 6
ROWS_PER_MINUTE = SENSORS * 60 // STEP_SECONDS
START = datetime(2026, 1, 1)
TABLES = {"readings_1m": 1_000_000, "readings_10m": 10_000_000}
POINTS_TABLE, POINTS_ROWS = "points_1m", 1_000_000
AT_SEA = (16.6, 107.9)
"""Where the last three of the 100 sensors of ``points_1m`` stand: inside Huế's box, outside the province."""
NEW_ROWS = 10_000
WARM_MINUTES = 20
"""Before each poll, rows from this long before the last watermark on are read once (see ``append``):
the late window (10 minutes) and the whole 5-minute buckets it touches."""
SHARED = Path(os.environ.get("IOC_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))

DATASET_TOML = """
[datasets.bench]
sector = "environment"
table = "{table}"
key = "id"
event_time = "observed_at"
watermark = "updated_at"
unit = "ward_code"
entity = "sensor_id"
bucket = "5m"
poll_every = "10s"
expected_every = "1m"
late_window = "10m"
reconcile_every = "30d"
required = ["sensor_id", "value"]
{natural_key}
{coordinates}
valid.value = {{ min = 0, max = 1000 }}
measures.readings = {{ agg = "count", column = "value" }}
measures.value_sum = {{ agg = "sum", column = "value" }}
measures.value_max = {{ agg = "max", column = "value" }}
"""


def rss_mib() -> float:
    """Resident memory of this process (Linux)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def load_average() -> str:
    """The 1, 5 and 15-minute load averages (the machine is shared: figures move with them)."""
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def ensure_database(url: str) -> None:
    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}
        ).scalar()
        if not exists:
            connection.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


def rows_sql(table: str) -> str:
    """INSERT of ids :first..:last of the stream (sensor, ward, time, value all derived from the id; in
    ``points_1m`` also the sensor's position: its ward's centre, or at sea for the last three)."""
    units = current_units("46").sort_values("code").head(40)
    wards = ",".join(f"'{code}'" for code in units["code"])
    ward = f"1 + mod(mod(g, {SENSORS}), 40)"
    columns, values = "", ""
    if table == POINTS_TABLE:
        lats = ",".join(f"{v:.5f}" for v in units["lat"])
        lons = ",".join(f"{v:.5f}" for v in units["lon"])
        sea = f"mod(g, {SENSORS}) >= {SENSORS - 3}"
        columns = ", lat, lon"
        values = (
            f", CASE WHEN {sea} THEN {AT_SEA[0]} ELSE (ARRAY[{lats}]::float8[])[{ward}] END"
            f", CASE WHEN {sea} THEN {AT_SEA[1]} ELSE (ARRAY[{lons}]::float8[])[{ward}] END"
        )
    return (
        f"INSERT INTO {table} (id, sensor_id, ward_code, observed_at, value, updated_at{columns}) "
        f"SELECT g, 'S' || lpad(mod(g, {SENSORS})::text, 3, '0'), (ARRAY[{wards}])[{ward}], "
        f"timestamp '{START.isoformat(' ')}' + ((g - 1) / {SENSORS}) * interval '{STEP_SECONDS} seconds', "
        "round((50 + 40 * sin(g / 5000.0) + random() * 10)::numeric, 1)::float8, "
        f"timestamp '{START.isoformat(' ')}' + ((g - 1) / {SENSORS}) * interval '{STEP_SECONDS} seconds'"
        f"{values} FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g"
    )


def end_of(rows: int) -> datetime:
    """Observation time of row ``rows`` (the table's newest)."""
    return START + timedelta(seconds=((rows - 1) // SENSORS) * STEP_SECONDS)


def prepare_table(dsn: str, table: str, rows: int) -> None:
    """Create the table once (cached between runs); drop rows a previous run appended."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        exists = connection.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0]
        if exists:
            extra = connection.execute(f"DELETE FROM {table} WHERE id > %s", (rows,)).rowcount
            if extra:
                connection.execute(f"VACUUM ANALYZE {table}")
            print(f"  {table}: cached ({rows:,} rows; {extra:,} appended rows of a previous run removed)")
            return
        tick = time.perf_counter()
        with connection.transaction():  # all or nothing: a half-built table is never taken as cached
            points = ", lat double precision, lon double precision" if table == POINTS_TABLE else ""
            connection.execute(
                f"CREATE TABLE {table} (id bigint PRIMARY KEY, sensor_id text NOT NULL, ward_code text, "
                f"observed_at timestamp NOT NULL, value double precision, updated_at timestamp NOT NULL{points})"
            )
            connection.execute(rows_sql(table), {"first": 1, "last": rows})
            connection.execute(f"CREATE INDEX {table}_updated_at ON {table} (updated_at)")
            connection.execute(f"CREATE INDEX {table}_observed_at ON {table} (observed_at)")
        connection.execute(f"VACUUM ANALYZE {table}")
        print(f"  {table}: generated {rows:,} rows in {time.perf_counter() - tick:.0f} s")


class Recorder:
    """Captures every statement the poller sends, as the DBAPI receives it, for a bare replay; and the
    time the driver spent on them inside the poll (psycopg's client cursor has every row when
    ``execute`` returns)."""

    def __init__(self, engine) -> None:
        self.statements: list[tuple[str, object]] = []
        self.on = False
        self.sql_ms = 0.0
        self._started = 0.0
        event.listen(engine, "before_cursor_execute", self.record)
        event.listen(engine, "after_cursor_execute", self.done)

    def record(self, _connection, _cursor, statement, parameters, _context, _executemany) -> None:
        if self.on:
            self.statements.append((statement, parameters))
        self._started = time.perf_counter()

    def done(self, *_args) -> None:
        if self.on:
            self.sql_ms += (time.perf_counter() - self._started) * 1000


def replay(dsn: str, statements: list[tuple[str, object]]) -> float:
    """Milliseconds to run the statements bare on one connection, in one transaction, fetching all rows."""
    with psycopg.connect(dsn) as connection:
        connection.execute("SELECT 1")
        connection.rollback()
        tick = time.perf_counter()
        with connection.cursor() as cursor:
            for statement, parameters in statements:
                cursor.execute(statement, parameters or None)
                if cursor.description is not None:
                    cursor.fetchall()
        connection.rollback()
        return (time.perf_counter() - tick) * 1000


class Bench:
    """One table's poller, its clock and the next id of the stream."""

    def __init__(
        self,
        url: str,
        dsn: str,
        table: str,
        rows: int,
        folder: Path,
        natural_key: bool,
        rules: QualityRules | None = None,
        name: str | None = None,
    ) -> None:
        self.dsn, self.table, self.next_id = dsn, table, rows + 1
        name = name or table
        path = folder / f"{name}.toml"
        key_line = 'natural_key = ["sensor_id", "observed_at"]' if natural_key else ""
        points = 'latitude = "lat"\nlongitude = "lon"' if table == POINTS_TABLE else ""
        text = DATASET_TOML.format(table=table, natural_key=key_line, coordinates=points)
        path.write_text(text, encoding="utf-8")
        dataset = load_datasets(path).get("bench")
        self.clock = SteppingClock((end_of(rows) + timedelta(seconds=STEP_SECONDS)).replace(tzinfo=LOCAL_TZ))
        self.engine = create_warehouse_engine(url)
        self.recorder = Recorder(self.engine)
        rules = rules or QualityRules(None, frozenset(crosswalk("46")))
        self.store = SQLiteSnapshotStore(folder / f"{name}-snapshots.db")
        self.poller = DatasetPoller(dataset, self.engine, self.store, self.clock, rules)
        self.publish_ms = self.cpu_ms = 0.0
        publish = self.poller._publish

        def timed_publish(now):
            tick = time.perf_counter()
            try:
                return publish(now)
            finally:
                self.publish_ms += (time.perf_counter() - tick) * 1000

        self.poller._publish = timed_publish

    def append(self, count: int) -> None:
        """Append the stream's next ``count`` rows and move the clock to just after them.

        The rows a poll will read are then read once through both indexes it uses (setting the new
        rows' hint bits, as any first reader does, and bringing back the pages the other table's polls
        pushed out of shared buffers), so the poll and the bare replay after it find the pages in the
        same state; before, only the replay found those pages warm."""
        last = self.next_id + count - 1
        since = end_of(self.next_id - 1) - timedelta(minutes=WARM_MINUTES)
        with psycopg.connect(self.dsn, autocommit=True) as connection:
            connection.execute(rows_sql(self.table), {"first": self.next_id, "last": last})
            for column in ("updated_at", "observed_at"):
                connection.execute(f"SELECT count(*), max(value) FROM {self.table} WHERE {column} >= %s", (since,))
        self.next_id = last + 1
        self.clock.current = (end_of(last) + timedelta(seconds=STEP_SECONDS)).replace(tzinfo=LOCAL_TZ)

    def poll(self, *, record: bool = False, reconcile: bool = False) -> tuple[float, list]:
        """One poll (``reconcile``: one that also reconciles the history): ms, and the SQL it sent."""
        if reconcile:  # due now: as if the last reconcile were an interval ago
            self.poller.reconciled_at -= timedelta(seconds=self.poller.dataset.reconcile_seconds)
        self.publish_ms = 0.0
        self.recorder.statements = []
        self.recorder.sql_ms = 0.0
        self.recorder.on = record
        tick, cpu = time.perf_counter(), time.process_time()
        result = self.poller.poll()
        elapsed = (time.perf_counter() - tick) * 1000
        self.cpu_ms = (time.process_time() - cpu) * 1000
        self.recorder.on = False
        if result.error:
            raise RuntimeError(result.error)
        if reconcile and result.reconciled_days is None:
            raise RuntimeError("the poll did not reconcile")
        return elapsed, list(self.recorder.statements)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--reps", type=int, default=7, help="polls of 10,000 rows measured per table")
    parser.add_argument("--memory-polls", type=int, default=1000)
    parser.add_argument("--no-natural-key", action="store_true", help="poll without duplicate detection")
    args = parser.parse_args()
    ensure_database(args.url)
    dsn = make_url(args.url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as connection:
        server = connection.execute("SHOW server_version").fetchone()[0]
        work_mem = connection.execute("SHOW work_mem").fetchone()[0]
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "?")
    print(f"machine: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, PostgreSQL {server}")
    print(f"load average at start: {load_average()}")
    print(f"(work_mem {work_mem}; natural key {'off' if args.no_natural_key else 'on'}; snapshot store: SQLite file)")
    print("tables:")
    for table, rows in TABLES.items():
        prepare_table(dsn, table, rows)

    folder = Path(tempfile.mkdtemp(prefix="ioc-bench-"))
    benches = {}
    for table, rows in TABLES.items():
        bench = Bench(args.url, dsn, table, rows, folder, not args.no_natural_key)
        tick = time.perf_counter()
        bench.poll()
        print(
            f"  {table}: first poll (full aggregation in day slices, not a target) {time.perf_counter() - tick:.1f} s"
        )
        bench.append(NEW_ROWS)  # one warm-up poll of the same size
        bench.poll()
        benches[table] = bench
    # The two tables are measured alternately, so both see the same load on this shared machine.
    samples: dict[str, dict[str, list[float]]] = {
        t: {"poll": [], "bare": [], "publish": [], "cpu": [], "sql": []} for t in TABLES
    }
    statements: dict[str, int] = {}
    for _ in range(args.reps):
        for table, bench in benches.items():
            bench.append(NEW_ROWS)
            elapsed, sent = bench.poll(record=True)
            samples[table]["poll"].append(elapsed)
            samples[table]["publish"].append(bench.publish_ms)
            samples[table]["cpu"].append(bench.cpu_ms)
            samples[table]["sql"].append(bench.recorder.sql_ms)
            samples[table]["bare"].append(replay(dsn, sent))
            statements[table] = len(sent)
    idle: dict[str, list[float]] = {t: [] for t in TABLES}
    idle_cpu: dict[str, list[float]] = {t: [] for t in TABLES}
    idle_bare: dict[str, list[float]] = {t: [] for t in TABLES}
    for _ in range(max(20, args.reps * 3)):
        for table, bench in benches.items():
            bench.clock.advance(seconds=10)
            elapsed, sent = bench.poll(record=True)
            idle[table].append(elapsed)
            idle_cpu[table].append(bench.cpu_ms)
            idle_bare[table].append(replay(dsn, sent))
    reconcile: dict[str, dict[str, list[float]]] = {t: {"poll": [], "bare": [], "days": []} for t in TABLES}
    for _ in range(max(3, args.reps // 3)):
        for table, bench in benches.items():
            bench.clock.advance(seconds=10)
            elapsed, sent = bench.poll(record=True, reconcile=True)
            reconcile[table]["poll"].append(elapsed)
            reconcile[table]["bare"].append(replay(dsn, sent))
            reconcile[table]["days"].append(bench.poller.history[-1].reconciled_days)
    measured_load = load_average()
    results: dict[str, dict[str, float]] = {}
    for table in TABLES:
        results[table] = {name: statistics.median(values) for name, values in samples[table].items()}
        ratios = [poll / bare for poll, bare in zip(samples[table]["poll"], samples[table]["bare"], strict=True)]
        results[table]["ratio_each"] = statistics.median(ratios)
        results[table] |= {f"reconcile_{k}": statistics.median(v) for k, v in reconcile[table].items()}
        results[table] |= {
            "idle": statistics.median(idle[table]),
            "idle_bare": statistics.median(idle_bare[table]),
            "idle_cpu": statistics.median(idle_cpu[table]),
            "idle_p90": sorted(idle[table])[int(len(idle[table]) * 0.9) - 1],
            "statements": statements[table],
        }
    benches["readings_10m"].engine.dispose()
    memory_bench = benches["readings_1m"]

    small, big = results["readings_1m"], results["readings_10m"]
    print()
    print(f"{'figure':58} {'1M rows':>11} {'10M rows':>11}   target")
    print(f"{'poll taking 10,000 new rows (median ms)':58} {small['poll']:11.1f} {big['poll']:11.1f}")
    print(f"{'  of which publishing the snapshot (median ms)':58} {small['publish']:11.1f} {big['publish']:11.1f}")
    print(f"{'  of which the poller process on the CPU (median ms)':58} {small['cpu']:11.1f} {big['cpu']:11.1f}")
    print(f"{'  of which its SQL statements, timed inside the poll (ms)':58} {small['sql']:11.1f} {big['sql']:11.1f}")
    print(f"{'  same SQL statements replayed bare (median ms)':58} {small['bare']:11.1f} {big['bare']:11.1f}")
    ratio_small, ratio_big = small["poll"] / small["bare"], big["poll"] / big["bare"]
    verdict = "met" if max(ratio_small, ratio_big) <= 1.5 else "MISSED"
    print(f"{'  poll / bare SQL':58} {ratio_small:10.2f}x {ratio_big:10.2f}x   <= 1.5x ({verdict})")
    print(f"{'  median of the per-poll ratios':58} {small['ratio_each']:10.2f}x {big['ratio_each']:10.2f}x")
    own = small["poll"] / small["sql"], big["poll"] / big["sql"]
    print(f"{'  poll / its own SQL timed inside it':58} {own[0]:10.2f}x {own[1]:10.2f}x")
    change = big["poll"] / small["poll"] - 1
    verdict = "met" if abs(change) <= 0.20 else "MISSED"
    print(f"{'10M-row poll vs 1M-row poll':58} {'':11} {change:+10.1%}   within 20% ({verdict})")
    verdict = "met" if max(small["idle"], big["idle"]) < 20 else "MISSED"
    label = "poll with no new rows, late window re-read (median ms)"
    print(f"{label:58} {small['idle']:11.1f} {big['idle']:11.1f}   < 20 ms ({verdict})")
    print(f"{'  90th percentile (ms)':58} {small['idle_p90']:11.1f} {big['idle_p90']:11.1f}")
    print(
        f"{'  of which the poller process on the CPU (median ms)':58} {small['idle_cpu']:11.1f} {big['idle_cpu']:11.1f}"
    )
    print(f"{'  its SQL statements replayed bare (median ms)':58} {small['idle_bare']:11.1f} {big['idle_bare']:11.1f}")
    print(f"{'statements per 10,000-row poll':58} {small['statements']:11d} {big['statements']:11d}")
    label = "poll that also reconciles the history (median ms)"
    print(f"{label:58} {small['reconcile_poll']:11.1f} {big['reconcile_poll']:11.1f}   (every reconcile_every)")
    label = "  its SQL statements replayed bare (median ms)"
    print(f"{label:58} {small['reconcile_bare']:11.1f} {big['reconcile_bare']:11.1f}")
    label = "  days found different and re-aggregated"
    print(f"{label:58} {small['reconcile_days']:11.0f} {big['reconcile_days']:11.0f}")
    print(f"{'load average while measuring (1 / 5 / 15 min)':58} {measured_load}")
    points_figures(args, dsn, folder)

    bench = memory_bench
    samples = []
    for number in range(1, args.memory_polls + 1):
        bench.append(100)
        bench.poll()
        if number in (100, args.memory_polls // 2, args.memory_polls):
            samples.append((number, rss_mib()))
    (_, warm), _, (_, last) = samples
    growth = last / warm - 1
    verdict = "met" if abs(growth) <= 0.10 else "MISSED"
    shown = ", ".join(f"after {n}: {v:.0f} MiB" for n, v in samples)
    print(f"{f'poller RSS over {args.memory_polls:,} polls (100 new rows each)':58} {shown}")
    print(f"{'  growth from poll 100 to the last':58} {growth:+10.1%} {'':11}   within 10% ({verdict})")
    print(f"load average at the end: {load_average()}")
    bench.engine.dispose()
    return 0


def points_figures(args: argparse.Namespace, dsn: str, folder: Path) -> None:
    """A 10,000-row poll of rows with coordinates, checked against Huế's outline or its box only."""
    boundaries = SHARED / "data" / "boundaries" / "46_hue" / "wards"
    if not boundaries.is_dir():
        print(f"(points: no boundaries at {boundaries}; set IOC_SHARED_DIR; outline figures skipped)")
        return
    prepare_table(dsn, POINTS_TABLE, POINTS_ROWS)
    known = frozenset(crosswalk("46"))
    outline = province_rules(current_units("46"), boundaries, known, cache_dir=folder / "boundaries")
    box = QualityRules(outline.bounds, known)
    natural_key = not args.no_natural_key
    pollers = {
        "outline": Bench(args.url, dsn, POINTS_TABLE, POINTS_ROWS, folder, natural_key, outline, "points_outline"),
        "box": Bench(args.url, dsn, POINTS_TABLE, POINTS_ROWS, folder, natural_key, box, "points_box"),
    }
    for bench in pollers.values():
        bench.poll()
    writer = pollers["outline"]
    found: dict[str, dict[str, list[float]]] = {name: {"poll": [], "bare": [], "cpu": []} for name in pollers}
    for rep in range(args.reps + 1):
        writer.append(NEW_ROWS)
        order = list(pollers) if rep % 2 else list(reversed(pollers))  # neither always reads warm pages
        for name in order:
            bench = pollers[name]
            bench.clock.current = writer.clock.current
            elapsed, sent = bench.poll(record=True)
            if rep:  # the first is a warm-up
                found[name]["poll"].append(elapsed)
                found[name]["cpu"].append(bench.cpu_ms)
                found[name]["bare"].append(replay(dsn, sent))
    outside = pollers["outline"].store.get("bench").frame("recent")["_outside_area"].sum()
    medians = {name: {k: statistics.median(v) for k, v in values.items()} for name, values in found.items()}
    bounds = outline.bounds
    rng = random.Random(7)
    lat = [rng.uniform(bounds.south, bounds.north) for _ in range(NEW_ROWS)]
    lon = [rng.uniform(bounds.west, bounds.east) for _ in range(NEW_ROWS)]
    timings = []
    for _ in range(21):
        tick = time.perf_counter()
        outline.area.outside(lat, lon)
        timings.append((time.perf_counter() - tick) * 1000)
    print()
    print(f"{'points_1m (coordinates; 3 of 100 sensors at sea)':58} {'outline':>11} {'box only':>11}")
    o, b = medians["outline"], medians["box"]
    print(f"{'poll taking 10,000 new rows (median ms)':58} {o['poll']:11.1f} {b['poll']:11.1f}")
    print(f"{'  of which the poller process on the CPU (median ms)':58} {o['cpu']:11.1f} {b['cpu']:11.1f}")
    print(f"{'  same SQL statements replayed bare (median ms)':58} {o['bare']:11.1f} {b['bare']:11.1f}")
    print(f"{'  poll / bare SQL':58} {o['poll'] / o['bare']:10.2f}x {b['poll'] / b['bare']:10.2f}x")
    print(f"{'  rows outside the province in the last 48 h (outline check)':58} {outside:11.0f}")
    print(f"{'outline test of 10,000 random points in the box (median ms)':58} {statistics.median(timings):11.2f}")
    print(f"{'load average (1 / 5 / 15 min)':58} {load_average()}")
    for bench in pollers.values():
        bench.engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
