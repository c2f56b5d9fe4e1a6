"""Keep a demo warehouse moving: append due sensor readings, new cases and status changes.

``Simulator.step(now)`` brings a warehouse made by ``generate_warehouse`` up to ``now``. It finds
where the data stops (the latest ``observed_at`` of each readings table), appends the readings due
since then at the recent cadence, adds the feedback reports, dossiers, disease cases and incidents
that arrive at realistic rates in the elapsed time plus a small burst per step so a dashboard moves
visibly, and advances a few open feedback reports, dossiers and incidents. Every row it writes or
changes gets ``updated_at = now``, so a poller following ``updated_at`` sees all of it. Each table is
written in its own short transaction.

Excursions make thresholds cross on a schedule a demo (or a browser test) can rely on: in every
period of ``excursion_every`` seconds (of the simulated clock), during its first half, one air station
reports a smoke episode (its readings of the current hour become PM2.5 ``SMOKE_PM25`` µg/m³: VN_AQI
"Xấu") and one river gauge a rise between its alert levels I and II (a reservoir release upstream;
its readings of the current 15 minutes); in the second half every changed reading is restored, so the
AQI and the gauge fall back. Stations and
gauges take turns from period to period (``excursion_targets``). ``excursion_every=None`` turns it off.

    python -m data_sources.demo.simulate --url sqlite:///var/warehouse.db --interval 3 --excursion-every 600
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, Connection, Row, Table, func, select, update

from data_sources.clock import Clock, system_clock
from data_sources.demo import schema
from data_sources.demo.generate import (
    AIR_CADENCE,
    DAY,
    DEFAULT_SEED,
    DISEASES,
    FEEDBACK_HOURLY,
    HOUR,
    OCCUPANCY_CADENCE,
    REFORM_S,
    RIVER_CADENCE,
    TRAFFIC_CADENCE,
    Cadence,
    Columns,
    DemoWorld,
    arrivals,
    build_world,
    case_times,
    dossier_times,
    dossiers,
    env_air_readings,
    env_river_levels,
    feedback_daily_rate,
    feedback_reports,
    feedback_unit,
    flood_intensity,
    from_seconds,
    grid,
    health_cases,
    health_occupancy,
    incident_times,
    rating_for,
    stream,
    to_seconds,
    traffic_incidents,
    traffic_readings,
    write_rows,
)
from data_sources.warehouse import create_warehouse_engine

log = logging.getLogger(__name__)

SENSORS: tuple[tuple[Table, Callable[..., Columns], Cadence], ...] = (
    (schema.traffic_readings, traffic_readings, TRAFFIC_CADENCE),
    (schema.health_occupancy, health_occupancy, OCCUPANCY_CADENCE),
    (schema.env_air_readings, env_air_readings, AIR_CADENCE),
    (schema.env_river_levels, env_river_levels, RIVER_CADENCE),
)
NEW_FEEDBACK_PER_STEP = (0.35, 0.35, 0.20, 0.10)
"""Probabilities of 0, 1, 2, 3 extra feedback reports per step."""
NEW_DOSSIERS_PER_STEP = (0.4, 0.4, 0.2)
CASE_CHANCE_PER_STEP = 0.08
INCIDENT_CHANCE_PER_STEP = 0.05
CLEAR_CHANCE_PER_STEP = 0.25
EXCURSION_EVERY_S = 600.0
"""Default excursion period: a 5-minute smoke episode and gauge rise every 10 minutes."""
SMOKE_PM25 = 230.0
SMOKE_PM10_RATIO = 1.6
RISE_BETWEEN_LEVELS = 0.5
"""How far a rising gauge goes from its level I towards its level II."""


def excursion_targets(now: datetime, period_s: float, station_ids: Sequence[str], gauge_ids: Sequence[str]):
    """(station id, gauge id) in excursion at ``now`` (each None outside the first half of a period)."""
    seconds = to_seconds(now)
    period = int(seconds // period_s)
    if seconds - period * period_s >= period_s / 2:
        return None, None
    station = station_ids[period % len(station_ids)] if station_ids else None
    gauge = gauge_ids[period % len(gauge_ids)] if gauge_ids else None
    return station, gauge


class Simulator:
    """Advances one demo warehouse; see the module docstring.

    ``seed`` should be the one the warehouse was generated with so the series continue smoothly;
    ``scale`` sets the realistic arrival rates used to fill the time between steps.
    """

    def __init__(
        self,
        url: str,
        *,
        seed: int = DEFAULT_SEED,
        province_code: str = "46",
        scale: float = 1.0,
        excursion_every: float | None = EXCURSION_EVERY_S,
    ) -> None:
        self.engine = create_warehouse_engine(url)
        self.excursion_every = excursion_every
        self._altered: dict[tuple[str, int], dict] = {}
        """Readings an excursion changed, by (table, id), with their original values."""
        self.seed = seed
        self.scale = scale
        self.rng = stream(seed, "simulator")
        self.world = self._entities_in_warehouse(build_world(province_code, seed))
        wards = self.world.wards["code"].tolist()
        self._current_ward = {code: i for i, code in enumerate(wards)}
        ward_of_old = np.repeat(np.arange(len(wards)), self.world.old_count)
        self._old_ward = dict(zip(self.world.old_codes.tolist(), ward_of_old.tolist(), strict=True))
        self._last: int | None = None

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def _entities_in_warehouse(self, world: DemoWorld) -> DemoWorld:
        """The full-scale world restricted to the entities the warehouse actually holds."""
        with self.engine.connect() as conn:

            def keep(frame: pd.DataFrame, table: Table, key: str) -> pd.DataFrame:
                present = set(conn.scalars(select(table.c[key])))
                return frame[frame[key].isin(present)].reset_index(drop=True)

            return replace(
                world,
                segments=keep(world.segments, schema.traffic_segments, "segment_id"),
                facilities=keep(world.facilities, schema.health_facilities, "facility_id"),
                air_stations=keep(world.air_stations, schema.env_air_stations, "station_id"),
                gauges=keep(world.gauges, schema.env_river_gauges, "gauge_id"),
            )

    def step(self, now: datetime) -> dict[str, int]:
        """Bring the warehouse up to ``now``; rows inserted per table and ``<table>_updated`` counts."""
        now_s = to_seconds(now)
        counts: dict[str, int] = {}
        latest = []
        for table, builder, cadence in SENSORS:
            with self.engine.begin() as conn:
                last = conn.scalar(select(func.max(table.c.observed_at)))
                last_s = now_s - cadence.fine_s if last is None else to_seconds(last)
                latest.append(last_s)
                times = grid(last_s + 1, now_s, cadence.fine_s)
                if len(times) == 0:
                    continue
                extra = {"first_interval_s": cadence.fine_s} if table is schema.env_river_levels else {}
                columns = builder(self.world, times, self.rng, now_s, written_at=now_s, **extra)
                if len(columns["updated_at"]):
                    counts[table.name] = write_rows(conn, table, columns)
        since = self._last if self._last is not None else min(max(latest), now_s)
        self._add_events(since, now_s, counts)
        self._advance(now_s, counts)
        if self.excursion_every:
            self._excursions(now, counts)
        self._last = max(since, now_s)
        return counts

    # --- excursions ------------------------------------------------------------------------------
    def _excursions(self, now: datetime, counts: dict[str, int]) -> None:
        """Raise this period's station and gauge readings; restore those of finished excursions."""
        station, gauge = excursion_targets(
            now,
            self.excursion_every,
            self.world.air_stations["station_id"].tolist(),
            self.world.gauges["gauge_id"].tolist(),
        )
        stamp = from_seconds(to_seconds(now))
        changed = 0
        with self.engine.begin() as conn:
            keep: set[tuple[str, int]] = set()
            for table, key, entity, values, bucket_s in (
                (schema.env_air_readings, "station_id", station, self._smoke, HOUR),
                (schema.env_river_levels, "gauge_id", gauge, self._rise, RIVER_CADENCE.fine_s),
            ):
                if entity is None:
                    continue
                now_s = to_seconds(now)
                current = table.c.observed_at >= from_seconds(now_s - now_s % bucket_s)
                rows = (
                    conn.execute(
                        select(*table.c).where(table.c[key] == entity, current, table.c.observed_at <= stamp)
                    ).all()
                    or conn.execute(
                        select(*table.c)
                        .where(table.c[key] == entity, table.c.observed_at <= stamp)
                        .order_by(table.c.observed_at.desc())
                        .limit(1)
                    ).all()
                )
                for row in rows:
                    altered = (table.name, row.id)
                    keep.add(altered)
                    if altered in self._altered:
                        continue
                    new = values(entity)
                    self._altered[altered] = {column: getattr(row, column) for column in new}
                    conn.execute(update(table).where(table.c.id == row.id).values(**new, updated_at=stamp))
                    changed += 1
            for altered in [a for a in self._altered if a not in keep]:
                table = schema.metadata.tables[altered[0]]
                original = self._altered.pop(altered)
                conn.execute(update(table).where(table.c.id == altered[1]).values(**original, updated_at=stamp))
                changed += 1
        if changed:
            counts["excursion_updates"] = changed

    def _smoke(self, _station: str) -> dict:
        return {"pm25": SMOKE_PM25, "pm10": round(SMOKE_PM25 * SMOKE_PM10_RATIO, 1)}

    def _rise(self, gauge_id: str) -> dict:
        gauge = self.world.gauges.set_index("gauge_id").loc[gauge_id]
        level = gauge.alert_level_1 + RISE_BETWEEN_LEVELS * (gauge.alert_level_2 - gauge.alert_level_1)
        return {"water_level_m": round(float(level), 2)}

    # --- new records -----------------------------------------------------------------------------
    def _burst(self, since: int, now: int, count: int) -> np.ndarray:
        """``count`` times in the last few seconds before ``now`` (never before ``since``)."""
        spread = max(1, min(now - since, 10))
        return np.sort(now - self.rng.integers(0, spread, count))

    def _add_events(self, since: int, now: int, counts: dict[str, int]) -> None:
        """New reports, dossiers, cases and incidents for ``(since, now]``, plus this step's burst."""
        rng, world, start = self.rng, self.world, since + 1

        feedback_times = np.sort(
            np.concatenate(
                [
                    arrivals(rng, start, now, lambda d: feedback_daily_rate(d, self.scale), FEEDBACK_HOURLY),
                    self._burst(since, now, rng.choice(4, p=NEW_FEEDBACK_PER_STEP)),
                ]
            )
        )
        self._insert(
            schema.feedback_reports, lambda _conn: feedback_reports(world, feedback_times, rng, now, now), counts
        )

        times, channel = dossier_times(rng, start, now, self.scale)
        extra = self._burst(since, now, rng.choice(3, p=NEW_DOSSIERS_PER_STEP))
        times = np.concatenate([times, extra])
        channel = np.concatenate([channel, rng.choice(np.array(["online", "counter"], dtype=object), len(extra))])
        order = np.argsort(times, kind="stable")
        self._insert(
            schema.dossiers,
            lambda conn: dossiers(
                world, times[order], channel[order], rng, now, now, numbered_from=self._dossier_numbers(conn)
            ),
            counts,
        )

        times, disease = case_times(rng, start, now, self.scale)
        if rng.random() < CASE_CHANCE_PER_STEP:
            times = np.append(times, now)
            disease = np.append(disease, np.array([rng.choice(DISEASES)], dtype=object))
        self._insert(schema.health_cases, lambda _conn: health_cases(world, times, disease, rng, now, now), counts)

        if len(world.segments):
            times, kinds = incident_times(rng, self.seed, start, now, self.scale)
            if rng.random() < INCIDENT_CHANCE_PER_STEP:
                flooded = flood_intensity(self.seed, np.array([now]))[0] > 0.3
                times = np.append(times, now)
                kinds = np.append(kinds, np.array(["flooding" if flooded else rng.choice(["accident", "breakdown"])]))
            self._insert(
                schema.traffic_incidents,
                lambda _conn: traffic_incidents(world, times, kinds.astype(object), rng, now, now),
                counts,
            )

    def _insert(self, table: Table, build: Callable[[Connection], Columns], counts: dict[str, int]) -> None:
        """Build rows and append them in one short transaction."""
        with self.engine.begin() as conn:
            columns = build(conn)
            if len(columns["updated_at"]):
                counts[table.name] = write_rows(conn, table, columns)

    @staticmethod
    def _dossier_numbers(conn: Connection) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """How many dossiers each (ward code, local day) already has, so new numbers continue the sequence."""
        table = schema.dossiers

        def existing(codes: np.ndarray, days: np.ndarray) -> np.ndarray:
            found: dict[tuple[str, int], int] = {}
            for code, day in set(zip(codes.tolist(), days.tolist(), strict=True)):
                found[code, day] = conn.scalar(
                    select(func.count())
                    .select_from(table)
                    .where(
                        table.c.ward_code == code,
                        table.c.received_at >= from_seconds(day * DAY),
                        table.c.received_at < from_seconds((day + 1) * DAY),
                    )
                )
            return np.array([found[key] for key in zip(codes.tolist(), days.tolist(), strict=True)], dtype=np.int64)

        return existing

    # --- status changes --------------------------------------------------------------------------
    def _advance(self, now: int, counts: dict[str, int]) -> None:
        """Move a few open records along their lifecycle."""
        moved = {
            schema.feedback_reports: self._advance_feedback(now, int(self.rng.integers(1, 4))),
            schema.dossiers: self._advance_dossiers(now, int(self.rng.integers(0, 3))),
            schema.traffic_incidents: self._clear_incident(now) if self.rng.random() < CLEAR_CHANCE_PER_STEP else 0,
        }
        for table, count in moved.items():
            if count:
                counts[f"{table.name}_updated"] = count

    def _pick_open(
        self, conn: Connection, table: Table, columns: Sequence[str], condition: ColumnElement[bool], k: int
    ) -> list[Row]:
        """Up to ``k`` random rows matching ``condition``."""
        if k <= 0:
            return []
        rows = conn.execute(select(*(table.c[c] for c in columns)).where(condition).order_by(table.c.id)).all()
        if not rows:
            return []
        chosen = self.rng.choice(len(rows), min(k, len(rows)), replace=False)
        return [rows[i] for i in sorted(chosen)]

    def _advance_feedback(self, now: int, k: int) -> int:
        """Move ``k`` open reports one step along received → assigned → in_progress → resolved/rejected."""
        table = schema.feedback_reports
        stamp = from_seconds(now)
        with self.engine.begin() as conn:
            rows = self._pick_open(
                conn,
                table,
                ["id", "status", "category", "ward_code", "created_at", "deadline_at"],
                table.c.status.in_(schema.OPEN_FEEDBACK_STATUSES),
                k,
            )
            for row in rows:
                values: dict = {"updated_at": stamp}
                if row.status == "received":
                    values |= {"status": "assigned", "assigned_unit": self._unit(row)}
                elif row.status == "assigned" and self.rng.random() < 0.08:
                    values |= {"status": "rejected", "resolved_at": stamp}
                elif row.status == "assigned":
                    values |= {"status": "in_progress"}
                else:
                    values |= {"status": "resolved", "resolved_at": stamp}
                    if self.rng.random() < 0.5:
                        values["rating"] = int(rating_for(self.rng, np.array([stamp > row.deadline_at]))[0])
                conn.execute(update(table).where(table.c.id == row.id).values(**values))
        return len(rows)

    def _unit(self, row: Row) -> str:
        """The agency a report is assigned to today, in the current ward its code maps onto."""
        before = to_seconds(row.created_at) < REFORM_S
        ward = (self._old_ward if before else self._current_ward).get(row.ward_code, 0)
        return feedback_unit(row.category, self.world.wards["name"].iloc[ward], float(self.rng.random()))

    def _advance_dossiers(self, now: int, k: int) -> int:
        """Finish ``k`` dossiers still processing: resolved, or now and then returned to the applicant."""
        table = schema.dossiers
        stamp = from_seconds(now)
        with self.engine.begin() as conn:
            settled = table.c.received_at <= from_seconds(now - HOUR)
            rows = self._pick_open(conn, table, ["id"], (table.c.status == "processing") & settled, k)
            for row in rows:
                status = "returned" if self.rng.random() < 0.04 else "resolved"
                conn.execute(
                    update(table).where(table.c.id == row.id).values(status=status, resolved_at=stamp, updated_at=stamp)
                )
        return len(rows)

    def _clear_incident(self, now: int) -> int:
        """Clear one open traffic incident."""
        table = schema.traffic_incidents
        stamp = from_seconds(now)
        with self.engine.begin() as conn:
            rows = self._pick_open(conn, table, ["id"], table.c.status == "open", 1)
            for row in rows:
                conn.execute(
                    update(table)
                    .where(table.c.id == row.id)
                    .values(status="cleared", cleared_at=stamp, updated_at=stamp)
                )
        return len(rows)


