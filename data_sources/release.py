"""Letting go of a replaced snapshot version away from the request that replaced it.

The first refresh after a new version replaces the old one in the web process, and freeing it (the
figures, series and frames decoded for it, thousands of objects) took several milliseconds of that
refresh (measured: the version check of the health page fell from 17 to 10 ms when old versions were
kept alive). ``release_later`` hands the last references to one daemon thread that drops them a
moment later, once the refresh tick's requests are answered.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

THREAD_NAME = "ioc-release"
DELAY_SECONDS = 2.0
"""How long a released object is kept: longer than the requests of one refresh tick take."""

_QUEUE: queue.SimpleQueue[tuple[float, Any]] = queue.SimpleQueue()
_STARTED = threading.Event()
_LOCK = threading.Lock()
_held = 0


def release_later(value: Any) -> None:
    """Drop ``value`` (the caller's last reference to it) on the release thread in ``DELAY_SECONDS``."""
    global _held
    if value is None:
        return
    with _LOCK:
        if not _STARTED.is_set():
            threading.Thread(target=_release_loop, name=THREAD_NAME, daemon=True).start()
            _STARTED.set()
        _held += 1
    _QUEUE.put((time.monotonic() + DELAY_SECONDS, value))


def _release_loop() -> None:
    global _held
    while True:
        due, value = _QUEUE.get()
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        del value  # the last reference: freed here, on this thread
        with _LOCK:
            _held -= 1


def wait_released(timeout: float = 30.0) -> bool:
    """Wait until every released object is dropped (True), or ``timeout`` seconds (False)."""
    end = time.monotonic() + timeout
    while _held and time.monotonic() < end:
        time.sleep(0.05)
    return not _held
