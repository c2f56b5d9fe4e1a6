"""Alerting inside the poller process: the after-poll hook, the staleness sweep, the notifier thread.

``app.run_poller`` builds one ``Alerting`` and hands ``alerting.after_poll`` to the ``Poller``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from config.datasets import DatasetCatalogue
from config.settings import Settings
from data_sources.admin_units import crosswalk as unit_crosswalk
from data_sources.admin_units import current_units
from data_sources.alerts.engine import AlertEngine
from data_sources.alerts.tables import create_alert_schema
from data_sources.clock import Clock, system_clock
from data_sources.notify import Notifier, SmtpSettings, plain_text
from data_sources.scheduler import LOCK_NAME, Poller
from data_sources.snapshots import SnapshotStore
from data_sources.warehouse import create_warehouse_engine

log = logging.getLogger(__name__)

SWEEP_SECONDS = 30
NOTIFY_INTERVAL_SECONDS = 2.0

TextRenderer = Callable[[dict[str, Any], Mapping[str, str]], dict[str, str]]
"""(payload, ward code -> name) -> {"subject", "text"}: the wording of notifications."""


class Alerting:
    """Everything alert-related the poller process runs."""

    def __init__(
        self,
        settings: Settings,
        catalogue: DatasetCatalogue,
        store: SnapshotStore,
        clock: Clock = system_clock,
        *,
        render: TextRenderer | None = None,
    ) -> None:
        self.app_db = create_warehouse_engine(settings.app_db_url)
        create_alert_schema(self.app_db)
        units = current_units(settings.province_code)
        ward_names = dict(zip(units["code"], units["name"], strict=True))
        self.engine = AlertEngine(
            self.app_db, store, catalogue, unit_crosswalk(settings.province_code), list(units["code"]), clock
        )
        smtp = SmtpSettings.from_url(settings.smtp_url) if settings.smtp_url else None
        text = functools.partial(render, ward_names=ward_names) if render else plain_text
        self.notifier = Notifier(self.app_db, clock, smtp=smtp, render=text)

    def after_poll(self, dataset_id: str, result: object) -> None:
        """The Poller's after-poll hook."""
        self.engine.after_poll(dataset_id, result)

    def schedule(self, scheduler: BackgroundScheduler, poller: Poller) -> None:
        """The staleness sweep, run only by the poller that holds the lock."""

        def sweep() -> None:
            if poller.store.acquire_lock(LOCK_NAME, poller.owner, poller.lock_ttl_seconds):
                for report in self.engine.sweep():
                    log.info("stale dataset %s: %d alert change(s)", report.dataset, report.changes)

        scheduler.add_job(sweep, "interval", seconds=SWEEP_SECONDS, id="alerts:sweep", coalesce=True, max_instances=1)

    def start(self) -> None:
        """Start delivering notifications in the background."""
        self.notifier.start(NOTIFY_INTERVAL_SECONDS)

    def stop(self) -> None:
        """Stop the notifier (after its current, time-bounded attempt)."""
        self.notifier.stop()
        self.app_db.dispose()
