"""Sector page refresh and drill-down pages over a 10-million-row PostgreSQL warehouse (issue 4).

    python bench/pages.py [--rows 10000000] [--repeat 30] [--rebuild]

Builds once, and keeps, the database ``ioc_bench_pages``: the demo warehouse (60 days at full
scale, the reference tables) grown inside PostgreSQL with ``generate_series`` to ``--rows`` rows
(two years of citizen reports and dossiers, a quarter of them in one busy ward; earlier traffic
readings every 2 minutes per segment; disease cases and occupancy). The poller then polls it once
into a snapshot store cached in ``bench/.cache/`` (its time is printed, for information).

Measured through the Flask test client, so every request pays the login guard (session, account
load), the CSRF check and the callbacks' own permission and scope checks:

* page refresh: the snapshot versions of a sector page's datasets change (the same frames are
  published again, so every worker must decode them), then the requests one refresh tick makes:
  the version check, the KPI tiles, the series, the map (partial update) and the league table.
  Server time of the refresh = the sum of those requests. Target: p95 < 50 ms.
* drill-down: the records grid of the busy ward over a custom range of 366 days (about 400,000
  reports), 100 per page, page 1 and page 2,000 (the keyset cursor of page 1,999's last row taken
  with one OFFSET query outside the timing). Target: < 150 ms each.

Never run in CI. Prints each figure beside its target; docs/performance.md records a run.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, inspect, text  # noqa: E402

from config.datasets import load_datasets  # noqa: E402
from data_sources.admin_units import crosswalk as unit_crosswalk  # noqa: E402
from data_sources.admin_units import current_units  # noqa: E402
from data_sources.clock import LOCAL_TZ, to_local_naive  # noqa: E402
from data_sources.demo import schema  # noqa: E402
from data_sources.demo.generate import DEFAULT_SEED, build_world, entity_tables, generate_warehouse, write_rows  # noqa: E402
from data_sources.points import PointsPublisher  # noqa: E402
from data_sources.scheduler import Poller  # noqa: E402
from data_sources.snapshots import EncodedFrame, SQLiteSnapshotStore  # noqa: E402
from data_sources.users import create_user  # noqa: E402
from data_sources.ward_frames import WardFramesPublisher  # noqa: E402
from data_sources.warehouse import create_warehouse_engine  # noqa: E402
from tests.test_web import (  # noqa: E402  (the Flask test-client helpers the web tests use)
    LEAGUE_OUTPUTS,
    MAP_OUTPUTS,
    PASSWORD,
    RECORDS_OUTPUTS,
    callback,
    login,
    make_settings,
)

DATABASE = "ioc_bench_pages"
ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{DATABASE}"
CACHE = Path(__file__).resolve().parent / ".cache"
NOW = datetime(2026, 11, 20, 15, 30, tzinfo=LOCAL_TZ)
LOCAL_NOW = to_local_naive(NOW)
BUSY_WARD = "19789"
"""Thuận Hóa: the busiest ward of the demo (and a quarter of the generated reports)."""
REFRESH_TARGET_MS = 50
DRILL_TARGET_MS = 150
PAGE_SIZE = 100
DEEP_PAGE = 2000

# (table, share of the added rows)
GROWTH = (
    ("feedback_reports", 0.34),
    ("dossiers", 0.34),
    ("traffic_readings", 0.22),
    ("health_cases", 0.07),
    ("health_occupancy", 0.03),
)


def log(message: str) -> None:
    print(message, flush=True)


def database_rows(engine) -> int:
    """Rows in every warehouse table (exact counts)."""
    with engine.connect() as connection:
        tables = connection.execute(
            text("select tablename from pg_tables where schemaname = 'public' and tablename <> 'bench_meta'")
        ).scalars()
        return sum(connection.execute(text(f'select count(*) from "{name}"')).scalar() for name in tables)


def built_rows() -> int | None:
    """Rows the cached database was built with, None when there is none."""
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.execute(text("select 1 from pg_database where datname = :n"), {"n": DATABASE}).first()
    admin.dispose()
    if not exists:
        return None
    engine = create_engine(URL)
    try:
        with engine.connect() as connection:
            return connection.execute(
                text("select rows from bench_meta where now = :now"), {"now": NOW.isoformat()}
            ).scalar()
    except Exception:
        return None
    finally:
        engine.dispose()


SQL = {
    "feedback_reports": """
        insert into feedback_reports (ward_code, category, title, lat, lon, status, assigned_unit, created_at,
            deadline_at, resolved_at, rating, citizen_name, citizen_phone, citizen_address, channel, updated_at)
        select w.code,
            (array['environment', 'traffic', 'urban_order', 'infrastructure', 'public_services', 'security',
                   'health', 'other'])[1 + g % 8],
            'Phản ánh kiểm thử hiệu năng số ' || g,
            w.lat + ((g % 97) - 48) * 0.0004, w.lon + ((g % 89) - 44) * 0.0004,
            case when t > :now - interval '14 days' and g % 5 = 0 then 'in_progress'
                 when g % 11 = 0 then 'rejected' else 'resolved' end,
            'UBND ' || w.code, t, t + interval '5 days',
            case when t > :now - interval '14 days' and g % 5 = 0 then null
                 else least(t + ((g % 150) * interval '1 hour'), :now) end,
            case when g % 3 = 0 then null else 1 + g % 5 end,
            'Nguyễn Văn Kiểm ' || g, '09' || lpad((g % 100000000)::text, 8, '0'), 'Số ' || (g % 300) || ' đường Lê Lợi',
            (array['app','zalo','hotline','web'])[1 + g % 4], least(t + interval '1 hour', :now)
        from generate_series(1, :n) g
        cross join lateral (select :now - (g::float8 / :n) * interval '730 days' as t) tt
        join bench_wards w on w.idx = case when g % 4 = 0 then 0 else 1 + g % (:wards - 1) end
    """,
    "dossiers": """
        insert into dossiers (dossier_no, procedure_code, procedure_name, ward_code, channel, status, received_at,
            due_at, resolved_at, applicant_name, applicant_phone, applicant_id_number, updated_at)
        select 'BENCH-' || g, 'TT' || (g % 40), 'Thủ tục kiểm thử ' || (g % 40), w.code,
            case when g % 3 = 0 then 'counter' else 'online' end,
            case when t > :now - interval '20 days' and g % 4 = 0 then 'processing'
                 when g % 29 = 0 then 'returned' else 'resolved' end,
            t, t + ((3 + g % 12) * interval '1 day'),
            case when t > :now - interval '20 days' and g % 4 = 0 then null
                 else least(t + ((1 + g % 15) * interval '1 day'), :now) end,
            'Trần Thị Thử ' || g, '08' || lpad((g % 100000000)::text, 8, '0'), lpad((g % 1000000000000)::text, 12, '0'),
            least(t + interval '2 hours', :now)
        from generate_series(1, :n) g
        cross join lateral (select :now - (g::float8 / :n) * interval '730 days' as t) tt
        join bench_wards w on w.idx = case when g % 4 = 1 then 0 else 1 + g % (:wards - 1) end
    """,
    "traffic_readings": """
        insert into traffic_readings (segment_id, ward_code, observed_at, vehicle_count, avg_speed_kmh, free_flow_kmh,
            updated_at)
        select s.segment_id, s.ward_code, t, 20 + (k * 7 + length(s.segment_id)) % 180,
            s.free_flow_kmh * (0.45 + 0.5 * abs(sin(k / 90.0))), s.free_flow_kmh, t + interval '1 minute'
        from traffic_segments s
        cross join generate_series(1, :per_segment) k
        cross join lateral (select :oldest - k * interval '2 minutes' as t) tt
    """,
    "health_cases": """
        insert into health_cases (disease, ward_code, facility_id, reported_at, patient_name, patient_phone,
            patient_id_number, patient_address, age, updated_at)
        select (array['dengue','hand_foot_mouth','influenza'])[1 + g % 3], w.code, 'BV01', t,
            'Lê Văn Bệnh ' || g, '07' || lpad((g % 100000000)::text, 8, '0'), lpad((g % 1000000000000)::text, 12, '0'),
            'Tổ ' || (g % 30), g % 90, least(t + interval '3 hours', :now)
        from generate_series(1, :n) g
        cross join lateral (select :now - (g::float8 / :n) * interval '730 days' as t) tt
        join bench_wards w on w.idx = g % :wards
    """,
    "health_occupancy": """
        insert into health_occupancy (facility_id, ward_code, observed_at, beds, occupied_beds, emergency_visits,
            updated_at)
        select f.facility_id, f.ward_code, t, f.beds, (f.beds * (0.5 + 0.45 * abs(sin(k / 50.0))))::int, k % 9,
            t + interval '5 minutes'
        from health_facilities f
        cross join generate_series(1, :per_facility) k
        cross join lateral (select :oldest - k * interval '1 hour' as t) tt
    """,
}


def build_database(target_rows: int) -> None:
    """Create ``ioc_bench_pages`` and grow it to about ``target_rows`` rows inside PostgreSQL."""
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'drop database if exists "{DATABASE}" with (force)'))
        connection.execute(text(f'create database "{DATABASE}"'))
    admin.dispose()
    tick = time.perf_counter()
    demo = generate_warehouse(URL, now=NOW, start=(NOW - timedelta(days=60)).date(), scale=1.0)
    log(f"  demo warehouse, 60 days at full scale: {sum(demo.values()):,} rows in {time.perf_counter() - tick:.0f} s")
    engine = create_engine(URL)
    units = current_units("46")
    ordered = [BUSY_WARD] + sorted(c for c in units["code"] if c != BUSY_WARD)
    position = units.set_index("code")
    with engine.begin() as connection:
        connection.execute(text("create table bench_wards (idx int primary key, code text, lat float8, lon float8)"))
        connection.execute(
            text("insert into bench_wards values (:i, :c, :lat, :lon)"),
            [
                {"i": i, "c": c, "lat": float(position.loc[c, "lat"]), "lon": float(position.loc[c, "lon"])}
                for i, c in enumerate(ordered)
            ],
        )
        missing = target_rows - sum(demo.values())
        for table, share in GROWTH:
            n = int(missing * share)
            tick = time.perf_counter()
            params = {"now": LOCAL_NOW, "n": n, "wards": len(ordered)}
            if table == "traffic_readings":
                segments = connection.execute(text("select count(*) from traffic_segments")).scalar()
                oldest = connection.execute(text("select min(observed_at) from traffic_readings")).scalar()
                params |= {"per_segment": n // segments, "oldest": oldest}
            if table == "health_occupancy":
                facilities = connection.execute(text("select count(*) from health_facilities")).scalar()
                oldest = connection.execute(text("select min(observed_at) from health_occupancy")).scalar()
                params |= {"per_facility": n // facilities, "oldest": oldest}
            connection.execute(text(SQL[table]), params)
            log(f"  + {n:,} rows into {table} in {time.perf_counter() - tick:.0f} s")
        connection.execute(text("drop table bench_wards"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("vacuum analyze"))
    rows = database_rows(engine)
    with engine.begin() as connection:
        connection.execute(text("create table bench_meta (rows bigint, now text)"))
        connection.execute(text("insert into bench_meta values (:r, :n)"), {"r": rows, "n": NOW.isoformat()})
    engine.dispose()


def add_missing_tables() -> list[str]:
    """Create and fill the demo tables the cached database lacks (a table added to the demo after it was
    built, like ``dossier_procedures``), without rebuilding the rest; names of the tables added.

    Reference tables are written with the rows ``generate_warehouse`` writes (same world, same seed). A
    missing event table or column cannot be filled this way: the message says to rebuild.
    """
    engine = create_engine(URL)
    try:
        inspector = inspect(engine)
        existing = set(inspector.get_table_names())
        missing = [table for table in schema.metadata.sorted_tables if table.name not in existing]
        lacking = {
            table.name: sorted(set(table.c.keys()) - {c["name"] for c in inspector.get_columns(table.name)})
            for table in schema.metadata.sorted_tables
            if table.name in existing
        }
        lacking = {name: columns for name, columns in lacking.items() if columns}
        if lacking:
            raise SystemExit(f"{DATABASE} lacks the columns {lacking} of the demo schema: run with --rebuild (~7 min)")
        if not missing:
            return []
        reference = {table.name: rows for table, rows in entity_tables(build_world("46", DEFAULT_SEED, 1.0)).items()}
        events = [table.name for table in missing if table.name not in reference]
        if events:
            raise SystemExit(f"{DATABASE} lacks the event tables {events}: run with --rebuild (~7 min)")
        with engine.begin() as connection:
            for table in missing:
                table.create(connection)  # with its indexes
                count = write_rows(connection, table, reference[table.name])
                connection.execute(text(f'analyze "{table.name}"'))
                log(f"  {DATABASE} lacked the table {table.name}: created with its {count:,} reference rows")
        return [table.name for table in missing]
    finally:
        engine.dispose()


def snapshot_hooks(catalogue, warehouse, store) -> tuple:
    """The poller's after-poll hooks that prepare what the web reads (as ``app.run_poller`` installs them)."""
    wards = list(current_units("46")["code"])
    figures = WardFramesPublisher(catalogue, store, unit_crosswalk("46"), wards, lambda: NOW)
    return (figures, PointsPublisher(catalogue, warehouse, store, lambda: NOW), figures.each_ward)


