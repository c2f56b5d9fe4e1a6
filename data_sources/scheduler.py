"""The poller process: one APScheduler job per dataset, never inside a web worker.

Only one poller is active at a time: each job first renews an expiring lock in the snapshot store
(a conditional update), so a second poller started by mistake stands by instead of double polling.
After every poll the process writes a status document (last run, duration, rows read, attempts,
error, late arrivals, next run per dataset) that the web shows as poll health and uses to say since
when data is unavailable.

Failures back off: inside a poll a transient error is retried at once a few times
(``DatasetPoller.retries``); after a failed poll the dataset's next attempt waits one interval, then
two, four… up to ``MAX_BACKOFF_SECONDS``, so a warehouse that is down is not hammered and comes back
into use by itself.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from config.datasets import DatasetCatalogue
from data_sources.clock import Clock, system_clock
from data_sources.poller import DatasetPoller, LateArrivals, PollResult
from data_sources.quality import QualityRules
from data_sources.snapshots import SnapshotStore

log = logging.getLogger(__name__)

AfterPoll = Callable[[str, PollResult], None]
"""Called in the poller process after each successful poll of a dataset (alert evaluation)."""

LOCK_NAME = "poller"
STATUS_NAME = "poller"
MAX_BACKOFF_SECONDS = 300


def _next_run(result: PollResult | None, poll_seconds: int) -> datetime | None:
    """When the interval job runs next: one interval after the last run started.

    Derived rather than asked of the scheduler: a job that asked it would deadlock against
    ``scheduler.shutdown()``, which holds the job-store lock while joining the job threads.
    """
    return result.started_at + timedelta(seconds=poll_seconds) if result else None


class Poller:
    """All datasets' pollers plus the lock and the status document they share."""

    def __init__(
        self,
        catalogue: DatasetCatalogue,
        engine: Engine,
        store: SnapshotStore,
        clock: Clock = system_clock,
        *,
        owner: str | None = None,
        after_poll: tuple[AfterPoll, ...] = (),
        rules: QualityRules | None = None,
    ) -> None:
        self.catalogue = catalogue
        self.store = store
        self.clock = clock
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        rules = rules or QualityRules()
        self.pollers = {d.id: DatasetPoller(d, engine, store, clock, rules) for d in catalogue}
        self.results: dict[str, PollResult] = {}
        self.failures: dict[str, int] = {}
        self.retry_at: dict[str, datetime] = {}
        self._restore_late_arrivals()
        self.unavailable_since: datetime | None = None
        self.after_poll = after_poll
        self._mutex = threading.Lock()

    @property
    def lock_ttl_seconds(self) -> float:
        """Long enough to survive the slowest job interval, short enough for a quick hand-over."""
        return max(d.poll_seconds for d in self.catalogue) * 3 + 10

    def _restore_late_arrivals(self) -> None:
        """Carry the running count of late arrivals over a poller restart (it lives in the snapshot)."""
        for dataset_id, poller in self.pollers.items():
            try:
                snapshot = self.store.get(dataset_id)
            except Exception:  # an unreadable store is reported by the first poll
                log.exception("cannot read the previous snapshot of %s", dataset_id)
                continue
            late = ((snapshot.meta.get("quality") or {}).get("late_arrivals") or {}) if snapshot else {}
            if late.get("total"):
                poller.late = LateArrivals(int(late["total"]), dict(late.get("by_unit") or {}), list(late["examples"]))

    def backoff_seconds(self, dataset_id: str) -> float:
        """Wait before the next attempt after ``failures`` failed polls in a row: 1, 2, 4… intervals."""
        failures = self.failures.get(dataset_id, 0)
        if not failures:
            return 0.0
        interval = self.catalogue.get(dataset_id).poll_seconds
        return float(min(MAX_BACKOFF_SECONDS, interval * 2 ** min(failures - 1, 16)))

    def poll(self, dataset_id: str) -> PollResult | None:
        """Poll one dataset if this process holds the poller lock and the dataset is not backing off
        after failures; None when it stands by or waits."""
        retry_at = self.retry_at.get(dataset_id)
        if retry_at is not None and self.clock() < retry_at:
            log.debug("%s backs off until %s", dataset_id, retry_at)
            return None
        if not self.store.acquire_lock(LOCK_NAME, self.owner, self.lock_ttl_seconds):
            log.info("another poller holds the lock; %s stands by", self.owner)
            return None
        result = self.pollers[dataset_id].poll()
        with self._mutex:
            if result.error:
                self.failures[dataset_id] = self.failures.get(dataset_id, 0) + 1
                self.retry_at[dataset_id] = result.started_at + timedelta(seconds=self.backoff_seconds(dataset_id))
            else:
                self.failures.pop(dataset_id, None)
                self.retry_at.pop(dataset_id, None)
            self.results[dataset_id] = result
            if result.error and self.unavailable_since is None:
                self.unavailable_since = result.started_at
            elif not any(r.error for r in self.results.values()):
                self.unavailable_since = None
            self.store.put_status(STATUS_NAME, self.status())
        if not result.error:
            for hook in self.after_poll:
                try:
                    hook(dataset_id, result)
                except Exception:  # a failing hook (alerts, notifications) must never stop polling
                    log.exception("after-poll hook %r failed for %s", hook, dataset_id)
        return result

    def poll_all(self) -> dict[str, PollResult | None]:
        """Poll every dataset once (start-up and tests)."""
        return {dataset.id: self.poll(dataset.id) for dataset in self.catalogue}

    def status(self) -> dict[str, Any]:
        """Poll health: per dataset the last result and the next run."""
        datasets = {}
        for dataset in self.catalogue:
            result = self.results.get(dataset.id)
            late = self.pollers[dataset.id].late
            entry: dict[str, Any] = {
                "poll_seconds": dataset.poll_seconds,
                "next_run": self.retry_at.get(dataset.id) or _next_run(result, dataset.poll_seconds),
                "consecutive_failures": self.failures.get(dataset.id, 0),
                "late_total": late.total,
            }
            if result:
                entry |= asdict(result)
            datasets[dataset.id] = entry
        return {
            "owner": self.owner,
            "updated_at": self.clock(),
            "unavailable_since": self.unavailable_since,
            "datasets": datasets,
        }

    def schedule(self, scheduler: BackgroundScheduler) -> None:
        """One interval job per dataset: coalesced, never overlapping itself, first run now."""
        for dataset in self.catalogue:
            scheduler.add_job(
                self.poll,
                "interval",
                args=[dataset.id],
                id=f"poll:{dataset.id}",
                seconds=dataset.poll_seconds,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=dataset.poll_seconds,
                next_run_time=datetime.now().astimezone(),
            )

    def release(self) -> None:
        """Give the lock up so another poller can take over at once."""
        self.store.release_lock(LOCK_NAME, self.owner)