def run(
    url: str,
    interval_seconds: float = 3.0,
    seed: int = DEFAULT_SEED,
    *,
    province_code: str = "46",
    scale: float = 1.0,
    steps: int | None = None,
    clock: Clock = system_clock,
    excursion_every: float | None = EXCURSION_EVERY_S,
) -> None:
    """Step the simulator every ``interval_seconds`` (forever, or ``steps`` times)."""
    simulator = Simulator(url, seed=seed, province_code=province_code, scale=scale, excursion_every=excursion_every)
    done = 0
    try:
        while steps is None or done < steps:
            began = time.monotonic()
            counts = simulator.step(clock())
            done += 1
            log.info("step %d: %s", done, ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "nothing due")
            if steps is None or done < steps:
                time.sleep(max(0.0, interval_seconds - (time.monotonic() - began)))
    finally:
        simulator.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``python -m data_sources.demo.simulate --url sqlite:///var/warehouse.db --interval 3``."""
    parser = argparse.ArgumentParser(description="Keep a demo warehouse moving.")
    parser.add_argument("--url", default="sqlite:///var/warehouse.db")
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between steps")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--province", default="46")
    parser.add_argument("--scale", type=float, default=1.0, help="event rates between steps")
    parser.add_argument("--steps", type=int, default=None, help="stop after this many steps")
    parser.add_argument(
        "--excursion-every",
        type=float,
        default=EXCURSION_EVERY_S,
        help="seconds between smoke episodes and gauge rises that cross thresholds (0: none)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        run(
            args.url,
            args.interval,
            args.seed,
            province_code=args.province,
            scale=args.scale,
            steps=args.steps,
            excursion_every=args.excursion_every or None,
        )
    except KeyboardInterrupt:
        log.info("stopped")


if __name__ == "__main__":
    main()
