"""Data health in headless Chromium: freshness labels age in the browser, without the server."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import insert
from werkzeug.serving import make_server

from config.datasets import load_datasets
from data_sources.clock import SteppingClock, system_clock, to_local_naive
from data_sources.demo.schema import feedback_reports, metadata
from data_sources.scheduler import Poller
from data_sources.snapshots import SQLiteSnapshotStore
from data_sources.users import create_user
from data_sources.warehouse import create_warehouse_engine
from tests.browser.conftest import free_port, save_screenshot
from tests.test_web import PASSWORD, make_settings

pytestmark = pytest.mark.browser


@pytest.fixture
def served_health(tmp_path):
    """A web app over a warehouse last polled 25 seconds ago by a poller that then stopped."""
    from app import create_app

    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    engine = create_warehouse_engine(url)
    metadata.create_all(engine)
    polled = system_clock() - timedelta(seconds=25)
    now = to_local_naive(polled)
    row = {"category": "traffic", "title": "Ổ gà", "status": "received", "created_at": now, "updated_at": now}
    with engine.begin() as connection:
        connection.execute(
            insert(feedback_reports),
            [row | {"ward_code": "19777", "deadline_at": now + timedelta(days=3), "rating": -999}],
        )
    settings = make_settings(tmp_path, url)
    store = SQLiteSnapshotStore(tmp_path / "snapshots.db")
    Poller(load_datasets(settings.datasets_file), engine, store, SteppingClock(polled)).poll_all()
    app = create_app(settings, store=store)
    create_user(create_warehouse_engine(settings.app_db_url), "van_hanh", PASSWORD, "operator")
    port = free_port()
    server = make_server("127.0.0.1", port, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    engine.dispose()


def test_freshness_ages_in_the_browser_until_the_dataset_reads_stale(served_health, chromium):
    driver = chromium
    wait = WebDriverWait(driver, 30)
    driver.get(f"{served_health}/login?next=/data-health%3Fdataset%3Dfeedback")
    wait.until(EC.presence_of_element_located((By.ID, "username")))
    driver.find_element(By.ID, "username").send_keys("van_hanh")
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "login-submit").click()
    poll_age = '[id*="\\"dataset\\":\\"feedback\\""][id*="\\"kind\\":\\"poll\\""]'
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, poll_age)))
    wait.until(lambda d: "Giá trị thay thế (-999): Đánh giá" in d.find_element(By.ID, "health-detail").text)
    # feedback is polled every 10 s: 25 s after the last poll it is stale (after 2 intervals), and the
    # label says so although the server sends nothing new (no new snapshot version)
    label = driver.find_element(By.CSS_SELECTOR, poll_age)
    wait.until(lambda _d: "stale" in label.get_attribute("class"))
    assert label.text.startswith("Dữ liệu cũ · cập nhật")
    first = label.text
    wait.until(lambda _d: label.text != first)  # still ageing, second by second
    assert "Bình thường" in driver.find_element(By.ID, "health-polls").text
    save_screenshot(driver, "data-health-operator")