def poll_once(store_path: Path, only: list[str] | None = None) -> None:
    """Poll every dataset (or those in ``only``) once into the cached snapshot store, with the after-poll hooks."""
    catalogue = load_datasets()
    warehouse = create_warehouse_engine(URL)
    store = SQLiteSnapshotStore(store_path)
    poller = Poller(catalogue, warehouse, store, lambda: NOW, after_poll=snapshot_hooks(catalogue, warehouse, store))
    tick = time.perf_counter()
    for dataset in catalogue:
        if only is None or dataset.id in only:
            result = poller.poll(dataset.id)
            if result is None or result.error:
                raise SystemExit(f"poll of {dataset.id} failed: {result.error if result else 'no poller lock'}")
    which = "every dataset" if only is None else ", ".join(only)
    log(f"  first poll of {which}: {time.perf_counter() - tick:.0f} s (information; polling is issue 3's bench)")
    warehouse.dispose()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def row(label: str, values: list[float], target: float) -> str:
    p50, p95 = statistics.median(values), percentile(values, 0.95)
    verdict = "ok" if p95 < target else "OVER"
    return f"  {label:<40} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   target < {target:>3} ms   {verdict}"


VERSION_OUTPUTS = [("snapshot-versions", "data"), ("freshness-store", "data"), ("data-unavailable", "children")]


