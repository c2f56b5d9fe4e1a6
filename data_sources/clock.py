"""Time in the province: every "now", "today" and deadline is Asia/Ho_Chi_Minh local time.

Code that depends on the time takes a ``Clock`` so tests can inject a fixed or stepping one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")

Clock = Callable[[], datetime]
"""A zero-argument callable returning an aware datetime."""


def system_clock() -> datetime:
    """The real time, aware, in Asia/Ho_Chi_Minh."""
    return datetime.now(LOCAL_TZ)


def to_local_naive(moment: datetime) -> datetime:
    """An aware datetime as naive local wall time, the way the warehouse stores timestamps."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(LOCAL_TZ).replace(tzinfo=None)


def from_local_naive(moment: datetime) -> datetime:
    """A naive local wall time from the warehouse as an aware datetime."""
    return moment.replace(tzinfo=LOCAL_TZ) if moment.tzinfo is None else moment.astimezone(LOCAL_TZ)


def local_midnight(moment: datetime) -> datetime:
    """Start of the local day containing ``moment`` (aware)."""
    local = moment.astimezone(LOCAL_TZ)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


class SteppingClock:
    """A test clock that stands still until told to move."""

    def __init__(self, start: datetime) -> None:
        self.current = start if start.tzinfo else start.replace(tzinfo=LOCAL_TZ)

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current
