"""The ``chromium`` fixture: Debian's headless Chromium driven by Selenium, screenshots as artefacts.

Uses the system ``chromium`` and ``chromium-driver`` packages at fixed paths, never Selenium
Manager (no downloads during tests). When either binary is missing the fixture *fails* with a
message saying how to install them: a skipped browser test would look like coverage it is not.

On a failing test the fixture saves ``tests/artifacts/<test name>-failure.png`` before quitting.
``save_screenshot(driver, name)`` writes review artefacts to ``tests/artifacts/<name>.png``.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
WINDOW_SIZE = (1600, 1000)
PAGE_LOAD_TIMEOUT_S = 30

CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    f"--window-size={WINDOW_SIZE[0]},{WINDOW_SIZE[1]}",
)

INSTALL_HINT = (
    "install Debian's packages: apt-get install -y --no-install-recommends chromium chromium-driver "
    "(bash .ci/run does this)"
)


def _safe_name(name: str) -> str:
    """A test or artefact name usable as a file name (parametrised ids contain [] and /)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "screenshot"


def save_screenshot(driver: webdriver.Chrome, name: str) -> Path:
    """Write a PNG of the current browser window to ``tests/artifacts/<name>.png`` and return its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{_safe_name(name)}.png"
    if not driver.save_screenshot(str(path)):
        raise RuntimeError(f"Chromium could not write the screenshot {path}")
    return path


def _require_executable(path: Path, what: str) -> None:
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"{what} not found at {path}: {INSTALL_HINT}", pytrace=False)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keep each phase's report on the item so fixtures can see at teardown whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def chromium(request: pytest.FixtureRequest) -> Iterator[webdriver.Chrome]:
    """A fresh headless Chromium per test, with its own throw-away profile directory."""
    _require_executable(CHROMIUM, "Chromium")
    _require_executable(CHROMEDRIVER, "chromedriver")

    profile = tempfile.mkdtemp(prefix="ioc-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (*CHROMIUM_ARGS, f"--user-data-dir={profile}"):
        options.add_argument(arg)

    try:
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    except Exception:
        shutil.rmtree(profile, ignore_errors=True)
        raise
    try:
        driver.implicitly_wait(0)
        driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT_S)
        yield driver
    finally:
        try:
            report = getattr(request.node, "rep_call", None)
            if report is not None and report.failed:
                # Best effort: a crashed browser must not hide the test's own failure.
                try:
                    path = save_screenshot(driver, f"{_safe_name(request.node.name)}-failure")
                    print(f"failure screenshot: {path}")
                except Exception as exc:
                    print(f"could not save a failure screenshot: {exc!r}")
        finally:
            driver.quit()
            shutil.rmtree(profile, ignore_errors=True)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_http(url: str, timeout: float = 60) -> None:
    """Return once ``url`` answers 200; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout} s")


@contextmanager
def app_processes(env: dict[str, str], logs: Path, *, poller: bool) -> Iterator[tuple[str, dict]]:
    """``app.py web`` on a free port (and ``app.py poller`` when asked) with ``env``, each logging to
    ``logs/<name>.log``; yields (base URL, processes by name) once the web answers, stops them after."""
    from config.settings import PROJECT_DIR

    port = free_port()
    logs.mkdir(parents=True, exist_ok=True)
    commands = ([("poller", ["poller"])] if poller else []) + [("web", ["web", "--port", str(port)])]
    processes, files = {}, []
    try:
        for name, args in commands:
            files.append(open(logs / f"{name}.log", "w"))  # noqa: SIM115  (closed below)
            processes[name] = subprocess.Popen(
                [sys.executable, "app.py", *args], cwd=PROJECT_DIR, env=env, stdout=files[-1], stderr=subprocess.STDOUT
            )
        wait_for_http(f"http://127.0.0.1:{port}/healthz")
        yield f"http://127.0.0.1:{port}", processes
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        for file in files:
            file.close()