def refresh_requests(path: str, drawn: dict, search: str) -> dict[str, tuple]:
    """What one refresh tick of a sector page requests once a version changed: (outputs, inputs, state, changed)."""
    cards = [("snapshot-versions", "data", {"changed": True}), ("url", "search", search)]
    page = [("url", "pathname", path)]
    changed = ["snapshot-versions.data"]
    return {
        "version check": (
            VERSION_OUTPUTS,
            [("refresh-tick", "n_intervals", 1), ("url", "pathname", path)],
            [("snapshot-versions", "data", {})],
            ["refresh-tick.n_intervals"],
        ),
        "tiles": ([("kpi-row", "children")], cards, page, changed),
        "series": ([("series-graph", "figure")], cards, page, changed),
        "map (patch)": (MAP_OUTPUTS, cards, page + [("map-drawn", "data", drawn)], changed),
        "league": (LEAGUE_OUTPUTS, cards, page, changed),
    }


def republish(store: SQLiteSnapshotStore, dataset_id: str, hooks: tuple) -> float:
    """What a poll does for the web: the latest snapshot's frames, as the poller stored them (history in
    parts), published as a new version, then the after-poll hooks; the hooks' time (ms, the poller's).

    Nothing in the web process is keyed on frame contents, only on versions, so the web reads and
    computes again whatever it reads of the new version."""
    snapshot = store.get(dataset_id)
    payloads = getattr(snapshot.frames, "_payloads", None)  # the stored bytes, parts kept apart
    frames = {name: EncodedFrame(payload) for name, payload in payloads.items()} if payloads else dict(snapshot.frames)
    store.put(dataset_id, snapshot.meta, frames)
    tick = time.perf_counter()
    for hook in hooks:
        hook(dataset_id, None)
    return (time.perf_counter() - tick) * 1000


@dataclass
class Refreshes:
    """The timed refreshes of one page view."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    parts: dict[str, list[float]] = field(default_factory=dict)
    hooks: list[float] = field(default_factory=list)
    computed: list[int] = field(default_factory=list)
    """Figures the web computed itself per refresh (the others came computed by the poller)."""


def measure_refresh(client, store, page, repeat: int, hooks: tuple, search: str = "?window=7d") -> Refreshes:
    """Per refresh: the summed wall and CPU time of its requests, and each request's wall times.

    Each refresh is the first one after the poller published new versions of every dataset the page
    reads (``republish``, hooks included, not timed: the poller's work), so it pays whatever a new
    version costs the web process. CPU time (this thread's) is the server's own work, whatever else
    the machine is running; wall time adds the waits for a CPU that other processes hold.
    """
    from dashboards.context import get_context
    from data_sources.figures import ward_frames

    first = callback(
        client,
        MAP_OUTPUTS,
        [("snapshot-versions", "data", {}), ("url", "search", search)],
        [("url", "pathname", page.path), ("map-drawn", "data", None)],
    )
    requests = refresh_requests(page.path, first.json["response"]["map-drawn"]["data"], search)
    result = Refreshes(parts={name: [] for name in requests})
    context = get_context()
    for _ in range(repeat):
        # the poller publishes new versions: every worker reads them again
        result.hooks.append(sum(republish(store, dataset_id, hooks) for dataset_id in page.datasets))
        total = 0.0
        cpu = time.thread_time()
        for name, (outputs, inputs, state, changed) in requests.items():
            tick = time.perf_counter()
            response = callback(client, outputs, inputs, state, changed=changed)
            elapsed = (time.perf_counter() - tick) * 1000
            if response.status_code != 200:
                raise SystemExit(f"{page.path} {name}: HTTP {response.status_code}")
            result.parts[name].append(elapsed)
            total += elapsed
        result.cpu.append((time.thread_time() - cpu) * 1000)
        result.wall.append(total)
        snapshots = [context.snapshot(d) for d in page.datasets]
        result.computed.append(sum(ward_frames(s, context.crosswalk).computed for s in snapshots if s is not None))
    return result


def deep_cursor_row(view, codes: tuple[str, ...], offset: int) -> tuple[datetime, int]:
    """(created_at, id) of the row at ``offset`` of the view's records, newest first (one OFFSET query)."""
    start, end = view.local_bounds(LOCAL_NOW)
    engine = create_warehouse_engine(URL)
    with engine.connect() as connection:
        found = connection.execute(
            text(
                "select created_at, id from feedback_reports where ward_code = any(:codes) and created_at >= :a "
                "and created_at < :b order by created_at desc, id desc offset :o limit 1"
            ),
            {"codes": list(codes), "a": start, "b": end, "o": offset},
        ).first()
        matching = connection.execute(
            text(
                "select count(*) from feedback_reports "
                "where ward_code = any(:codes) and created_at >= :a and created_at < :b"
            ),
            {"codes": list(codes), "a": start, "b": end},
        ).scalar()
    engine.dispose()
    log(f"  {matching:,} reports match the view ({matching // PAGE_SIZE:,} pages)")
    return found[0], found[1]


def measure_drilldown(client, context, repeat: int) -> None:
    """Page 1 and page 2,000 of the busy ward's reports over 366 days."""
    from dashboards.cards.records import list_signature
    from dashboards.sectors import ViewState

    view = ViewState(
        window="custom", start=(LOCAL_NOW - timedelta(days=365)).date(), end=LOCAL_NOW.date(), ward=BUSY_WARD
    )
    created_at, key = deep_cursor_row(view, context.old_codes_of(BUSY_WARD), (DEEP_PAGE - 1) * PAGE_SIZE - 1)

    class _Shown:  # what list_signature reads of a resolved view
        state = view

    deep = {
        "page": DEEP_PAGE - 2,
        "more": True,
        "signature": list_signature(_Shown, [], ""),
        "first": None,
        "last": [created_at.isoformat(), key],
    }
    for label, cursor, button in (("page 1", None, False), (f"page {DEEP_PAGE:,}", deep, True)):
        timings, cpu_times = [], []
        for _ in range(repeat):
            tick, cpu = time.perf_counter(), time.thread_time()
            response = callback(
                client,
                RECORDS_OUTPUTS,
                [
                    ("url", "search", view.query()),
                    ("records-table", "sort_by", []),
                    ("records-table", "filter_query", ""),
                    ("records-prev", "n_clicks", 0),
                    ("records-next", "n_clicks", 1 if button else 0),
                ],
                [("url", "pathname", "/feedback"), ("records-cursor", "data", cursor)],
                changed=["records-next.n_clicks"] if button else ["url.search"],
            )
            timings.append((time.perf_counter() - tick) * 1000)
            cpu_times.append((time.thread_time() - cpu) * 1000)
            body = response.json["response"]
            if len(body["records-table"]["data"]) != PAGE_SIZE:
                raise SystemExit(f"{label}: expected {PAGE_SIZE} rows")
        log(row(f"{label} ({body['records-page-label']['children']}): wall", timings, DRILL_TARGET_MS))
        log(row(f"{label}: CPU of the web process", cpu_times, DRILL_TARGET_MS))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--rebuild", action="store_true", help="drop and rebuild the cached database")
    args = parser.parse_args()
    CACHE.mkdir(exist_ok=True)
    store_path = CACHE / "pages_snapshots.db"
    rows = built_rows()
    if args.rebuild or rows is None or abs(rows - args.rows) > args.rows * 0.05:
        log(f"building {DATABASE} with about {args.rows:,} rows (once; kept for later runs)")
        build_database(args.rows)
        store_path.unlink(missing_ok=True)
        rows = built_rows()
    else:
        added = add_missing_tables()
        if added and store_path.exists():
            affected = [
                d.id
                for d in load_datasets()
                if d.table in added or (d.reference is not None and d.reference.table in added)
            ]
            log(f"  polling again the datasets that read them: {', '.join(affected)}")
            poll_once(store_path, only=affected)
    if not store_path.exists():
        poll_once(store_path)

    from app import create_app
    from dashboards.context import get_context
    from dashboards.sectors import SECTOR_PAGES

    folder = Path(tempfile.mkdtemp(prefix="bench-pages-"))
    settings = replace(make_settings(folder, URL), snapshot_url=f"sqlite:///{store_path}")
    store = SQLiteSnapshotStore(store_path)
    app = create_app(settings, store=store, clock=lambda: NOW)
    create_user(create_warehouse_engine(settings.app_db_url), "bench_leader", PASSWORD, "leader")
    client = login(app, "bench_leader")
    warehouse = create_warehouse_engine(URL)
    hooks = snapshot_hooks(load_datasets(), warehouse, store)
    machine = f"{platform.machine()}, {os.cpu_count()} CPU, load average {os.getloadavg()[0]:.1f} at start"
    log(f"\n{DATABASE}: {rows:,} warehouse rows · {machine}")

    log("\nSector page refresh after a snapshot version change: server time of the tick's requests, summed")
    log("  (wall: as timed; CPU: the web thread's own work, without the waits for CPUs other processes hold)")
    every: list[float] = []
    views = (
        ("province", "?window=7d", "the usual view: the poller computed its figures ahead"),
        (f"ward {BUSY_WARD}", f"?window=7d&ward={BUSY_WARD}", "a ward selected: its figures computed in the web"),
    )
    for label, search, meaning in views:
        log(f"\n  {label} view ({search}; {meaning})")
        for page in SECTOR_PAGES:
            result = measure_refresh(client, store, page, args.repeat, hooks, search)
            log(row(f"{page.sector}: wall", result.wall, REFRESH_TARGET_MS))
            log(row(f"{page.sector}: CPU", result.cpu, REFRESH_TARGET_MS))
            log(
                "      p95 per request: "
                + " · ".join(f"{n} {percentile(v, 0.95):.1f}" for n, v in result.parts.items())
            )
            log(
                f"      figures computed in the web per refresh: {statistics.median(result.computed):.0f}"
                f" · the poller's after-poll hooks for these datasets: {statistics.median(result.hooks):.0f} ms"
                " (its own process, not part of the refresh)"
            )
            if label == "province":
                every.extend(v for values in result.parts.values() for v in values)
    log(row("any single request of a province refresh", every, REFRESH_TARGET_MS))

    log(f"\nDrill-down: {PAGE_SIZE} reports of ward {BUSY_WARD} over 366 days, keyset pages (server time per page)")
    measure_drilldown(client, get_context(), args.repeat)
    log(f"\nload average at the end {os.getloadavg()[0]:.1f} (other processes share the CPUs; see docs/performance.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
